// A tiny in-process Electrum server for the payments tests: real TCP (or TLS), real JSON-RPC lines,
// real transactions (bitcoinjs) with fake inputs, history/status exactly as the protocol defines them.
// Its headers are a real regtest chain (proof of work met, merkle roots over the block's txids), so the
// watcher's checks (lib/chain) pass for what it says: block.header(s) and transaction.get_merkle answer truly.
// It counts every request and the live scripthash subscriptions, and can be killed, restarted and stalled.

import crypto from 'crypto';
import net from 'net';
import tls from 'tls';
import { Transaction, address as bjsAddress, type Network } from 'bitcoinjs-lib';

interface Entry {
  tx_hash: string;
  height: number;
}

interface Conn {
  socket: net.Socket;
  subs: Set<string>;
  headers: boolean;
}

const REGTEST_GENESIS_HEADER =
  '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000';
const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest();
const scriptHashOf = (script: Uint8Array) => Buffer.from(sha256(script)).reverse().toString('hex');

export class TestElectrum {
  port = 0;
  /** requests per method, over the server's whole life */
  counts: Record<string, number> = {};
  /** most scripthash subscriptions ever live at once, summed over connections */
  maxLiveSubs = 0;
  /** when set, requests are read but never answered */
  stall = false;
  /** methods answered with a JSON-RPC "unknown method" error */
  unsupported = new Set<string>();
  connections = new Set<Conn>();
  /** every connection ever accepted */
  accepted = 0;
  headers: string[] = [];
  /** per height: the txids of the block (display order), a made-up coinbase id first */
  blocks: string[][] = [];
  private history = new Map<string, Entry[]>();
  private txs = new Map<string, string>();
  private server?: net.Server;

  constructor(private readonly opts: { tls?: { key: string; cert: string }; height?: number } = {}) {
    for (let i = 0; i <= (opts.height ?? 100); i++) this.addHeader();
  }

  static async start(opts: { tls?: { key: string; cert: string }; height?: number; port?: number } = {}): Promise<TestElectrum> {
    const s = new TestElectrum(opts);
    await s.listen(opts.port ?? 0);
    return s;
  }

  get height(): number {
    return this.headers.length - 1;
  }

  get url(): string {
    return `${this.opts.tls ? 'ssl' : 'tcp'}://127.0.0.1:${this.port}`;
  }

  get liveSubs(): number {
    let n = 0;
    for (const c of this.connections) n += c.subs.size;
    return n;
  }

