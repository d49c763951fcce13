// The daemon's view of payments: which file scripts got paid what, kept current from Electrum.
//
// Two tiers, because Electrum servers limit subscriptions per session (and Tor makes each one dear):
//  - hot: the `budget` most recently handed-out scripts hold a blockchain.scripthash.subscribe. We keep each
//    one's last status hash and fetch history only when the server's status differs (on notification, and
//    after a reconnect when everything hot is resubscribed and compared).
//  - cold: every other live script is re-checked by a sweep paging through `coldSource`, paced so that a full
//    pass takes at most ~80% of sweepPeriodMs. The sweep uses get_history, not subscribe+unsubscribe: for our
//    one-payment-per-file scripts the answer is about as small as a status, it is one round trip instead of
//    two, it works on servers without `unsubscribe` (protocol < 1.4.2), and it never occupies a subscription
//    slot — so "at most `budget` subscriptions" holds by construction. A cold script whose history shows
//    unconfirmed or very recent entries is promoted to hot, so its confirmation (or a reorg) is seen promptly.
//
// 'payments' always carries the full list derived from the current history (never a delta), so RBF
// replacements and reorgs come out exact and a restart simply re-derives. Consumers must treat it as idempotent.
// Confirmations are the ledger's business: tip height - payment height + 1. We only re-check hot scripts with
// mempool entries on a new tip (as a backstop; the server also notifies when their status changes).
//
// Nothing the server says about the chain is believed (lib/chain): the tip is our own header chain, synced
// from the server and checked (links, difficulty, proof of work, AuxPoW); a confirmed history entry is kept
// only with a merkle proof (blockchain.transaction.get_merkle) that leads to the merkle root of our header at
// that height. A server whose headers or proofs do not check is dropped and named in the log; its answer is
// not emitted. Mempool entries pass through as height 0/-1, which the ledger never credits.

import { EventEmitter } from 'events';
import { ElectrumClient, ElectrumRpcError, type ElectrumOptions } from './electrum';
import { parseTxOutputs, paymentsOf, statusOf, validHistory, type HistoryEntry, type Payment, type TxOutputs } from './history';
import { Lru } from './lru';
import { ChainError, HeaderChain, LessWork, ProofError, parseTip, syncChain } from '../chain';

export type { Payment } from './history';

export interface WatcherOptions {
  servers: string[];
  /** the header chain every confirmation is checked against (lib/chain), of the same network as the servers */
  chain: HeaderChain;
  /** most scripthash subscriptions held on the server at once */
  budget: number;
  /** each cold script is re-checked at least this often (default 24 h) */
  sweepPeriodMs?: number;
  socks?: { host: string; port: number };
  clearnet: boolean;
  log?: (line: string) => void;
  clock?: () => number;
  /** pages through all live files' scripthashes in a stable order; fewer than `limit` ends a pass */
  coldSource: (afterScriptHash: string | undefined, limit: number) => Promise<string[]>;
  sweepPageSize?: number;
  /** upper bound on sweep requests per second (Electrum servers throttle busy sessions) */
  maxSweepRate?: number;
  sweepConcurrency?: number;
  txCacheSize?: number;
  /** a cold script with a payment less than this many blocks deep is promoted to hot */
  promoteDepth?: number;
  electrum?: Partial<Pick<ElectrumOptions, 'timeoutMs' | 'connectTimeoutMs' | 'pingIntervalMs' | 'backoff' | 'clientName'>>;
}

export interface Tip {
  height: number;
  hash?: string;
}

export interface WatcherStatus {
  connected: boolean;
  server?: string;
  /** scripthash subscriptions live on the server right now (≤ budget) */
  subscriptions: number;
  hot: number;
  height?: number;
  sweep: {
    pass: number;
    /** last scripthash checked: the sweep resumes after it */
    position?: string;
    checkedThisPass: number;
    lastPassScripts?: number;
    lastPassMs?: number;
    /** current pause between two cold checks */
    intervalMs: number;
  };
}

