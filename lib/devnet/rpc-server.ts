// A small bitcoind-style JSON-RPC server over HTTP: POST, JSON-RPC 1.0 shape, HTTP basic auth with the
// devnet's cookie credentials. This is the "miner" side of the devnet. Status codes follow bitcoind:
// 401 bad credentials, 404 unknown method, 400 malformed request, 500 any other error, each with a body
// { result: null, error: { code, message }, id }. Batches (a JSON array) are answered with 200 and an array.
// Methods are registered by name, so a later chain (Namecoin's name_*) only adds entries.

import http from 'http';
import net from 'net';
import crypto from 'crypto';
import * as bitcoin from 'bitcoinjs-lib';
import { Chain, ChainError } from './chain';
import { NETWORK, satsToBtc } from './consensus';
import { RpcError } from './rpc-error';
import { TxRejected } from './validation';

/** What a handler knows of its request: the wallet named by a /wallet/<name> path, if any. */
export interface RpcContext {
  wallet?: string;
}

export type RpcHandler = (params: unknown[], ctx: RpcContext) => unknown;

// bitcoind's error codes (src/rpc/protocol.h)
export const RPC = {
  MISC_ERROR: -1,
  TYPE_ERROR: -3,
  INVALID_ADDRESS_OR_KEY: -5,
  INVALID_PARAMETER: -8,
  DESERIALIZATION_ERROR: -22,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  PARSE_ERROR: -32700,
} as const;

const MAX_BODY = 32 * 1024 * 1024;

export interface RpcCredentials {
  user: string;
  password: string;
}

export class RpcServer {
  private server?: http.Server;
  private readonly methods = new Map<string, RpcHandler>();
  private boundPort = 0;
  private readonly expectedAuth: Buffer;

  constructor(
    credentials: RpcCredentials,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.expectedAuth = Buffer.from('Basic ' + Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64'));
  }

  register(methods: Record<string, RpcHandler>): this {
    for (const [name, handler] of Object.entries(methods)) this.methods.set(name, handler);
    return this;
  }

  get port(): number {
    return this.boundPort;
  }

  async start(port = this.boundPort, host = '127.0.0.1'): Promise<number> {
    if (this.server) return this.boundPort;
    const server = http.createServer((req, res) => this.onRequest(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.boundPort = (server.address() as net.AddressInfo).port;
    return this.boundPort;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private authorized(req: http.IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === this.expectedAuth.length && crypto.timingSafeEqual(given, this.expectedAuth);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    if (!this.authorized(req)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="jsonrpc"' });
      res.end();
      return;
    }
    if (req.method !== 'POST') return reply(405, { result: null, error: { code: RPC.INVALID_REQUEST, message: 'JSON-RPC uses POST' }, id: null });
    // Like bitcoind: "/" for the node (and the only loaded wallet), "/wallet/<name>" for one wallet.
    const path = (req.url ?? '/').split('?')[0];
    const walletPath = /^\/wallet\/(.*)$/.exec(path);
    if (path !== '/' && !walletPath) {
      res.writeHead(404);
      res.end();
      return;
    }
    const ctx: RpcContext = walletPath ? { wallet: decodeURIComponent(walletPath[1]) } : {};
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(500, { result: null, error: { code: RPC.PARSE_ERROR, message: 'Parse error' }, id: null });
      }
      if (Array.isArray(body)) return reply(200, body.map((r) => this.call(r, ctx).body));
      const { status, body: answer } = this.call(body, ctx);
      reply(status, answer);
    });
  }

  private call(request: unknown, ctx: RpcContext): { status: number; body: { result: unknown; error: { code: number; message: string } | null; id: unknown } } {
    const id = (request as { id?: unknown } | null)?.id ?? null;
    try {
      if (typeof request !== 'object' || request === null || typeof (request as { method?: unknown }).method !== 'string') {
        throw new RpcError(RPC.INVALID_REQUEST, 'Missing method');
      }
      const { method, params } = request as { method: string; params?: unknown };
      const handler = this.methods.get(method);
      if (!handler) throw new RpcError(RPC.METHOD_NOT_FOUND, 'Method not found');
      if (params !== undefined && params !== null && !Array.isArray(params)) throw new RpcError(RPC.INVALID_REQUEST, 'Params must be an array');
      const result = handler((params as unknown[] | undefined) ?? [], ctx);
      return { status: 200, body: { result: result === undefined ? null : result, error: null, id } };
    } catch (err) {
      const error = toRpcError(err);
      if (error.code === RPC.MISC_ERROR) this.log(`rpc: ${(err as Error).stack}`);
      const status = error.code === RPC.INVALID_REQUEST ? 400 : error.code === RPC.METHOD_NOT_FOUND ? 404 : 500;
      return { status, body: { result: null, error: { code: error.code, message: error.message }, id } };
    }
  }
}

function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (err instanceof TxRejected) return new RpcError(err.code, err.reason);
  if (err instanceof ChainError) return new RpcError(RPC.INVALID_ADDRESS_OR_KEY, err.message);
  return new RpcError(RPC.MISC_ERROR, (err as Error).message);
}

// ---- bitcoind methods over a Chain ----

