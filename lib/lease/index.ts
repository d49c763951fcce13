// Leadership of a deployment (several daemons on mounts of one shared data dir), decided by a lease in etcd,
// after Patroni's ha.py: one small loop owns leadership. It renews the lease, checks that the leader key is
// still this term's, and fences the daemon before the lease could run out; nothing else in the daemon
// decides who leads.
//
//   <prefix>/leader   {"host","pid","started"} attached to this daemon's lease; created only if absent
//                     (a transaction on create_revision == 0), so at most one daemon holds it
//   term              the leader key's create_revision: etcd's revision of the transaction that made it,
//                     strictly greater for every later term — the fencing token
//
// Timing with the defaults (--lease-ttl 10): a renewal every 2 s; the fencing deadline is the send time of
// the last renewal etcd answered + 10 s − 3 s (the margin). If renewals fail until then, the daemon fences
// itself (listener closed, onion withdrawn, every store write refused: fence.ts) and exits. The watchdog
// process kills it 1.5 s (half the margin) after the deadline if it could not (event loop stuck, process stopped). The lease
// runs out on etcd 10 s after its last renewal reached etcd, ≥ 1.5 s after that kill; only then can a standby
// create the leader key. A standby polls the key every 500 ms: a dead leader is replaced ≤ 10.5 s after its
// last renewal, plus the new leader's start (docs/scale-out.md has the measured times).
//
// A fully frozen machine (VM paused: the watchdog frozen too) resumes with its deadline in the past; the
// first write of any kind checks the deadline on CLOCK_MONOTONIC and fails. LevelDB's own background threads
// are fenced by the data dir layout instead: each term opens the database under a new directory name
// (db.t<term>, lib/store/index.ts), so a resumed stale process's paths lead nowhere.

import os from 'os';
import { Etcd3, type Lease } from 'etcd3';
import { FencedError, monotonicMs, type Fence } from './fence';
import { Watchdog } from './watchdog';

export { FencedError, monotonicMs, type Fence } from './fence';

export interface LeaderOptions {
  endpoints: string[];
  /** the deployment's key prefix, e.g. /bitdrop/site1 */
  prefix: string;
  /** lease TTL in seconds (default 10) */
  ttlSec?: number;
  /** how often a standby looks at the leader key (ms, default 500) */
  pollMs?: number;
  log: (line: string) => void;
  /** false in tests that run a leader inside the test process */
  watchdog?: boolean;
}

/** Who leads, as written in the leader key. */
export interface LeaderInfo { host: string; pid: number; started: string }

/** etcd did not answer in time */
class Timeout extends Error {}
/** another daemon leads, and this one was not started with --standby */
export class LeaderHeldError extends Error {}

