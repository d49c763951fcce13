// The Electrum protocol methods (1.4 – 1.6) answered from a Chain. One table, one entry per method:
// parameter names (for by-name calls) and a handler that validates its own arguments.
// Reference: ElectrumX docs, protocol-methods; the 1.6 changes follow the spesmilo/electrum-protocol spec.

import * as bitcoin from 'bitcoinjs-lib';
import crypto from 'crypto';
import { Chain, HistoryItem } from './chain';
import { GENESIS_HASH, merkleBranch, merkleRoot, MIN_RELAY_SAT_PER_KVB, NETWORK, revHex, satsToBtc, toHex } from './consensus';
import { RpcError } from './rpc-error';
import { TxRejected } from './validation';

export const SERVER_VERSION = 'bitdrop-devnet 0.1';
export const PROTOCOL_MIN = '1.4';
export const PROTOCOL_MAX = '1.6';
const MAX_HEADERS = 2016;

/** JSON-RPC error codes: the standard ones, plus ElectrumX's BAD_REQUEST (1) for requests the chain refuses. */
export const INVALID_PARAMS = -32602;
export const METHOD_NOT_FOUND = -32601;
export const BAD_REQUEST = 1;


/** What a method may see and change of the connection it was called on. */
export interface SessionContext {
  chain: Chain;
  protocol: string;
  port: number;
  setProtocol(version: string): void;
  subscribeHeaders(): void;
  subscribeScript(sh: string, status: string | null): void;
  unsubscribeScript(sh: string): boolean;
}

interface Method {
  params: string[];
  run(ctx: SessionContext, args: unknown[]): unknown;
}

// ---- argument checks: each throws INVALID_PARAMS with a message naming the argument ----

const bad = (msg: string) => new RpcError(INVALID_PARAMS, msg);

function hash32(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) throw bad(`${what} must be 64 hex characters, got ${JSON.stringify(v)}`);
  return v.toLowerCase();
}

function uint(v: unknown, what: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

function hexString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) throw bad(`${what} must be a hex string`);
  return v;
}