function int(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RpcError(RPC.TYPE_ERROR, `${what} must be an integer ≥ ${min}`);
  return v;
}

function hash(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) throw new RpcError(RPC.INVALID_PARAMETER, `${what} must be of length 64 (hex)`);
  return v.toLowerCase();
}

export function outputScript(address: unknown, network: bitcoin.Network = NETWORK): Uint8Array {
  try {
    return bitcoin.address.toOutputScript(String(address), network);
  } catch {
    throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, `Error: Invalid address ${JSON.stringify(address)}`);
  }
}

export function decodeTx(hex: unknown): bitcoin.Transaction {
  try {
    if (typeof hex !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(hex)) throw new Error('not hex');
    const noInputs = decodeWithoutInputs(Buffer.from(hex, 'hex'));
    if (noInputs) return noInputs;
    return bitcoin.Transaction.fromHex(hex);
  } catch {
    throw new RpcError(RPC.DESERIALIZATION_ERROR, 'TX decode failed. Make sure the tx has at least one input.');
  }
}

/**
 * A transaction with no inputs yet (createrawtransaction's answer) in the legacy encoding: its 0x00 input count
 * looks like a segwit marker, so, like Core's DecodeHexTx, try that reading first and keep it when it uses every
 * byte exactly.
 */
function decodeWithoutInputs(b: Buffer): bitcoin.Transaction | undefined {
  if (b.length < 10 || b[4] !== 0) return undefined;
  try {
    return readWithoutInputs(b);
  } catch {
    return undefined; // (a read past the end: not this encoding)
  }
}

function readWithoutInputs(b: Buffer): bitcoin.Transaction | undefined {
  let at = 5;
  const varint = (): number => {
    const first = b[at++];
    if (first < 0xfd) return first;
    if (first === 0xfd) return (at += 2, b.readUInt16LE(at - 2));
    if (first === 0xfe) return (at += 4, b.readUInt32LE(at - 4));
    return Infinity;
  };
  const tx = new bitcoin.Transaction();
  tx.version = b.readInt32LE(0);
  const n = varint();
  for (let i = 0; i < n; i++) {
    if (at + 9 > b.length) return undefined;
    const value = b.readBigUInt64LE(at);
    at += 8;
    const len = varint();
    if (at + len > b.length) return undefined;
    tx.addOutput(b.subarray(at, at + len), value);
    at += len;
  }
  if (at + 4 !== b.length) return undefined;
  tx.locktime = b.readUInt32LE(at);
  return tx;
}

/** Cap on blocks per generate call, like bitcoind's practical limits, so a typo cannot hang the devnet. */
const MAX_GENERATE = 10_000;

export function bitcoindMethods(chain: Chain): Record<string, RpcHandler> {
  return {
    getblockcount: () => chain.height,
    getbestblockhash: () => chain.tipHash,
    getblockhash: ([h]) => {
      const hash = chain.hashAt(int(h, 'height'));
      if (!hash) throw new RpcError(RPC.INVALID_PARAMETER, 'Block height out of range');
      return hash;
    },
    getblockchaininfo: () => ({
      chain: 'regtest',
      blocks: chain.height,
      headers: chain.height,
      bestblockhash: chain.tipHash,
      difficulty: 4.656542373906925e-10,
      time: chain.blockAt(chain.height)!.timestamp,
      mediantime: chain.medianTimePast(chain.height),
      verificationprogress: 1,
      initialblockdownload: false,
      chainwork: (BigInt(chain.height + 1) * 2n).toString(16).padStart(64, '0'), // 2 hashes per block at the regtest limit
      pruned: false,
      warnings: '',
    }),
    generatetoaddress: ([n, address]) => {
      const count = int(n, 'nblocks');
      if (count > MAX_GENERATE) throw new RpcError(RPC.INVALID_PARAMETER, `nblocks must be at most ${MAX_GENERATE}`);
      return chain.mine(count, outputScript(address, chain.params.network));
    },
    generateblock: ([address, txs]) => {
      if (!Array.isArray(txs)) throw new RpcError(RPC.TYPE_ERROR, 'transactions must be an array of raw transactions or mempool txids');
      const script = outputScript(address, chain.params.network);
      const decoded = txs.map((t) => {
        if (typeof t === 'string' && /^[0-9a-fA-F]{64}$/.test(t)) {
          const entry = chain.mempool.get(t.toLowerCase());
          if (!entry) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, `Transaction ${t} not in mempool.`);
          return entry.tx;
        }
        return decodeTx(t);
      });
      return { hash: chain.generateBlock(script, decoded) };
    },
    invalidateblock: ([h]) => {
      chain.invalidate(hash(h, 'blockhash'));
      return null;
    },
    sendrawtransaction: ([hex]) => chain.submit(decodeTx(hex)),
    getrawmempool: ([verbose]) => {
      const entries = chain.mempool.all();
      if (!verbose) return entries.map((e) => e.txid);
      return Object.fromEntries(
        entries.map((e) => [
          e.txid,
          { vsize: e.vsize, weight: e.tx.weight(), fees: { base: satsToBtc(e.fee) }, depends: [...e.parents], 'bip125-replaceable': e.tx.ins.some((i) => i.sequence < 0xfffffffe) },
        ]),
      );
    },
  };
}