/** Status hashes are kept as their first 52 bits: enough to notice change, and 1M cold entries stay small. */
type StatusKey = number | null;
const statusKey = (s: string | null): StatusKey => (s === null ? null : parseInt(s.slice(0, 13), 16));
const mapKey = (scriptHash: string) => parseInt(scriptHash.slice(0, 13), 16);
const SCRIPTHASH = /^[0-9a-f]{64}$/;

interface HotEntry {
  status: StatusKey;
  unconfirmed: boolean;
}

export class Watcher extends EventEmitter {
  private readonly o: Required<Omit<WatcherOptions, 'socks' | 'log' | 'electrum' | 'chain'>> & Pick<WatcherOptions, 'socks' | 'electrum'>;
  private readonly chain: HeaderChain;
  /** one header sync at a time; the latest announced tip wins */
  private chainOp: Promise<void> = Promise.resolve();
  /** txid → block hash its merkle proof was checked against (valid while our chain has that block there) */
  private proven: Lru<string, string>;
  private readonly log: (line: string) => void;
  private readonly client: ElectrumClient;
  /** in least-recently-hot order */
  private hot = new Map<string, HotEntry>();
  /** last known status of paid cold scripts; absent = empty or never seen */
  private coldStatus = new Map<number, number>();
  /** subscriptions on the current session, counted from the moment the request is sent; replaced per session */
  private subs = new Set<string>();
  private slotWaiters: Array<() => void> = [];
  private ops = new Map<string, Promise<void>>();
  private refreshing = new Map<string, Promise<void>>();
  private dirty = new Set<string>();
  private forced = new Set<string>();
  private txs: Lru<string, TxOutputs>;
  private current?: Tip;
  private running = false;
  private resynced?: Promise<void>;
  private sweepLoopDone?: Promise<void>;
  private wakers = new Set<() => void>();
  /** what everyone waiting for the server shares (untilConnected) */
  private reconnected?: Promise<void>;
  private sweep = { pass: 0, position: undefined as string | undefined, checked: 0, lastCount: undefined as number | undefined, lastMs: undefined as number | undefined, intervalMs: 0 };

  constructor(opts: WatcherOptions) {
    super();
    if (!Number.isSafeInteger(opts.budget) || opts.budget < 0) throw new Error(`watch budget ${opts.budget} is not a whole number ≥ 0`);
    this.o = {
      sweepPeriodMs: 86_400_000,
      clock: Date.now,
      sweepPageSize: 1000,
      maxSweepRate: 20,
      sweepConcurrency: 4,
      txCacheSize: 10_000,
      promoteDepth: 6,
      ...opts,
    };
    this.log = opts.log ?? (() => {});
    this.chain = opts.chain;
    this.txs = new Lru(this.o.txCacheSize);
    this.proven = new Lru(this.o.txCacheSize);
    this.client = new ElectrumClient({ servers: opts.servers, socks: opts.socks, clearnet: opts.clearnet, log: this.log, ...opts.electrum });
    this.client.on('connected', () => this.onConnected());
    this.client.on('disconnected', () => this.newSession());
    this.client.on('blockchain.headers.subscribe', (params: unknown[]) => this.onHeader(params[0]));
    this.client.on('blockchain.scripthash.subscribe', ([sh, status]: unknown[]) => {
      // a notification can race an unsubscribe; only scripts still hot on this session count
      if (typeof sh === 'string' && this.hot.has(sh) && this.subs.has(sh)) {
        this.serial(sh, () => this.onStatus(sh, status as string | null));
      }
    });
  }