function versionParts(v: unknown): number[] {
  if (typeof v !== 'string' || !/^\d+(\.\d+){0,2}$/.test(v)) throw bad(`protocol version ${JSON.stringify(v)} is not of the form 1.4 or 1.4.2`);
  const parts = v.split('.').map(Number);
  while (parts.length < 3) parts.push(0);
  return parts;
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/** The highest version both sides support, from a client's "1.4" or ["1.4", "1.6"]. */
export function negotiate(requested: unknown): string | null {
  const [min, max] = Array.isArray(requested) ? [requested[0], requested[1] ?? requested[0]] : [requested ?? PROTOCOL_MIN, requested ?? PROTOCOL_MIN];
  const lo = compareVersions(String(min), PROTOCOL_MIN) > 0 ? String(min) : PROTOCOL_MIN;
  const hi = compareVersions(String(max), PROTOCOL_MAX) < 0 ? String(max) : PROTOCOL_MAX;
  if (compareVersions(lo, hi) > 0) return null;
  // Answer with the client's own spelling when it asked for exactly one version (Electrum 4.3.4 wants "1.4").
  return compareVersions(hi, String(max)) === 0 ? String(max) : hi;
}

// ---- answers shared by several methods ----

/** Electrum status: sha256 of "txid:height:" over the whole history, null when there is none. */
export function statusOf(history: HistoryItem[]): string | null {
  if (history.length === 0) return null;
  return crypto.createHash('sha256').update(history.map((h) => `${h.tx_hash}:${h.height}:`).join('')).digest('hex');
}

export function scriptStatus(chain: Chain, sh: string): string | null {
  const { confirmed, mempool } = chain.scriptHistory(sh);
  return statusOf([...confirmed, ...mempool.map(({ tx_hash, height }) => ({ tx_hash, height }))]);
}

export const tipHeader = (chain: Chain) => ({ height: chain.height, hex: chain.header(chain.height)!.toString('hex') });

function headerAt(chain: Chain, height: number): Buffer {
  const header = chain.header(height);
  if (!header) throw new RpcError(BAD_REQUEST, `height ${height} out of range (tip is ${chain.height})`);
  return header;
}

/** Merkle proof of the header at `height` under the root of headers 0..cpHeight (ElectrumX checkpoints). */
function headerProof(chain: Chain, height: number, cpHeight: number) {
  if (cpHeight < height || cpHeight > chain.height) {
    throw new RpcError(BAD_REQUEST, `header height ${height} must be <= cp_height ${cpHeight} which must be <= chain height ${chain.height}`);
  }
  const hashes = Array.from({ length: cpHeight + 1 }, (_, h) => chain.blockAt(h)!.getHash());
  return { branch: merkleBranch(hashes, height).map(revHex), root: revHex(merkleRoot(hashes)) };
}

function feeRateBtcPerKb(): number {
  return satsToBtc(MIN_RELAY_SAT_PER_KVB);
}

function verboseTx(chain: Chain, txid: string) {
  const found = chain.transaction(txid)!;
  const tx = found.tx;
  const address = (script: Uint8Array) => {
    try {
      return bitcoin.address.fromOutputScript(script, NETWORK);
    } catch {
      return undefined;
    }
  };
  const block = found.height !== undefined ? chain.blockAt(found.height)! : undefined;
  return {
    txid,
    hash: revHex(tx.getHash(true)),
    version: tx.version,
    size: tx.byteLength(),
    vsize: tx.virtualSize(),
    weight: tx.weight(),
    locktime: tx.locktime,
    vin: tx.ins.map((i) =>
      tx.isCoinbase()
        ? { coinbase: toHex(i.script), sequence: i.sequence }
        : { txid: revHex(i.hash), vout: i.index, scriptSig: { hex: toHex(i.script) }, txinwitness: i.witness.map(toHex), sequence: i.sequence },
    ),
    vout: tx.outs.map((o, n) => ({ value: satsToBtc(o.value), n, scriptPubKey: { hex: toHex(o.script), address: address(o.script) } })),
    hex: tx.toHex(),
    ...(block && { blockhash: block.getId(), confirmations: chain.height - found.height! + 1, time: block.timestamp, blocktime: block.timestamp }),
  };
}

function feeHistogram(chain: Chain): Array<[number, number]> {
  const byRate = new Map<number, number>();
  for (const e of chain.mempool.all()) {
    const rate = Number(e.fee / BigInt(e.vsize)); // whole sat/vB buckets
    byRate.set(rate, (byRate.get(rate) ?? 0) + e.vsize);
  }
  return [...byRate.entries()].sort((a, b) => b[0] - a[0]);
}

// ---- the table ----

export const METHODS: Record<string, Method> = {
  'server.version': {
    params: ['client_name', 'protocol_version'],
    run(ctx, [, requested]) {
      const version = negotiate(requested);
      if (!version) throw new RpcError(BAD_REQUEST, `unsupported protocol version: ${JSON.stringify(requested)} (this server speaks ${PROTOCOL_MIN} to ${PROTOCOL_MAX})`);
      ctx.setProtocol(version);
      return [SERVER_VERSION, version];
    },
  },
  'server.features': {
    params: [],
    run: (ctx) => ({
      genesis_hash: GENESIS_HASH,
      hosts: { '127.0.0.1': { tcp_port: ctx.port, ssl_port: null } },
      protocol_min: PROTOCOL_MIN,
      protocol_max: PROTOCOL_MAX,
      server_version: SERVER_VERSION,
      hash_function: 'sha256',
      pruning: null,
    }),
  },
  'server.banner': { params: [], run: () => 'bitdrop devnet: a regtest chain for tests. Coins here are worthless.' },
  'server.donation_address': { params: [], run: () => '' },
  'server.peers.subscribe': { params: [], run: () => [] },
  'server.ping': { params: [], run: () => null },

  'blockchain.relayfee': { params: [], run: () => feeRateBtcPerKb() },
  // Every block takes the whole mempool, so the relay fee confirms in the next block.
  'blockchain.estimatefee': {
    params: ['number', 'mode'],
    run(_ctx, [n]) {
      uint(n, 'number');
      return feeRateBtcPerKb();
    },
  },
  'mempool.get_fee_histogram': { params: [], run: (ctx) => feeHistogram(ctx.chain) },
  'mempool.get_info': {
    params: [],
    run: () => ({ mempoolminfee: feeRateBtcPerKb(), minrelaytxfee: feeRateBtcPerKb(), incrementalrelayfee: feeRateBtcPerKb() }),
  },

  'blockchain.headers.subscribe': {
    params: [],
    run(ctx) {
      ctx.subscribeHeaders();
      return tipHeader(ctx.chain);
    },
  },
  'blockchain.block.header': {
    params: ['height', 'cp_height'],
    run(ctx, [h, cp]) {
      const height = uint(h, 'height');
      const cpHeight = uint(cp, 'cp_height', 0);
      const hex = headerAt(ctx.chain, height).toString('hex');
      return cpHeight === 0 ? hex : { header: hex, ...headerProof(ctx.chain, height, cpHeight) };
    },
  },
  'blockchain.block.headers': {
    params: ['start_height', 'count', 'cp_height'],
    run(ctx, [s, c, cp]) {
      const start = uint(s, 'start_height');
      const count = Math.max(0, Math.min(uint(c, 'count'), MAX_HEADERS, ctx.chain.height + 1 - start));
      const cpHeight = uint(cp, 'cp_height', 0);
      const headers = Array.from({ length: count }, (_, i) => ctx.chain.header(start + i)!.toString('hex'));
      // Protocol 1.6 returns a list; earlier versions one concatenated hex string.
      const answer = compareVersions(ctx.protocol, '1.6') >= 0 ? { headers, count, max: MAX_HEADERS } : { hex: headers.join(''), count, max: MAX_HEADERS };
      return cpHeight === 0 || count === 0 ? answer : { ...answer, ...headerProof(ctx.chain, start + count - 1, cpHeight) };
    },
  },

  'blockchain.scripthash.subscribe': {
    params: ['scripthash'],
    run(ctx, [s]) {
      const sh = hash32(s, 'scripthash');
      const status = scriptStatus(ctx.chain, sh);
      ctx.subscribeScript(sh, status);
      return status;
    },
  },
  'blockchain.scripthash.unsubscribe': {
    params: ['scripthash'],
    run: (ctx, [s]) => ctx.unsubscribeScript(hash32(s, 'scripthash')),
  },
  'blockchain.scripthash.get_history': {
    params: ['scripthash'],
    run(ctx, [s]) {
      const { confirmed, mempool } = ctx.chain.scriptHistory(hash32(s, 'scripthash'));
      return [...confirmed, ...mempool];
    },
  },
  'blockchain.scripthash.get_mempool': {
    params: ['scripthash'],
    run: (ctx, [s]) => ctx.chain.scriptHistory(hash32(s, 'scripthash')).mempool,
  },
  'blockchain.scripthash.get_balance': {
    params: ['scripthash'],
    run(ctx, [s]) {
      const { confirmed, unconfirmed } = ctx.chain.balance(hash32(s, 'scripthash'));
      return { confirmed: Number(confirmed), unconfirmed: Number(unconfirmed) };
    },
  },
  'blockchain.scripthash.listunspent': {
    params: ['scripthash'],
    run: (ctx, [s]) => ctx.chain.unspent(hash32(s, 'scripthash')).map((u) => ({ ...u, value: Number(u.value) })),
  },

  'blockchain.transaction.get': {
    params: ['tx_hash', 'verbose'],
    run(ctx, [t, verbose]) {
      const txid = hash32(t, 'tx_hash');
      const found = ctx.chain.transaction(txid);
      if (!found) throw new RpcError(BAD_REQUEST, `No such mempool or blockchain transaction: ${txid}`);
      if (verbose !== undefined && typeof verbose !== 'boolean') throw bad('verbose must be true or false');
      return verbose ? verboseTx(ctx.chain, txid) : found.tx.toHex();
    },
  },
  'blockchain.transaction.get_merkle': {
    params: ['tx_hash', 'height'],
    run(ctx, [t, h]) {
      const txid = hash32(t, 'tx_hash');
      const height = uint(h, 'height');
      const found = ctx.chain.transaction(txid);
      if (found?.height !== height) throw new RpcError(BAD_REQUEST, `tx ${txid} not in block at height ${height}`);
      const hashes = ctx.chain.blockAt(height)!.transactions!.map((tx) => tx.getHash());
      return { block_height: height, merkle: merkleBranch(hashes, found.pos!).map(revHex), pos: found.pos };
    },
  },
  // ElectrumX's NameIndexElectrumX (Namecoin, protocol ≥ 1.4.3): a name's updates, newest first, each with its
  // raw transaction and merkle proof, going back until an update older than the expiry depth before the next.
  'blockchain.name.get_value_proof': {
    params: ['scripthash', 'cp_height'],
    run(ctx, [s, cp]) {
      const names = ctx.chain.params.rules;
      if (!names || compareVersions(ctx.protocol, '1.4.3') < 0) throw new RpcError(METHOD_NOT_FOUND, 'unknown method "blockchain.name.get_value_proof"');
      const sh = hash32(s, 'scripthash');
      const cpHeight = uint(cp, 'cp_height', 0);
      const expiration = (names as { expirationDepth?: number }).expirationDepth;
      const updates: unknown[] = [];
      let prevHeight: number | undefined;
      for (const { tx_hash, height } of [...ctx.chain.scriptHistory(sh).confirmed].reverse()) {
        if (expiration !== undefined && prevHeight !== undefined && height < prevHeight - expiration) break;
        const found = ctx.chain.transaction(tx_hash)!;
        const hashes = ctx.chain.blockAt(height)!.transactions!.map((tx) => tx.getHash());
        const update: Record<string, unknown> = { height, tx: found.tx.toHex(), tx_merkle: { merkle: merkleBranch(hashes, found.pos!).map(revHex), pos: found.pos } };
        if (height <= cpHeight) update.header = { header: headerAt(ctx.chain, height).toString('hex'), ...headerProof(ctx.chain, height, cpHeight) };
        updates.push(update);
        if (height <= cpHeight) break;
        prevHeight = height;
      }
      return { [sh]: updates };
    },
  },
  'blockchain.transaction.id_from_pos': {
    params: ['height', 'tx_pos', 'merkle'],
    run(ctx, [h, p, merkle]) {
      const height = uint(h, 'height');
      const pos = uint(p, 'tx_pos');
      const txs = ctx.chain.blockAt(height)?.transactions;
      if (!txs) throw new RpcError(BAD_REQUEST, `height ${height} out of range (tip is ${ctx.chain.height})`);
      if (pos >= txs.length) throw new RpcError(BAD_REQUEST, `no tx at position ${pos} in block at height ${height}`);
      const tx_hash = txs[pos].getId();
      return merkle ? { tx_hash, merkle: merkleBranch(txs.map((tx) => tx.getHash()), pos).map(revHex) } : tx_hash;
    },
  },
  'blockchain.transaction.broadcast': {
    params: ['raw_tx'],
    run(ctx, [raw]) {
      let tx: bitcoin.Transaction;
      try {
        tx = bitcoin.Transaction.fromHex(hexString(raw, 'raw_tx'));
      } catch (err) {
        if (err instanceof RpcError) throw err;
        throw new RpcError(BAD_REQUEST, `the transaction was rejected by network rules: TX decode failed (${(err as Error).message})`);
      }
      try {
        return ctx.chain.submit(tx);
      } catch (err) {
        if (err instanceof TxRejected) throw new RpcError(BAD_REQUEST, `the transaction was rejected by network rules: ${err.reason}`);
        throw err;
      }
    },
  },
};
