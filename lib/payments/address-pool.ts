// Addresses derived ahead. Deriving a file's address (BIP32 CKDpub, one elliptic-curve multiplication) was
// half of a paid upload's CPU time on the event loop, inside the ledger's lock. The pool derives the
// addresses after the ledger's next index in a worker thread, keeps them in LevelDB (p[index],
// k[addressPool]) and the next few thousand in memory, so `allocate` stays synchronous and O(1).
//
// Money safety: an entry is only ever used for the key and network it was derived from (a fingerprint of
// both is stored with the pool; another one clears it at open), the first and last entries are checked
// against an inline derivation at open, and entries and their end marker go down in one batch, so a crash
// mid-fill leaves a consistent pool. The pool holds exactly the indices [next, end); anything outside is a
// leftover that is never read. An index the pool does not have (empty, not loaded yet) is derived inline,
// as without a pool: an upload never waits for the pool and never fails because of it.
// Indices are still handed out strictly in order (the ledger's next index), so wallets' gap limits see
// exactly what they saw without a pool.

import path from 'path';
import { Worker } from 'worker_threads';
import { layout, PREFIX } from '../store/layout';
import type { BatchOp, Db } from '../store/db';
import { deriveFileAddress, xpubFingerprint, type ParsedXpub } from './xpub';

/** addresses derived per request to the worker and written per batch */
export const POOL_BATCH = 500;
/** entries kept in memory at most; more are read from LevelDB when half are used */
export const POOL_WINDOW = 4096;
/** the highest index plus one BIP32 allows for a non-hardened child */
const INDEX_LIMIT = 0x80000000;

export interface AddressPoolOptions {
  db: Db;
  key: ParsedXpub;
  /** the operator's key as given (the worker parses it with the same parser) */
  xpub: string;
  /** addresses to hold ready; 0: no pool (a stored one is cleared) */
  target: number;
  /** the ledger's next index: the first one the pool may hold */
  next: number;
  log?: (line: string) => void;
  /** entries kept in memory (tests use a small window) */
  window?: number;
}

export interface PooledAddress {
  address: string;
  scriptHash: string;
  /** for the account's batch: the pool entry of this index, deleted with it */
  ops: BatchOp[];
}

interface Entry { address: string; scriptHash: string }

export class AddressPool {
  private readonly db: Db;
  private readonly key: ParsedXpub;
  private readonly fingerprint: string;
  private readonly log: (line: string) => void;
  private readonly windowMax: number;
  readonly target: number;
  /** the next index the ledger will take */
  private next: number;
  /** the pool's end: entries for [next, end) are in LevelDB (queued or applied) */
  private end: number;
  /** entries for [next, appliedEnd) are applied, so range reads see them */
  private appliedEnd: number;
  /** entries in memory: the indices [next, windowEnd) */
  private readonly window = new Map<number, Entry>();
  private windowEnd: number;
  private loading = false;
  private filling: Promise<void> | undefined;
  private worker: Worker | undefined;
  private stopped = false;
  /** the worker failed: no more filling until the next start (addresses are derived inline) */
  private broken = false;
  /** how many allocations the pool answered, and how many were derived inline (status, tests) */
  private readonly counts = { pooled: 0, inline: 0 };

  private constructor(private readonly o: AddressPoolOptions, end: number) {
    this.db = o.db;
    this.key = o.key;
    this.fingerprint = xpubFingerprint(o.key);
    this.log = o.log ?? (() => {});
    this.windowMax = Math.max(1, o.window ?? POOL_WINDOW);
    this.target = Math.max(0, Math.min(o.target, INDEX_LIMIT));
    this.next = this.windowEnd = o.next;
    this.end = this.appliedEnd = end;
  }