  /** Connects (or keeps trying in the background) and starts the sweep. Never throws for network reasons. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.client.start();
    if (this.client.connected) await this.resynced;
    this.sweepLoopDone = this.sweepLoop().catch((err) => this.log(`watcher: sweep stopped: ${(err as Error).stack}`));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wakeAll();
    await this.client.stop();
    await this.sweepLoopDone;
  }

  tip(): Tip | undefined {
    return this.current && { ...this.current };
  }

  /** An address was just handed out: subscribe now; the least recently hot beyond the budget fall back to the sweep. */
  watchHot(scriptHash: string): void {
    assertScriptHash(scriptHash);
    const entry = this.hot.get(scriptHash);
    if (entry) {
      this.hot.delete(scriptHash);
      this.hot.set(scriptHash, entry);
      return;
    }
    if (this.o.budget === 0) return;
    const k = mapKey(scriptHash);
    this.hot.set(scriptHash, { status: this.coldStatus.get(k) ?? null, unconfirmed: false });
    this.coldStatus.delete(k);
    while (this.hot.size > this.o.budget) this.evict(this.hot.keys().next().value as string);
    if (this.client.connected) void this.serverSubscribe(scriptHash);
  }

  /** The file is gone: forget the script. */
  unwatch(scriptHash: string): void {
    this.hot.delete(scriptHash);
    this.coldStatus.delete(mapKey(scriptHash));
    this.dirty.delete(scriptHash);
    void this.serverUnsubscribe(scriptHash);
  }

  /** Fetches the script's history now and emits 'payments' (even if unchanged). Rejects when not connected. */
  checkNow(scriptHash: string): Promise<void> {
    assertScriptHash(scriptHash);
    return this.refresh(scriptHash, true);
  }

  status(): WatcherStatus {
    const s = this.sweep;
    return {
      connected: this.client.connected,
      server: this.client.server,
      subscriptions: this.client.connected ? this.subs.size : 0,
      hot: this.hot.size,
      height: this.current?.height,
      sweep: { pass: s.pass, position: s.position, checkedThisPass: s.checked, lastPassScripts: s.lastCount, lastPassMs: s.lastMs, intervalMs: s.intervalMs },
    };
  }

  // --- session -------------------------------------------------------------------------------------

  private onConnected(): void {
    this.newSession();
    this.resynced = this.resync().catch((err) => this.log(`watcher: resync failed: ${(err as Error).message}`));
  }

  /** Subscriptions die with their session; anyone waiting for a slot re-checks. */
  private newSession(): void {
    this.subs = new Set();
    this.freeSlot();
  }

  private async resync(): Promise<void> {
    const announced = await this.client.request('blockchain.headers.subscribe', []);
    const behind = ((announced as { height?: number } | null)?.height ?? 0) - this.chain.height;
    const synced = this.onHeader(announced);
    // A first run on a real network checks many headers (mainnet: ~200k since the checkpoint): do not hold up
    // the daemon's start for that; confirmations wait for the chain (proof checks queue behind the sync).
    if (behind <= 2016) await synced;
    else this.log(`watcher: checking ${behind} headers from ${this.client.server} in the background; confirmations count once they are checked`);
    // most recently hot first: those are the addresses someone is paying right now
    await pool([...this.hot.keys()].reverse(), 16, (sh) => this.serverSubscribe(sh));
  }

  /** A tip announced by the server: sync our checked chain to it; a server whose headers do not check is dropped. */
  private onHeader(announced: unknown): Promise<void> {
    const server = this.client.server;
    const run = async () => {
      if (!server || this.client.server !== server) return; // that session is gone
      try {
        await syncChain(this.chain, (m, p) => this.client.request(m, p), parseTip(this.chain, announced));
      } catch (err) {
        if (err instanceof ChainError) return this.lied(server, err);
        if (err instanceof LessWork) return this.log(`watcher: ${server} follows a branch with less work than ours; keeping ours (${err.message})`);
        throw err;
      }
      this.newTip();
    };
    const next = this.chainOp.then(run).catch((err) => this.log(`watcher: header sync: ${(err as Error).message}`));
    this.chainOp = next;
    return next;
  }