const within = <T>(ms: number, p: Promise<T>, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Timeout(`etcd: no answer to ${what} in ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
};

export class Leadership {
  readonly ttlMs: number;
  /** fencing happens this long before the lease can run out on etcd */
  readonly marginMs: number;
  readonly renewEveryMs: number;
  /** this daemon's term (0 until it leads) */
  term = 0;
  private deadline = 0;
  private fencedWhy: string | undefined;
  private readonly client: Etcd3;
  private readonly key: string;
  private lease: Lease | undefined;
  private loop: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private watchdog: Watchdog | undefined;
  private onFenced: ((why: string) => void) | undefined;
  private closed = false;
  private renewFailing = '';

  constructor(private readonly o: LeaderOptions) {
    this.ttlMs = (o.ttlSec ?? 10) * 1000;
    this.marginMs = Math.max(2000, Math.round(this.ttlMs * 0.3));
    this.renewEveryMs = Math.max(500, Math.round(this.ttlMs / 5));
    this.key = `${o.prefix.replace(/\/+$/, '')}/leader`;
    this.client = new Etcd3({
      hosts: o.endpoints,
      dialTimeout: 2000,
      // no call may hold the loop longer than a renewal period; the loop retries itself
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + Math.min(2000, this.renewEveryMs) }),
    });
  }

  /** Who leads now, if anyone (for the standby's line and `bitdrop status`). */
  async leader(): Promise<LeaderInfo | undefined> {
    const v = await within(3000, this.client.get(this.key).string(), `get ${this.key}`);
    if (v === null) return undefined;
    try { return JSON.parse(v) as LeaderInfo; } catch { return { host: '?', pid: 0, started: v }; }
  }

  /**
   * Becomes the leader: at once when no one leads; otherwise, with `wait`, once the leader's key is gone
   * (released, or its lease ran out), polling every 500 ms. Without `wait` a held key is an error. Resolves
   * false when `stopped()` turned true while waiting.
   */
  async acquire(opts: { wait: boolean; stopped: () => boolean; onWaiting?: (holder: LeaderInfo | undefined) => void; onFenced: (why: string) => void }): Promise<boolean> {
    this.onFenced = opts.onFenced;
    let announced = false;
    let unreachable = '';
    for (;;) {
      if (opts.stopped()) return false;
      try {
        const holder = await this.leader();
        if (!holder) {
          if (await this.tryCreate()) return true;
        } else if (!opts.wait) {
          throw new LeaderHeldError(`another bitdrop (pid ${holder.pid} on ${holder.host}) leads ${this.o.prefix} in etcd; stop it first, or wait with --standby`);
        } else if (!announced) {
          announced = true;
          opts.onWaiting?.(holder);
        }
        if (unreachable) this.o.log(`lease     etcd answers again`);
        unreachable = '';
      } catch (err) {
        if (opts.stopped()) return false;
        // anything else from etcd or its client (no quorum, a member down, an open circuit breaker): wait
        if (err instanceof LeaderHeldError) throw err;
        if (!unreachable) this.o.log(`lease     etcd (${this.o.endpoints.join(', ')}) does not answer: ${(err as Error).message}; trying again`);
        unreachable = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 500));
    }
  }

  /** Grants a lease and creates the leader key on it if no one holds it; true when this daemon leads. */
  private async tryCreate(): Promise<boolean> {
    const lease = this.client.lease(this.ttlMs / 1000, { autoKeepAlive: false });
    lease.on('lost', () => undefined); // the loop notices a lost lease itself
    const sent = monotonicMs();
    try {
      const id = await within(3000, lease.grant(), 'lease grant');
      const info: LeaderInfo = { host: os.hostname(), pid: process.pid, started: new Date().toISOString() };
      const res = await within(3000, this.client.if(this.key, 'Create', '==', 0)
        .then(this.client.put(this.key).value(JSON.stringify(info)).lease(id))
        .commit(), 'leader transaction');
      if (!res.succeeded) {
        await within(2000, lease.revoke(), 'lease revoke').catch(() => undefined);
        return false;
      }
      this.lease = lease;
      this.term = Number(res.header.revision);
      this.setDeadline(sent);
      if (this.o.watchdog !== false) {
        this.watchdog = new Watchdog(Math.round(this.marginMs / 2), (why) => this.fence(why));
        this.watchdog.start();
        this.watchdog.arm(this.deadline);
      }
      this.o.log(`lease     leading ${this.o.prefix} in term ${this.term} (lease ${this.ttlMs / 1000} s, renewed every ${this.renewEveryMs / 1000} s, fencing ${this.marginMs / 1000} s before it could run out)`);
      this.schedule();
      return true;
    } catch (err) {
      // A lease granted but not used runs out by itself after its TTL.
      lease.release();
      throw err;
    }
  }

  private setDeadline(sent: number) {
    this.deadline = sent + this.ttlMs - this.marginMs;
    this.watchdog?.arm(this.deadline);
    clearTimeout(this.fenceTimer);
    this.fenceTimer = setTimeout(() => {
      this.fence(`the leader lease could not be renewed for ${Math.round((this.ttlMs - this.marginMs) / 1000)} s${this.renewFailing ? ` (${this.renewFailing})` : ''}`);
    }, Math.max(0, this.deadline - monotonicMs()));
  }

  private schedule() {
    if (this.closed || this.fencedWhy) return;
    this.loop = setTimeout(() => { void this.renew().finally(() => this.schedule()); }, this.renewEveryMs);
  }

  /** One turn of the loop: renew the lease, and check the leader key is still this term's. */
  private async renew() {
    const lease = this.lease;
    if (!lease || this.fencedWhy || this.closed) return;
    const sent = monotonicMs();
    try {
      const res = await within(this.renewEveryMs, lease.keepaliveOnce(), 'lease keepalive');
      if (Number(res.TTL) <= 0) return this.fence('etcd says the leader lease is gone');
      const kv = await within(this.renewEveryMs, this.client.get(this.key).exec(), `get ${this.key}`);
      const mine = kv.kvs[0];
      if (!mine || Number(mine.create_revision) !== this.term) return this.fence(`the leader key is no longer this term's (term ${this.term})`);
      if (this.fencedWhy || this.closed) return;
      this.setDeadline(sent);
      if (this.renewFailing) this.o.log('lease     renewed again');
      this.renewFailing = '';
    } catch (err) {
      if (!this.renewFailing) this.o.log(`lease     renewal failed: ${(err as Error).message}; fencing in ${Math.max(0, Math.round((this.deadline - monotonicMs()) / 100) / 10)} s unless it succeeds`);
      this.renewFailing = (err as Error).message;
    }
  }

  /** Throws FencedError unless this daemon leads and its deadline is ahead (the check of every store write). */
  readonly check: Fence = () => {
    if (this.fencedWhy) throw new FencedError(this.fencedWhy);
    if (this.term === 0) throw new FencedError('it does not hold the leader lease');
    if (monotonicMs() >= this.deadline) {
      this.fence('the leader lease was not renewed in time');
      throw new FencedError(this.fencedWhy!);
    }
  };

  /** whether this daemon leads now */
  leading(): boolean {
    return this.term > 0 && !this.fencedWhy && monotonicMs() < this.deadline;
  }

  /** Stops leading at once: every later write fails; the daemon's onFenced stops serving. */
  fence(why: string) {
    if (this.fencedWhy || this.closed) return;
    this.fencedWhy = why;
    clearTimeout(this.loop);
    clearTimeout(this.fenceTimer);
    this.onFenced?.(why);
  }

  /**
   * Gives the lease back (a clean stop): the leader key goes with it, and a standby takes over at its next
   * poll instead of after the TTL. Called after the store is closed. A fenced daemon revokes too: it knows
   * it writes nothing more.
   */
  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.loop);
    clearTimeout(this.fenceTimer);
    if (this.lease) await within(2000, this.lease.revoke(), 'lease revoke').catch(() => undefined);
    this.watchdog?.stop();
    this.client.close();
  }
}