  listen(port = this.port): Promise<void> {
    const onConn = (socket: net.Socket) => this.accept(socket);
    this.server = this.opts.tls ? tls.createServer({ key: this.opts.tls.key, cert: this.opts.tls.cert }, onConn) : net.createServer(onConn);
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => {
        this.port = (this.server!.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stops listening and drops every client (the chain state survives, like a restarted ElectrumX). */
  async kill(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    this.connections.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }

  async restart(): Promise<void> {
    await this.listen(this.port);
  }

  close(): Promise<void> {
    return this.kill();
  }

  /** A transaction paying `sats` to `address`, in the mempool. Returns its txid. */
  pay(address: string, sats: number, network: Network): string {
    const tx = new Transaction();
    tx.version = 2;
    tx.addInput(crypto.randomBytes(32), 0, 0xfffffffd);
    tx.addOutput(bjsAddress.toOutputScript(address, network), BigInt(sats));
    tx.addOutput(Buffer.from('0014' + crypto.randomBytes(20).toString('hex'), 'hex'), 12_345n); // change
    const txid = tx.getId();
    this.txs.set(txid, tx.toHex());
    for (const out of tx.outs) {
      const sh = scriptHashOf(out.script);
      const h = this.history.get(sh) ?? [];
      h.push({ tx_hash: txid, height: 0 });
      this.history.set(sh, h);
      this.notify(sh);
    }
    return txid;
  }

  /** Mines a block confirming every mempool transaction. */
  mine(): void {
    const pending = new Set<string>();
    for (const entries of this.history.values()) for (const e of entries) if (e.height <= 0) pending.add(e.tx_hash);
    this.addHeader([...pending]);
    for (const [sh, entries] of this.history) {
      let changed = false;
      for (const e of entries) if (e.height <= 0) ((e.height = this.height), (changed = true));
      if (changed) {
        entries.sort((a, b) => a.height - b.height);
        this.notify(sh);
      }
    }
    for (const c of this.connections) if (c.headers) this.send(c, { jsonrpc: '2.0', method: 'blockchain.headers.subscribe', params: [this.headerObj()] });
  }

  /** Drops a transaction from every history (an RBF replacement or a reorged-out payment). */
  drop(txid: string): void {
    for (const [sh, entries] of this.history) {
      const i = entries.findIndex((e) => e.tx_hash === txid);
      if (i >= 0) {
        entries.splice(i, 1);
        this.notify(sh);
      }
    }
  }

  status(sh: string): string | null {
    const h = this.history.get(sh) ?? [];
    if (h.length === 0) return null;
    return crypto.createHash('sha256').update(h.map((e) => `${e.tx_hash}:${e.height}:`).join('')).digest('hex');
  }

  private addHeader(txids: string[] = []): void {
    if (this.headers.length === 0) {
      // Bitcoin's regtest genesis block: the watcher's header chain starts from it
      this.headers.push(REGTEST_GENESIS_HEADER);
      this.blocks.push(['4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b']);
      return;
    }
    const prev = this.headers.length ? Buffer.from(sha256(sha256(Buffer.from(this.headers[this.headers.length - 1], 'hex')))) : Buffer.alloc(32);
    const ids = [crypto.randomBytes(32).toString('hex'), ...txids];
    const h = Buffer.alloc(80);
    h.writeUInt32LE(0x20000000, 0);
    prev.copy(h, 4);
    merkle(ids.map((id) => Buffer.from(id, 'hex').reverse())).root.copy(h, 36);
    h.writeUInt32LE(1_700_000_000 + this.headers.length * 600, 68);
    h.writeUInt32LE(0x207fffff, 72);
    // regtest proof of work: the hash (read as a little-endian number) must be below 0x7fffff << 232
    for (let nonce = 0; ; nonce++) {
      h.writeUInt32LE(nonce, 76);
      if (sha256(sha256(h))[31] < 0x7f) break;
    }
    this.headers.push(h.toString('hex'));
    this.blocks.push(ids);
  }

  private merkleProof(txid: string, height: number) {
    const ids = this.blocks[height];
    const pos = ids ? ids.indexOf(txid) : -1;
    if (pos < 0) return undefined;
    const { branches } = merkle(ids.map((id) => Buffer.from(id, 'hex').reverse()), pos);
    return { block_height: height, merkle: branches.map((b) => Buffer.from(b).reverse().toString('hex')), pos };
  }

  private headerObj() {
    return { height: this.height, hex: this.headers[this.height] };
  }

  private notify(sh: string): void {
    for (const c of this.connections) {
      if (c.subs.has(sh)) this.send(c, { jsonrpc: '2.0', method: 'blockchain.scripthash.subscribe', params: [sh, this.status(sh)] });
    }
  }

  private send(c: Conn, msg: unknown): void {
    if (!c.socket.destroyed) c.socket.write(JSON.stringify(msg) + '\n');
  }

  private accept(socket: net.Socket): void {
    const c: Conn = { socket, subs: new Set(), headers: false };
    this.connections.add(c);
    this.accepted++;
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) this.handle(c, JSON.parse(line));
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.connections.delete(c));
  }

  private handle(c: Conn, req: { id: number; method: string; params?: unknown[] }): void {
    this.counts[req.method] = (this.counts[req.method] ?? 0) + 1;
    if (this.stall) return;
    const p = req.params ?? [];
    const ok = (result: unknown) => this.send(c, { jsonrpc: '2.0', id: req.id, result });
    const fail = (code: number, message: string) => this.send(c, { jsonrpc: '2.0', id: req.id, error: { code, message } });
    if (this.unsupported.has(req.method)) return fail(-32601, `unknown method "${req.method}"`);
    switch (req.method) {
      case 'server.version':
        return ok(['TestElectrum 0.1', '1.4']);
      case 'server.ping':
        return ok(null);
      case 'blockchain.headers.subscribe':
        c.headers = true;
        return ok(this.headerObj());
      case 'blockchain.scripthash.subscribe': {
        c.subs.add(p[0] as string);
        this.maxLiveSubs = Math.max(this.maxLiveSubs, this.liveSubs);
        return ok(this.status(p[0] as string));
      }
      case 'blockchain.scripthash.unsubscribe':
        return ok(c.subs.delete(p[0] as string));
      case 'blockchain.scripthash.get_history':
        return ok((this.history.get(p[0] as string) ?? []).map((e) => (e.height > 0 ? e : { ...e, fee: 1000 })));
      case 'blockchain.block.header':
        return this.headers[p[0] as number] ? ok(this.headers[p[0] as number]) : fail(1, `height ${p[0]} out of range`);
      case 'blockchain.block.headers': {
        const [start, count] = p as number[];
        const hs = this.headers.slice(start, start + Math.min(count, 2016));
        return ok({ hex: hs.join(''), count: hs.length, max: 2016 });
      }
      case 'blockchain.transaction.get_merkle': {
        const proof = this.merkleProof(p[0] as string, p[1] as number);
        return proof ? ok(proof) : fail(1, `tx ${p[0]} not in block at height ${p[1]}`);
      }
      case 'blockchain.transaction.get': {
        const raw = this.txs.get(p[0] as string);
        return raw ? ok(raw) : fail(2, `no such transaction ${p[0]}`);
      }
      default:
        return fail(-32601, `unknown method "${req.method}"`);
    }
  }
}

/** Merkle root of leaves (internal byte order) and the branch of leaf `pos`. */
function merkle(leaves: Buffer[], pos = 0): { root: Buffer; branches: Buffer[] } {
  const branches: Buffer[] = [];
  let level = leaves;
  while (level.length > 1) {
    branches.push(level[pos ^ 1] ?? level[pos]);
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(sha256(sha256(Buffer.concat([level[i], level[i + 1] ?? level[i]]))));
    level = next;
    pos >>= 1;
  }
  return { root: level[0], branches };
}

/** A minimal SOCKS5 proxy (no auth, CONNECT only) that sends every connection to `target` and records what was asked. */
export async function startTestSocks(target: { host: string; port: number }): Promise<{ port: number; asked: string[]; close: () => Promise<void> }> {
  const asked: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => {});
    client.once('data', (hello) => {
      if (hello[0] !== 5) return client.destroy();
      client.write(Buffer.from([5, 0]));
      client.once('data', (req) => {
        // VER CMD RSV ATYP DST.ADDR DST.PORT
        let host: string;
        let off: number;
        if (req[3] === 3) {
          host = req.subarray(5, 5 + req[4]).toString();
          off = 5 + req[4];
        } else if (req[3] === 1) {
          host = [...req.subarray(4, 8)].join('.');
          off = 8;
        } else return client.destroy();
        asked.push(`${host}:${req.readUInt16BE(off)}`);
        const upstream = net.connect(target.port, target.host, () => {
          client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
          client.pipe(upstream).pipe(client);
        });
        sockets.add(upstream);
        upstream.on('error', () => client.destroy());
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    asked,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Polls until `cond` holds (tests wait on real sockets, not on sleeps of guessed length). */
export async function until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
