// The operating wallet: a small spending wallet of bitdrop's own (one key, one p2wpkh address, change back to
// it), funded by the operator, that pays other drop boxes (mirrors) for keeping its files. Separate from the
// operator's revenue xpub, which stays watch-only.
//
// Never paying twice is the whole design:
//  - every spend has a purpose key (e.g. "mirror|URL|file id|n"); a purpose spent for is never spent for again
//    (w[purpose] → seq), whatever happens;
//  - the transaction is built and signed FIRST, then the record (raw transaction, txid, inputs, state 'signed')
//    and the purpose index go down in one synced LevelDB batch, and only then is it broadcast. A kill -9 before
//    the batch leaves nothing (no coin moved, no record); after it, the start-up reconciliation broadcasts the
//    very same transaction again (idempotent: the same txid pays once however often it is sent). The coins of
//    a record not confirmed yet are never chosen again.
//  - a record becomes 'failed' (its coins free again) only when the server refuses it AND does not know the
//    transaction: it never entered the network.
// Its own coins are checked like payments: each unspent output the server lists is fetched (its txid checked)
// and, once confirmed, proven by a merkle proof against the header chain the watcher keeps (lib/chain).
// Unconfirmed coins are spent only when they are our own change. Fees: the server's estimate
// (blockchain.estimatefee, 2 blocks), BIP125 replaceable (RBF). Spends are capped per rolling 24 hours.

import * as bitcoin from 'bitcoinjs-lib';
import type { NetworkName } from '../config';
import { ElectrumClient, ElectrumRpcError, type ElectrumOptions } from '../payments/electrum';
import { networkOf } from '../payments/networks';
import { HeaderChain, ProofError } from '../chain';
import { layout, PREFIX } from '../store/layout';
import type { Db } from '../store/db';
import { Mutex } from '../store/mutex';
import { loadWalletKey, type WalletKey } from './key';

export { walletKeyPath, loadWalletKey, type WalletKey } from './key';

export type SpendState = 'signed' | 'broadcast' | 'confirmed' | 'failed';

/** One spend, as kept at W[seq] (lib/store/layout.ts); the books read these. */
export interface SpendRecord {
  kind: 'wallet-spend';
  seq: number;
  /** the idempotency key: one purpose is paid at most once */
  purpose: string;
  /** what it paid for, e.g. { kind: 'mirror', mirror, file, through } */
  about?: Record<string, unknown>;
  to: string;
  sats: number;
  fee: number;
  /** change back to the wallet */
  change: number;
  txid: string;
  hex: string;
  inputs: Array<{ txid: string; vout: number; sats: number }>;
  /** ms since the epoch */
  created: number;
  state: SpendState;
  height?: number;
  error?: string;
}

export interface Coin {
  txid: string;
  vout: number;
  sats: number;
  /** > 0 confirmed (and proven) at that height; 0 unconfirmed */
  height: number;
  own: boolean;
}

export interface WalletBalance {
  address: string;
  /** proven confirmed coins not reserved by a spend in flight */
  confirmed: number;
  /** coins seen but not spendable yet (unconfirmed payments to us, or confirmed beyond our checked chain) */
  pending: number;
  /** our own unconfirmed change (spendable) */
  change: number;
  spendLimit: number;
  /** sats (amounts and fees) spent in the last 24 hours */
  spentToday: number;
}

export interface WalletHistoryEntry {
  txid: string;
  /** positive: received; negative: spent (amount and fee) */
  sats: number;
  height: number;
  kind: 'received' | 'spent';
  state?: SpendState;
  to?: string;
  fee?: number;
  purpose?: string;
  created?: string;
}

export interface WalletOptions {
  dataDir: string;
  network: NetworkName;
  servers: string[];
  socks?: { host: string; port: number };
  clearnet: boolean;
  /** the checked header chain the watcher keeps synced */
  chain: HeaderChain;
  db: Db;
  /** the store's synced batch write */
  write: (ops: Array<{ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer }>, opts: { sync: boolean }) => Promise<void>;
  /** sats (amounts plus fees) per rolling 24 hours; 0 spends nothing */
  spendLimit: number;
  log?: (line: string) => void;
  clock?: () => number;
  /** how often spends in flight are looked at (ms) */
  reconcileEveryMs?: number;
  electrum?: Partial<Pick<ElectrumOptions, 'timeoutMs' | 'connectTimeoutMs' | 'backoff'>>;
  /** tests: runs between the durable record and the broadcast (a kill -9 lands there) */
  beforeBroadcast?: (rec: SpendRecord) => Promise<void>;
}