  /** Reads the stored pool, checks it belongs to this key, drops leftovers, and starts filling if below target. */
  static async open(o: AddressPoolOptions): Promise<AddressPool> {
    const log = o.log ?? (() => {});
    const fingerprint = xpubFingerprint(o.key);
    const raw = await o.db.get(layout.singleton('addressPool'));
    const stored = raw ? parseMarker(raw) : undefined;
    let end = Math.max(stored?.end ?? o.next, o.next);
    if (stored && stored.fingerprint !== fingerprint) {
      log('address pool: it was derived from another key or network; discarded');
      end = o.next;
    } else if (end > o.next && o.target > 0) {
      const first = await readEntry(o.db, o.next);
      const last = await readEntry(o.db, end - 1);
      if (!same(first, deriveFileAddress(o.key, o.next)) || !same(last, deriveFileAddress(o.key, end - 1))) {
        log(`address pool: entries ${o.next} … ${end - 1} do not match this key's addresses; discarded`);
        end = o.next;
      }
    }
    if (o.target === 0) end = o.next;
    // The marker first: a crash while the leftovers are removed leaves them outside [next, end), never read.
    if (o.target === 0) {
      if (stored) await o.db.batch([{ type: 'del', key: layout.singleton('addressPool') }]);
    } else if (!stored || stored.end !== end || stored.fingerprint !== fingerprint) {
      await o.db.batch([poolMarker(end, fingerprint)]);
    }
    await removeLeftovers(o.db, o.next, end);
    const pool = new AddressPool(o, end);
    await pool.loadWindow();
    pool.kick(true);
    return pool;
  }

  /** Addresses ready to hand out. */
  size(): number {
    return Math.max(0, this.end - this.next);
  }

  /** `filling`: a fill runs (until its worker has ended) */
  status() {
    return { size: this.size(), target: this.target, filling: this.filling !== undefined, fromPool: this.counts.pooled, derivedInline: this.counts.inline };
  }

  /** The address for `index` (the ledger's next), from the pool when it has it, else derived here. */
  allocate(index: number): PooledAddress {
    const entry = this.window.get(index);
    const inPool = index >= this.next && index < this.end;
    if (index >= this.next) {
      // the window covers [next, windowEnd): what lies before the new next is gone
      for (let i = this.next; i < index && i < this.windowEnd; i++) this.window.delete(i);
      this.window.delete(index);
      this.next = index + 1;
      if (this.windowEnd < this.next) this.windowEnd = this.next;
      if (this.appliedEnd < this.next) this.appliedEnd = this.next;
    }
    const { address, scriptHash } = entry ?? deriveFileAddress(this.key, index);
    if (entry) this.counts.pooled++; else this.counts.inline++;
    if (this.window.size <= this.windowMax / 2) void this.loadWindow();
    this.kick(false);
    return { address, scriptHash, ops: inPool ? [{ type: 'del', key: layout.pooledAddress(index) }] : [] };
  }

  /** Stops filling (the worker is terminated) and waits for a batch being written. */
  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
    await this.filling;
  }

  /**
   * Starts the fill when the pool is below its target: any amount below at open and when a fill ends, a
   * batch or a quarter below after an allocation (so a trickle of uploads does not start a worker each).
   */
  private kick(toTarget: boolean) {
    if (this.stopped || this.broken || this.filling || this.target === 0) return;
    const low = toTarget ? this.target : this.target - Math.min(POOL_BATCH, Math.ceil(this.target / 4)) + 1;
    if (this.size() >= low || this.end >= INDEX_LIMIT) return;
    this.filling = this.fill()
      .catch((err) => {
        if (this.stopped) return;
        this.broken = true;
        this.log(`address pool: filling stopped: ${(err as Error).message}; addresses are derived inline until the next start`);
      })
      .finally(() => {
        this.filling = undefined;
        // Allocations while the fill waited for its worker to end found it still running and started
        // nothing: the fill goes on to the target it was started for.
        this.kick(true);
      });
  }

  private async fill() {
    const worker = new Worker(path.join(__dirname, 'address-pool-worker' + path.extname(__filename)), { workerData: { xpub: this.o.xpub, network: this.key.networkName } });
    this.worker = worker;
    try {
      while (!this.stopped && this.size() < this.target) {
        const from = Math.max(this.end, this.next);
        const count = Math.min(POOL_BATCH, this.target - this.size(), INDEX_LIMIT - from);
        if (count <= 0) break;
        const entries = await derive(worker, from, count);
        if (this.stopped) break;
        // uploads meanwhile took these indices (derived inline): keep only what is still ahead
        const lo = Math.max(from, this.next);
        const ops: BatchOp[] = [];
        for (let i = lo; i < from + count; i++) {
          const [address, scriptHash] = entries[i - from];
          ops.push({ type: 'put', key: layout.pooledAddress(i), value: encodeEntry({ address, scriptHash }) });
        }
        if (ops.length === 0) continue;
        const end = from + count;
        ops.push(poolMarker(end, this.fingerprint));
        this.end = end;
        if (!this.loading && this.windowEnd === lo) {
          for (let i = lo; i < end && this.window.size < this.windowMax; i++, this.windowEnd++) {
            const [address, scriptHash] = entries[i - from];
            this.window.set(i, { address, scriptHash });
          }
        }
        await this.db.batch(ops);
        this.appliedEnd = Math.max(this.appliedEnd, end);
        if (this.window.size <= this.windowMax / 2) void this.loadWindow();
        // a turn of the event loop between batches
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      if (this.worker === worker) this.worker = undefined;
      await worker.terminate();
    }
  }

  /** Reads the entries after the window from LevelDB into memory. */
  private async loadWindow() {
    if (this.loading || this.stopped) return;
    this.loading = true;
    try {
      const from = Math.max(this.windowEnd, this.next);
      const to = Math.min(this.appliedEnd, from + this.windowMax - this.window.size);
      if (to <= from) return;
      const read: [number, Entry][] = [];
      for await (const [key, value] of this.db.iterator({ gte: layout.pooledAddress(from), lt: layout.pooledAddress(to) })) {
        read.push([layout.parsePooledAddress(key), decodeEntry(value)]);
      }
      if (this.stopped) return;
      if (this.windowEnd < this.next) this.windowEnd = this.next;
      for (const [i, entry] of read) {
        if (i < this.windowEnd) continue; // taken meanwhile
        if (i !== this.windowEnd || this.window.size >= this.windowMax) break; // keep the window contiguous
        this.window.set(i, entry);
        this.windowEnd++;
      }
    } catch (err) {
      this.log(`address pool: reading entries failed: ${(err as Error).message}`);
    } finally {
      this.loading = false;
    }
  }
}