  /** Brings our chain to the server's current tip (a history names a height we have not seen yet). */
  private async syncNow(): Promise<void> {
    await this.onHeader(await this.client.request('blockchain.headers.subscribe', []));
  }

  private newTip(): void {
    const next = { height: this.chain.height, hash: this.chain.tipHash };
    if (this.current && this.current.height === next.height && this.current.hash === next.hash) return;
    this.current = next;
    this.emit('tip', { ...next });
    for (const [sh, e] of this.hot) if (e.unconfirmed) this.serial(sh, () => this.refresh(sh, false));
  }

  private lied(server: string, err: Error): void {
    this.client.drop(server, err.message);
  }

  // --- subscriptions (serialised per script, so subscribe/unsubscribe/refresh never interleave) -----

  private serial(sh: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.ops.get(sh) ?? Promise.resolve())
      .then(fn)
      .catch((err) => this.log(`watcher: ${sh.slice(0, 16)}…: ${(err as Error).message}`));
    this.ops.set(sh, next);
    void next.then(() => this.ops.get(sh) === next && this.ops.delete(sh));
    return next;
  }

  private serverSubscribe(sh: string): Promise<void> {
    return this.serial(sh, async () => {
      const subs = this.subs;
      // wait for a slot: an evicted script's unsubscribe must be answered before a new subscribe goes out
      while (this.hot.has(sh) && !subs.has(sh) && subs === this.subs && this.client.connected && subs.size >= this.o.budget) {
        await new Promise<void>((r) => this.slotWaiters.push(r));
      }
      if (!this.hot.has(sh) || subs.has(sh) || subs !== this.subs || !this.client.connected) return;
      subs.add(sh);
      let status: unknown;
      try {
        status = await this.client.request('blockchain.scripthash.subscribe', [sh]);
      } catch (err) {
        subs.delete(sh);
        this.freeSlot();
        throw err;
      }
      if (status !== null && typeof status !== 'string') throw new Error(`subscribe answered ${JSON.stringify(status)}`);
      await this.onStatus(sh, status);
    });
  }

  private serverUnsubscribe(sh: string): Promise<void> {
    return this.serial(sh, async () => {
      const subs = this.subs;
      if (!subs.has(sh) || this.hot.has(sh)) return;
      try {
        await this.client.request('blockchain.scripthash.unsubscribe', [sh]);
        subs.delete(sh);
        this.freeSlot();
      } catch (err) {
        if (!(err instanceof ElectrumRpcError)) return; // the session died, and its subscriptions with it
        // Protocol < 1.4.2 has no unsubscribe: the only way to shed subscriptions is a fresh session.
        this.log(`watcher: ${this.client.server} cannot unsubscribe (${err.message}); reconnecting to stay within the budget`);
        this.client.reconnect('shedding subscriptions');
      }
    });
  }

  private freeSlot(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const w of waiters) w();
  }

  private evict(sh: string): void {
    const e = this.hot.get(sh)!;
    this.hot.delete(sh);
    if (e.status !== null) this.coldStatus.set(mapKey(sh), e.status);
    void this.serverUnsubscribe(sh);
  }

  private knownStatus(sh: string): StatusKey {
    const e = this.hot.get(sh);
    return e ? e.status : this.coldStatus.get(mapKey(sh)) ?? null;
  }

  private async onStatus(sh: string, status: string | null): Promise<void> {
    if (statusKey(status) === this.knownStatus(sh)) return; // unchanged: no history fetch
    await this.refresh(sh, false);
  }

  // --- history → payments ----------------------------------------------------------------------------

  /** get_history, and if the status changed (or `force`): fetch the transactions and emit the full list. */
  private refresh(sh: string, force: boolean): Promise<void> {
    if (force) this.forced.add(sh);
    const running = this.refreshing.get(sh);
    if (running) {
      this.dirty.add(sh); // the running loop goes round once more with a fresh history
      return running;
    }
    const p = (async () => {
      do {
        this.dirty.delete(sh);
        const history = await this.client.request('blockchain.scripthash.get_history', [sh]);
        if (!validHistory(history)) throw new Error('get_history: malformed answer');
        const status = statusKey(statusOf(history));
        const force = this.forced.delete(sh);
        if (status === this.knownStatus(sh) && !force) continue;
        const outputs = await this.transactions(history);
        await this.checkConfirmations(history);
        const payments = paymentsOf(sh, history, (txid) => outputs.get(txid)!);
        this.record(sh, status, history);
        this.emit('payments', sh, payments);
      } while (this.dirty.has(sh));
    })().finally(() => this.refreshing.delete(sh));
    this.refreshing.set(sh, p);
    return p;
  }

  private record(sh: string, status: StatusKey, history: HistoryEntry[]): void {
    const unconfirmed = history.some((e) => e.height <= 0);
    const hot = this.hot.get(sh);
    if (hot) {
      hot.status = status;
      hot.unconfirmed = unconfirmed;
      return;
    }
    if (status === null) this.coldStatus.delete(mapKey(sh));
    else this.coldStatus.set(mapKey(sh), status);
    const tip = this.current?.height ?? Infinity;
    const recent = history.some((e) => e.height > 0 && tip - e.height + 1 < this.o.promoteDepth);
    if (unconfirmed || recent) this.watchHot(sh); // someone is paying it now: follow it closely
  }

  /**
   * Every confirmed entry needs a merkle proof against our checked header at its height. A proof that fails
   * once may be a reorg we have not synced yet: sync and ask again; failing twice, the server is lying.
   */
  private async checkConfirmations(history: HistoryEntry[]): Promise<void> {
    const server = this.client.server;
    const confirmed = history.filter((e) => e.height > 0 && (this.chain.hashAt(e.height) === undefined || this.proven.get(e.tx_hash) !== this.chain.hashAt(e.height)));
    if (confirmed.length === 0) return;
    if (Math.max(...confirmed.map((e) => e.height)) > this.chain.height) await this.syncNow();
    await pool(confirmed, 8, async (e) => {
      for (let attempt = 1; ; attempt++) {
        try {
          const proof = await this.client.request('blockchain.transaction.get_merkle', [e.tx_hash, e.height]).catch((err) => {
            // a server that lists a transaction at a height but cannot prove it there contradicts itself
            if (err instanceof ElectrumRpcError) throw new ProofError(`no merkle proof for ${e.tx_hash} at height ${e.height}: ${err.message}`);
            throw err;
          });
          this.chain.verifyTxProof(e.tx_hash, e.height, proof);
          this.proven.set(e.tx_hash, this.chain.hashAt(e.height)!);
          return;
        } catch (err) {
          if (!(err instanceof ProofError)) throw err;
          if (attempt === 1) {
            await this.syncNow();
            continue;
          }
          if (server) this.lied(server, err);
          throw err;
        }
      }
    });
  }

  private async transactions(history: HistoryEntry[]): Promise<Map<string, TxOutputs>> {
    const out = new Map<string, TxOutputs>();
    const missing: string[] = [];
    for (const { tx_hash } of history) {
      const cached = this.txs.get(tx_hash);
      if (cached) out.set(tx_hash, cached);
      else if (!out.has(tx_hash)) missing.push(tx_hash);
    }
    await pool([...new Set(missing)], 8, async (txid) => {
      const raw = await this.client.request('blockchain.transaction.get', [txid]);
      if (typeof raw !== 'string') throw new Error(`transaction.get ${txid}: not a hex string`);
      // a 64-byte "transaction" could be an inner merkle node passed off as a leaf (the known SPV weakness)
      if (raw.length === 128) throw new Error(`transaction.get ${txid}: a 64-byte transaction is refused`);
      const outputs = parseTxOutputs(txid, raw);
      this.txs.set(txid, outputs);
      out.set(txid, outputs);
    });
    return out;
  }

  // --- cold sweep ------------------------------------------------------------------------------------

  private async sweepLoop(): Promise<void> {
    while (this.running) {
      const passStart = this.o.clock();
      const s = this.sweep;
      s.pass++;
      s.checked = 0;
      let after: string | undefined;
      let seen = 0;
      let nextAt = passStart; // when the next check may start (a schedule, so timer granularity does not add up)
      const inFlight = new Set<Promise<void>>();
      for (;;) {
        let page: string[];
        try {
          page = await this.o.coldSource(after, this.o.sweepPageSize);
        } catch (err) {
          this.log(`watcher: coldSource failed: ${(err as Error).message}`);
          await this.sleep(5000);
          if (!this.running) return;
          continue;
        }
        for (const sh of page) {
          if (!this.running) return;
          seen++;
          after = sh;
          if (this.hot.has(sh) || !SCRIPTHASH.test(sh)) continue;
          s.intervalMs = this.interval(passStart, seen);
          await this.sleep(nextAt - this.o.clock());
          while (inFlight.size >= this.o.sweepConcurrency) await Promise.race(inFlight);
          if (!this.client.connected) await this.untilConnected();
          if (!this.running) return;
          // after an outage catch up at most one second's worth in a burst; interval() speeds up the rest
          nextAt = Math.max(nextAt, this.o.clock() - 1000) + s.intervalMs;
          const check = this.checkCold(sh).finally(() => inFlight.delete(check));
          inFlight.add(check);
          s.position = sh;
          s.checked++;
        }
        if (page.length < this.o.sweepPageSize) break;
      }
      await Promise.all(inFlight);
      s.lastCount = seen;
      s.lastMs = this.o.clock() - passStart;
      // nothing to sweep yet: look again later rather than spin
      if (s.checked === 0) await this.sleep(Math.min(this.o.sweepPeriodMs / 2, 10_000));
    }
  }

  /** Pause between cold checks so the pass ends by 80% of the period; full speed while the size is unknown or we are late. */
  private interval(passStart: number, seen: number): number {
    const floor = 1000 / this.o.maxSweepRate;
    const estimate = this.sweep.lastCount;
    if (estimate === undefined) return floor;
    const remaining = Math.max(estimate, seen) - seen + 1;
    const timeLeft = passStart + 0.8 * this.o.sweepPeriodMs - this.o.clock();
    return Math.max(floor, timeLeft / remaining);
  }

  private async checkCold(sh: string): Promise<void> {
    while (this.running) {
      try {
        return await this.refresh(sh, false);
      } catch (err) {
        if (this.client.connected) return this.log(`watcher: sweep ${sh.slice(0, 16)}…: ${(err as Error).message}`);
        await this.untilConnected(); // lost the server mid-check: do this script again once back
      }
    }
  }

  /**
   * One 'connected' listener however many checks wait: during an outage every cold check in flight
   * (up to sweepConcurrency) and the sweep loop wait here, and a listener each went past Node's limit of 10.
   */
  private untilConnected(): Promise<void> {
    if (this.client.connected || !this.running) return Promise.resolve();
    return (this.reconnected ??= new Promise((resolve) => {
      const done = () => {
        this.client.off('connected', done);
        this.wakers.delete(done);
        this.reconnected = undefined;
        resolve();
      };
      this.client.on('connected', done);
      this.wakers.add(done);
    }));
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0 || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private wakeAll(): void {
    for (const w of [...this.wakers]) w();
    this.freeSlot();
  }
}

function assertScriptHash(sh: string): void {
  if (!SCRIPTHASH.test(sh)) throw new Error(`"${sh}" is not an Electrum scripthash (64 lowercase hex digits)`);
}

/** Runs fn over items with at most `concurrency` at a time; rejects with the first failure after all settle. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item).catch((err) => (failure ??= err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure) throw failure;
}