export class SpendLimitError extends Error { override name = 'SpendLimitError'; }
export class InsufficientFunds extends Error { override name = 'InsufficientFunds'; }

const DAY_MS = 86_400_000;
const SEQUENCE_RBF = 0xfffffffd;
/** Bitcoin Core's dust limit for a p2wpkh output */
const DUST = 294;
const MAX_FEE_RATE = 1000;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

export class Wallet {
  readonly key: WalletKey;
  private readonly client: ElectrumClient;
  private readonly lock = new Mutex();
  private readonly net: bitcoin.Network;
  private readonly log: (line: string) => void;
  private readonly clock: () => number;
  private readonly txs = new Map<string, bitcoin.Transaction>();
  private nextSeq = 1;
  private timer?: NodeJS.Timeout;
  private reconciling?: Promise<void>;

  constructor(private readonly o: WalletOptions) {
    this.key = loadWalletKey(o.dataDir, o.network);
    this.net = networkOf(o.network);
    this.log = o.log ?? (() => {});
    this.clock = o.clock ?? Date.now;
    this.client = new ElectrumClient({ servers: o.servers, socks: o.socks, clearnet: o.clearnet, log: this.log, clientName: 'bitdrop-wallet', ...o.electrum });
    this.client.on('connected', () => { void this.reconcile(); });
  }

  get address(): string {
    return this.key.address;
  }

  get spendLimit(): number {
    return this.o.spendLimit;
  }