function derive(worker: Worker, from: number, count: number): Promise<[string, string][]> {
  return new Promise((resolve, reject) => {
    const done = () => { worker.off('message', onMessage); worker.off('error', onError); worker.off('exit', onExit); };
    const onMessage = (m: { from?: number; entries?: [string, string][]; error?: string }) => {
      done();
      if (m.error || !m.entries || m.from !== from || m.entries.length !== count) reject(new Error(m.error ?? 'the worker answered something else'));
      else resolve(m.entries);
    };
    const onError = (err: Error) => { done(); reject(err); };
    const onExit = () => { done(); reject(new Error('the worker exited')); };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage({ from, count });
  });
}

/** The stored marker; an unreadable one reads as a pool of unknown origin (discarded). */
function parseMarker(raw: Buffer): { end: number; fingerprint: string } {
  try {
    const m = JSON.parse(raw.toString());
    if (Number.isSafeInteger(m.end) && m.end >= 0 && typeof m.fingerprint === 'string') return m;
  } catch { /* below */ }
  return { end: 0, fingerprint: '(unreadable)' };
}

function poolMarker(end: number, fingerprint: string): BatchOp {
  return { type: 'put', key: layout.singleton('addressPool'), value: Buffer.from(JSON.stringify({ end, fingerprint })) };
}

function encodeEntry(e: Entry): Buffer {
  return Buffer.concat([Buffer.from(e.scriptHash, 'hex'), Buffer.from(e.address, 'ascii')]);
}

function decodeEntry(v: Buffer): Entry {
  return { scriptHash: v.toString('hex', 0, 32), address: v.toString('ascii', 32) };
}

async function readEntry(db: Db, index: number): Promise<Entry | undefined> {
  const v = await db.get(layout.pooledAddress(index));
  return v && v.length > 32 ? decodeEntry(v) : undefined;
}

const same = (a: Entry | undefined, b: Entry) => a !== undefined && a.address === b.address && a.scriptHash === b.scriptHash;

/** Deletes every entry outside [next, end): taken by accounts whose batch never went down, or a discarded pool. */
async function removeLeftovers(db: Db, next: number, end: number) {
  const { gte, lt } = layout.range(PREFIX.pooledAddress);
  for (const range of [{ gte, lt: layout.pooledAddress(next) }, { gte: layout.pooledAddress(end), lt }]) {
    let ops: BatchOp[] = [];
    for await (const key of db.keys(range)) {
      ops.push({ type: 'del', key });
      if (ops.length >= 1000) { await db.batch(ops); ops = []; }
    }
    if (ops.length) await db.batch(ops);
  }
}