  async start(): Promise<void> {
    for await (const key of this.o.db.keys({ ...layout.range(PREFIX.walletSpend), reverse: true, limit: 1 })) {
      this.nextSeq = layout.parseWalletSpend(key) + 1;
    }
    await this.client.start();
    await this.reconciling;
    this.timer = setInterval(() => { void this.reconcile(); }, this.o.reconcileEveryMs ?? 30_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.lock.run(async () => undefined);
    await this.client.stop();
  }

  whenConnected(timeoutMs: number): Promise<void> {
    return this.client.whenConnected(timeoutMs);
  }

  /** Every spend, oldest first. */
  async records(): Promise<SpendRecord[]> {
    const out: SpendRecord[] = [];
    for await (const v of this.o.db.values(layout.range(PREFIX.walletSpend))) out.push(JSON.parse(v.toString()) as SpendRecord);
    return out;
  }

  async recordFor(purpose: string): Promise<SpendRecord | undefined> {
    const seq = await this.o.db.get(layout.walletPurpose(purpose));
    if (!seq) return undefined;
    const v = await this.o.db.get(layout.walletSpend(Number(seq.readBigUInt64BE(0))));
    return v ? (JSON.parse(v.toString()) as SpendRecord) : undefined;
  }

  /** sats (amounts and fees) of the spends made in the last 24 hours that may still pay */
  private spentSince(records: SpendRecord[], now: number): number {
    return records.filter((r) => r.state !== 'failed' && r.created > now - DAY_MS).reduce((s, r) => s + r.sats + r.fee, 0);
  }

  async spentToday(): Promise<number> {
    return this.spentSince(await this.records(), this.clock());
  }

  // ---- coins ------------------------------------------------------------------------------------------

  private async tx(txid: string): Promise<bitcoin.Transaction> {
    let tx = this.txs.get(txid);
    if (tx) return tx;
    const raw = await this.client.request<string>('blockchain.transaction.get', [txid]);
    if (typeof raw !== 'string' || raw.length === 128) throw new Error(`transaction.get ${txid}: not a transaction`);
    tx = bitcoin.Transaction.fromHex(raw);
    if (tx.getId() !== txid) throw new Error(`the server sent transaction ${tx.getId()} for ${txid}`);
    if (this.txs.size > 1000) this.txs.clear();
    this.txs.set(txid, tx);
    return tx;
  }

  /** A confirmed transaction is believed only with a merkle proof leading to our checked header at its height. */
  private async proven(txid: string, height: number): Promise<boolean> {
    if (this.o.chain.hashAt(height) === undefined) return false; // beyond our checked chain yet
    const proof = await this.client.request('blockchain.transaction.get_merkle', [txid, height]).catch((err) => {
      if (err instanceof ElectrumRpcError) throw new ProofError(`no merkle proof for ${txid} at ${height}: ${err.message}`);
      throw err;
    });
    try {
      this.o.chain.verifyTxProof(txid, height, proof);
      return true;
    } catch (err) {
      if (!(err instanceof ProofError)) throw err;
      this.log(`wallet    ${this.client.server} gave a false proof for our coin ${txid}: ${err.message}; not spending it`);
      return false;
    }
  }

  /** Our coins: spendable ones (proven, or our own change) and the rest. Coins of spends in flight are left out. */
  async coins(records?: SpendRecord[]): Promise<{ spendable: Coin[]; pending: Coin[] }> {
    records ??= await this.records();
    const reserved = new Set<string>();
    const own = new Set<string>();
    for (const r of records) {
      if (r.state === 'failed') continue;
      own.add(r.txid);
      if (r.state !== 'confirmed') for (const i of r.inputs) reserved.add(`${i.txid}:${i.vout}`);
    }
    const listed = await this.client.request<Array<{ tx_hash: string; tx_pos: number; height: number; value: number }>>(
      'blockchain.scripthash.listunspent', [this.key.scriptHash]);
    if (!Array.isArray(listed)) throw new Error('listunspent: malformed answer');
    const spendable: Coin[] = [];
    const pending: Coin[] = [];
    for (const u of listed) {
      if (!/^[0-9a-f]{64}$/.test(u?.tx_hash) || !Number.isSafeInteger(u.tx_pos) || !Number.isSafeInteger(u.height)) continue;
      if (reserved.has(`${u.tx_hash}:${u.tx_pos}`)) continue;
      const tx = await this.tx(u.tx_hash);
      const out = tx.outs[u.tx_pos];
      // the amount and script come from the transaction itself, not from what the server says
      if (!out || Buffer.compare(Buffer.from(out.script), Buffer.from(this.key.script)) !== 0) continue;
      if (tx.isCoinbase()) continue; // maturity would need care; the operator funds the wallet with payments
      const coin: Coin = { txid: u.tx_hash, vout: u.tx_pos, sats: Number(out.value), height: Math.max(0, u.height), own: own.has(u.tx_hash) };
      if (u.height > 0 ? await this.proven(u.tx_hash, u.height) : coin.own) spendable.push(coin);
      else pending.push(coin);
    }
    return { spendable, pending };
  }

  async balance(): Promise<WalletBalance> {
    const records = await this.records();
    const { spendable, pending } = await this.coins(records);
    const sum = (cs: Coin[]) => cs.reduce((s, c) => s + c.sats, 0);
    return {
      address: this.address,
      confirmed: sum(spendable.filter((c) => c.height > 0)),
      change: sum(spendable.filter((c) => c.height === 0)),
      pending: sum(pending),
      spendLimit: this.o.spendLimit,
      spentToday: this.spentSince(records, this.clock()),
    };
  }

  /** Received payments (from the server's history, each transaction fetched) and our own spends, newest first. */
  async history(): Promise<WalletHistoryEntry[]> {
    const records = await this.records();
    const mine = new Map(records.map((r) => [r.txid, r]));
    const history = await this.client.request<Array<{ tx_hash: string; height: number }>>('blockchain.scripthash.get_history', [this.key.scriptHash]);
    const out: WalletHistoryEntry[] = [];
    for (const h of Array.isArray(history) ? history : []) {
      if (mine.has(h.tx_hash)) continue;
      const tx = await this.tx(h.tx_hash);
      const sats = tx.outs.filter((o) => Buffer.compare(Buffer.from(o.script), Buffer.from(this.key.script)) === 0).reduce((s, o) => s + Number(o.value), 0);
      if (sats > 0) out.push({ txid: h.tx_hash, sats, height: h.height > 0 && (await this.proven(h.tx_hash, h.height)) ? h.height : 0, kind: 'received' });
    }
    for (const r of records) {
      out.push({ txid: r.txid, sats: -(r.sats + r.fee), height: r.height ?? 0, kind: 'spent', state: r.state, to: r.to, fee: r.fee, purpose: r.purpose, created: new Date(r.created).toISOString() });
    }
    // unconfirmed first, then by height, newest first
    const rank = (h: WalletHistoryEntry) => (h.height > 0 ? h.height : Number.MAX_SAFE_INTEGER);
    return out.sort((a, b) => rank(b) - rank(a));
  }

  // ---- spending -----------------------------------------------------------------------------------------

  /** sat/vB from the server's estimate for 2 blocks (its relay fee when it has none). */
  private async feeRate(): Promise<number> {
    let btcPerKb = await this.client.request<number>('blockchain.estimatefee', [2]);
    if (typeof btcPerKb !== 'number' || btcPerKb <= 0) btcPerKb = await this.client.request<number>('blockchain.relayfee', []);
    const rate = Math.ceil((Number(btcPerKb) * 1e8) / 1000);
    if (!Number.isFinite(rate) || rate < 1) return 1;
    return Math.min(rate, MAX_FEE_RATE);
  }

  /**
   * Pays `sats` to `to` for `purpose`, at most once: a purpose already paid (or in flight) returns its record
   * and pays nothing. Throws SpendLimitError when the day's limit would be passed, InsufficientFunds when the
   * coins do not cover it.
   */
  spend(req: { purpose: string; to: string; sats: number; about?: Record<string, unknown> }): Promise<SpendRecord> {
    return this.lock.run(async () => {
      const existing = await this.recordFor(req.purpose);
      if (existing && existing.state !== 'failed') return existing;
      if (!Number.isSafeInteger(req.sats) || req.sats < DUST) throw new Error(`cannot send ${req.sats} sats: below the dust limit of ${DUST}`);
      let toScript: Uint8Array;
      try {
        toScript = bitcoin.address.toOutputScript(req.to, this.net);
      } catch {
        throw new Error(`"${req.to}" is not an address of ${this.o.network}`);
      }
      const records = await this.records();
      const now = this.clock();
      const spent = this.spentSince(records, now);
      const limit = this.o.spendLimit;
      if (limit === 0) throw new SpendLimitError('spend limit reached: --spend-limit is 0, so this bitdrop spends nothing (set it to the sats a day it may spend)');
      if (spent + req.sats > limit) {
        throw new SpendLimitError(`spend limit reached: ${spent} of ${limit} sats a day spent; paying ${req.sats} sats more would pass it (--spend-limit)`);
      }
      const rate = await this.feeRate();
      const { spendable } = await this.coins(records);
      // confirmed coins first (largest first), then our own change
      spendable.sort((a, b) => (a.height > 0 ? 0 : 1) - (b.height > 0 ? 0 : 1) || b.sats - a.sats);
      const tx = this.build(spendable, toScript, req.sats, rate);
      if (spent + req.sats + tx.fee > limit) {
        throw new SpendLimitError(`spend limit reached: ${spent} of ${limit} sats a day spent; paying ${req.sats} sats and a ${tx.fee} sat fee would pass it (--spend-limit)`);
      }
      const rec: SpendRecord = {
        kind: 'wallet-spend', seq: this.nextSeq++, purpose: req.purpose, about: req.about, to: req.to, sats: req.sats,
        fee: tx.fee, change: tx.change, txid: tx.tx.getId(), hex: tx.tx.toHex(), inputs: tx.inputs, created: now, state: 'signed',
      };
      const seq = Buffer.alloc(8);
      seq.writeBigUInt64BE(BigInt(rec.seq));
      // durable BEFORE the broadcast: after a crash the same transaction is sent again, never a new one
      await this.o.write([
        { type: 'put', key: layout.walletSpend(rec.seq), value: json(rec) },
        { type: 'put', key: layout.walletPurpose(req.purpose), value: seq },
      ], { sync: true });
      this.txs.set(rec.txid, tx.tx);
      this.log(`wallet    paying ${req.sats} sats (+${rec.fee} fee) to ${req.to} for ${req.purpose}: ${rec.txid}`);
      if (this.o.beforeBroadcast) await this.o.beforeBroadcast(rec);
      return this.broadcast(rec);
    });
  }

  private build(coins: Coin[], toScript: Uint8Array, sats: number, rate: number) {
    // p2wpkh: ~10.5 vB overhead, ~68 vB an input, 31 vB an output
    const vsize = (ins: number, outs: number) => Math.ceil(10.5 + 68 * ins + 31 * outs);
    const chosen: Coin[] = [];
    let total = 0;
    for (const c of coins) {
      chosen.push(c);
      total += c.sats;
      if (total >= sats + rate * vsize(chosen.length, 2)) break;
    }
    for (let extra = 0; extra < 4; extra++) {
      let fee = rate * vsize(chosen.length, 2) + extra * rate;
      let change = total - sats - fee;
      if (change < 0 && total - sats - rate * vsize(chosen.length, 1) >= 0) change = 0;
      if (change < 0) {
        const have = coins.reduce((s, c) => s + c.sats, 0);
        throw new InsufficientFunds(`the wallet has ${have} sats spendable; paying ${sats} sats needs about ${sats + fee} (fund ${this.address})`);
      }
      if (change < DUST) {
        fee = total - sats; // no change output: the remainder goes to the fee
        change = 0;
      }
      const psbt = new bitcoin.Psbt({ network: this.net });
      psbt.setVersion(2);
      for (const c of chosen) {
        psbt.addInput({ hash: c.txid, index: c.vout, sequence: SEQUENCE_RBF, witnessUtxo: { script: this.key.script, value: BigInt(c.sats) } });
      }
      psbt.addOutput({ script: toScript, value: BigInt(sats) });
      if (change > 0) psbt.addOutput({ script: this.key.script, value: BigInt(change) });
      psbt.signAllInputs(this.key.signer);
      psbt.finalizeAllInputs();
      const tx = psbt.extractTransaction();
      if (fee >= tx.virtualSize() * rate) {
        return { tx, fee, change, inputs: chosen.map((c) => ({ txid: c.txid, vout: c.vout, sats: c.sats })) };
      }
    }
    throw new Error('could not build a transaction paying its fee');
  }

  private async save(rec: SpendRecord, sync = true): Promise<void> {
    await this.o.write([{ type: 'put', key: layout.walletSpend(rec.seq), value: json(rec) }], { sync });
  }

  /** Sends a recorded transaction (again); the same txid pays once however often it is sent. */
  private async broadcast(rec: SpendRecord): Promise<SpendRecord> {
    try {
      const txid = await this.client.request<string>('blockchain.transaction.broadcast', [rec.hex]);
      if (txid !== rec.txid) this.log(`wallet    the server answered ${txid} to the broadcast of ${rec.txid}`);
      if (rec.state === 'signed') {
        rec.state = 'broadcast';
        delete rec.error;
        await this.save(rec);
      }
    } catch (err) {
      if (!(err instanceof ElectrumRpcError)) {
        this.log(`wallet    ${rec.txid} not sent yet (${(err as Error).message}); it is sent again when the server is back`);
        return rec;
      }
      // refused: known to the network already (sent before a crash), or never accepted anywhere
      const known = await this.client.request('blockchain.transaction.get', [rec.txid]).then(() => true, () => false);
      if (known) {
        if (rec.state === 'signed') { rec.state = 'broadcast'; await this.save(rec); }
      } else {
        rec.state = 'failed';
        rec.error = err.message;
        await this.save(rec);
        this.log(`wallet    ${rec.txid} for ${rec.purpose} was refused and never entered the network (${err.message}); its coins are free again`);
      }
    }
    return rec;
  }

  /**
   * Looks at every spend not confirmed yet: confirmed ones (proven) are marked so, those the server does not
   * know are sent again (a crash between record and broadcast, or one dropped from a mempool).
   */
  reconcile(): Promise<void> {
    this.reconciling ??= this.lock.run(async () => {
      if (!this.client.connected) return;
      const open = (await this.records()).filter((r) => r.state === 'signed' || r.state === 'broadcast');
      if (open.length === 0) return;
      const history = await this.client.request<Array<{ tx_hash: string; height: number }>>('blockchain.scripthash.get_history', [this.key.scriptHash]);
      const heights = new Map((Array.isArray(history) ? history : []).map((h) => [h.tx_hash, h.height]));
      for (const rec of open) {
        const h = heights.get(rec.txid);
        if (h !== undefined && h > 0 && (await this.proven(rec.txid, h))) {
          rec.state = 'confirmed';
          rec.height = h;
          await this.save(rec);
        } else if (h !== undefined) {
          if (rec.state === 'signed') { rec.state = 'broadcast'; await this.save(rec); }
        } else {
          if (rec.state === 'signed') this.log(`wallet    sending ${rec.txid} (${rec.purpose}) again: it was recorded but not seen by the server`);
          await this.broadcast(rec);
        }
      }
    }).catch((err) => this.log(`wallet    reconcile: ${(err as Error).message}`)).finally(() => { this.reconciling = undefined; });
    return this.reconciling;
  }

  status() {
    return { address: this.address, connected: this.client.connected, server: this.client.server, spendLimit: this.o.spendLimit };
  }
}
