// The ledger: one payment account per file (or per reservation, before its upload), kept in LevelDB next
// to the store's keys, with an expiry index ordered by when each account must be looked at again.
// Money math lives in ./account and ./pricing (pure); this file does persistence, locking and timing.

import crypto from 'crypto';
import { UserError } from '../errors';
import { layout, PREFIX } from '../store/layout';
import { Mutex } from '../store/mutex';
import { count, newId, ID_PATTERN, type BatchOp, type Db, type FileManifest, type Store } from '../store';
import { Account, CountedState, Evaluation, Payment, Policy, activate, canSend, evaluate, isConfirmed, paymentsOf } from './account';
import { formatCoins, payable } from './pricing';

export type { Account, Evaluation, Payment, Policy, FileState, CountedState } from './account';

/** What a file is counted as in the persisted counters (files.<state>, bytes.<state>). */
export const COUNTED_STATES: readonly CountedState[] = ['reserved', 'awaiting_payment', 'partially_paid', 'active', 'suspended'];

/** The address for an index (the payments' pool or an inline derivation), and writes to commit with the account. */
export interface AddressAllocator {
  (index: number): { address: string; scriptHash: string; ops?: BatchOp[] };
}

/** What the ledger needs of the payment watcher. */
export interface WatchControl {
  watchHot(scriptHash: string): void;
  unwatch(scriptHash: string): void;
  checkNow?(scriptHash: string): Promise<void>;
}

/** Paid in NMC too: the rate, and where a file's Namecoin address comes from. */
export interface NmcOptions {
  /** sats per NMC (the operator's; bitdrop uses no price oracle) */
  rate: number;
  confirmations: number;
  /** a Namecoin address for the account with this derivation index (an xpub's, or the node wallet's) */
  allocate(index: number): Promise<{ address: string; scriptHash: string }>;
}

export interface NmcView {
  address: string;
  /** what is due now, in NMC base units (1e-8 NMC) at the rate */
  amountDue: number;
  paymentUri: string;
  /** sats per NMC */
  rate: number;
}

export interface LedgerOptions {
  db: Db;
  store: Store;
  policy: Policy;
  maxUnpaidBytes: number;
  allocate: AddressAllocator;
  /** URI scheme for payment links: 'bitcoin' or 'namecoin' */
  uriScheme: string;
  clock?: () => number;
  log?: (line: string) => void;
  nmc?: NmcOptions;
  /** the disk the box may fill (the cost file's): uploads past it get 507 */
  diskBytes?: number;
}

export interface PaymentView {
  state: string;
  address: string;
  amountDue: number;
  balance: number;
  credits: number;
  pending: number;
  paidThrough: string | null;
  paymentUri: string;
}

/** A reservation ("reserve first"): what to pay, until when, and whether an upload has used it. */
export interface ReservationView extends PaymentView {
  reservation: string;
  size: number;
  used: boolean;
  expires: string;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
/** how long after its paid time an active file is looked at again (its balance is negative by then) */
const SUSPEND_CHECK_DELAY_MS = 60_000;
/** expiry-index entries looked at per turn of the event loop */
const SWEEP_SLICE = 200;

export class Ledger {
  readonly policy: Policy;
  private readonly lock = new Mutex();
  private readonly clock: () => number;
  private readonly log: (line: string) => void;
  private nextIndex = 0;
  private tipHeight = 0;
  /** total size of uploads and reservations not activated yet, including uploads not committed yet */
  private unpaidBytes = 0;
  /** downloads in flight per file (their bytes are already debited): the sweep leaves these files alone */
  private readonly inFlight = new Map<string, number>();
  /** settles of ended downloads not written yet: a stopping daemon waits for them before the store closes */
  private readonly settling = new Set<Promise<void>>();
  /** accounts of deletions in progress, for forgetId after the commit */
  private readonly forgotten = new Map<string, Account>();
  private watch: WatchControl = { watchHot() {}, unwatch() {} };
  private nmcWatch: WatchControl = { watchHot() {}, unwatch() {} };
  private nmcTipHeight = 0;
  private readonly sweepLock = new Mutex();
  private sweepsRunning = 0;
  private stopped = false;

  private constructor(private readonly o: LedgerOptions) {
    this.policy = o.policy;
    this.clock = o.clock ?? Date.now;
    this.log = o.log ?? (() => {});
  }

  /** Reads a few keys, never every account: the totals it needs are persisted counters (k[counters]). */
  static async open(o: LedgerOptions): Promise<Ledger> {
    const l = new Ledger(o);
    const n = await o.db.get(layout.nextIndex());
    l.nextIndex = n ? n.readUInt32BE(0) : 0;
    const tip = await o.db.get(layout.singleton('tip'));
    l.tipHeight = tip ? JSON.parse(tip.toString()).height : 0;
    const nmcTip = await o.db.get(layout.singleton('nmcTip'));
    l.nmcTipHeight = nmcTip ? JSON.parse(nmcTip.toString()).height : 0;
    await l.settleCrashedDownloads();
    if (o.store.counters().accounts === undefined) await l.countOnce();
    l.unpaidBytes = o.store.counters().unpaidBytes ?? 0;
    return l;
  }

  /**
   * Downloads still open in the database were cut by a crash (or kill -9): their bytes were debited before
   * the first byte left, and how many left is unknown, so they stay charged in full. Only the markers go.
   */
  private async settleCrashedDownloads() {
    const ops: BatchOp[] = [];
    let bytes = 0;
    for await (const [key, value] of this.o.db.iterator(layout.range(PREFIX.download))) {
      ops.push({ type: 'del', key });
      bytes += Number(value.readBigUInt64BE(0));
    }
    if (ops.length === 0) return;
    await this.o.store.write(ops);
    this.log(`${ops.length} download${ops.length > 1 ? 's were' : ' was'} cut by a crash: charged in full (${bytes} bytes)`);
  }

  /**
   * A store from before the counters: evaluate every account once, file it under its state and in the
   * maturing index, and write the totals last (a crash half-way simply counts again at the next start).
   */
  private async countOnce() {
    const totals: Record<string, number> = { accounts: 0, unpaidBytes: 0, creditsEarned: 0 };
    for (const s of COUNTED_STATES) totals[`files.${s}`] = totals[`bytes.${s}`] = 0;
    let ops: BatchOp[] = [];
    for await (const v of this.o.db.values(layout.range(PREFIX.account))) {
      const a = JSON.parse(v.toString()) as Account;
      const e = this.evaluate(a);
      a.counted = countedState(a, e);
      a.creditsCounted = e.credits;
      totals.creditsEarned += e.credits;
      totals.accounts++;
      totals[`files.${a.counted}`]++;
      totals[`bytes.${a.counted}`] += sizeOf(a);
      totals.unpaidBytes += unpaid(a);
      ops.push({ type: 'put', key: layout.account(a.id), value: json(a) });
      ops.push(maturingOp(a, this.tipHeight, this.policy.confirmations));
      if (ops.length >= 10_000) { await this.o.store.write(ops, { sync: false }); ops = []; }
    }
    if (ops.length) await this.o.store.write(ops, { sync: false });
    await this.o.store.setCounters(totals);
    if (totals.accounts > 0) this.log(`ledger: counted ${totals.accounts} accounts once (a store from before persisted counters)`);
  }

  /**
   * Addresses handed out before a restart (or a standby's takeover) may be paid any moment: they are hot
   * again, oldest first so the most recent are the last to fall back to the sweep when over budget. Found
   * in the background through the expiry index, where unpaid accounts are filed by the end of their TTL.
   */
  attach(watch: WatchControl) {
    this.watch = watch;
    this.rewatchAwaiting().catch((err) => this.log(`ledger: re-watching unpaid addresses: ${(err as Error).message}`));
  }

  private async rewatchAwaiting() {
    // Unpaid accounts are filed at created + TTL (+ grace for a paid reservation), so in time order.
    const until = layout.expiry(this.clock() + this.policy.unpaidTtl + this.policy.grace + 1, '');
    let seen = 0;
    for await (const key of this.o.db.keys({ gte: layout.range(PREFIX.expiry).gte, lt: until })) {
      if (this.stopped) return;
      if (++seen % SWEEP_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
      const a = await this.account(layout.parseExpiry(key).id);
      if (a && a.activatedAt === undefined) this.watch.watchHot(a.scriptHash);
    }
  }

  tip() {
    return this.tipHeight;
  }

  stats() {
    const c = this.o.store.counters();
    const byState: Record<string, { files: number; bytes: number }> = {};
    for (const s of COUNTED_STATES) byState[s] = { files: c[`files.${s}`] ?? 0, bytes: c[`bytes.${s}`] ?? 0 };
    return {
      nextIndex: this.nextIndex, tip: this.tipHeight, unpaidBytes: this.unpaidBytes, downloadsInFlight: this.inFlight.size,
      accounts: c.accounts ?? 0, byState, creditsEarned: c.creditsEarned ?? 0,
      /** of creditsEarned, what was paid in NMC (sats at the rate), and the NMC base units received */
      creditsNmc: c.creditsNmc ?? 0, nmcReceived: c.nmcReceived ?? 0,
      /** bytes charged to files for downloads (refunds of what did not leave taken off) */
      bytesSent: c.bytesSent ?? 0,
    };
  }

  /**
   * New prices (cost pricing, lib/economy). Quotes and activations use them at once; an active account
   * moves to them only when its next credits arrive, keeping the time it already paid for (account.ts,
   * rebase). Accounts activated before any lock keep `basePrices`.
   */
  setPrices(p: { storagePrice: number; transferPrice: number }) {
    this.policy.basePrices ??= { storagePrice: this.policy.storagePrice, transferPrice: this.policy.transferPrice };
    this.policy.storagePrice = p.storagePrice;
    this.policy.transferPrice = p.transferPrice;
  }

  /** Files and bytes by state, credits confirmed on live accounts, bytes charged: the console's totals. */
  async totals() {
    // an upload is a file, or a drop of several files (one account)
    const byState: Record<string, { uploads: number; bytes: number }> = {};
    let credits = 0;
    let pending = 0;
    let bytesCharged = 0;
    let reservations = 0;
    for await (const v of this.o.db.values(layout.range(PREFIX.account))) {
      const a = JSON.parse(v.toString()) as Account;
      const e = this.evaluate(a);
      credits += e.credits;
      pending += e.pending;
      bytesCharged += a.sentBytes;
      if (a.reservedSize !== undefined) { reservations++; continue; }
      const s = (byState[e.state] ??= { uploads: 0, bytes: 0 });
      s.uploads++;
      s.bytes += a.size;
    }
    return { byState, reservations, creditsConfirmed: credits, creditsPending: pending, bytesCharged };
  }

  async account(id: string): Promise<Account | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    const v = await this.o.db.get(layout.account(id));
    return v ? (JSON.parse(v.toString()) as Account) : undefined;
  }

  evaluate(a: Account): Evaluation {
    return evaluate(a, this.tipHeight, this.clock(), this.policy);
  }

  view(a: Account): PaymentView {
    const e = this.evaluate(a);
    return {
      state: e.state,
      address: a.address,
      amountDue: e.amountDue,
      balance: e.balance,
      credits: e.credits,
      pending: e.pending,
      paidThrough: e.paidThrough === undefined ? null : new Date(e.paidThrough).toISOString(),
      paymentUri: this.paymentUri(a.address, e.amountDue),
    };
  }

  reservationView(a: Account): ReservationView {
    return {
      reservation: a.id,
      size: a.reservedSize ?? a.size,
      used: a.reservedSize === undefined,
      expires: new Date(a.created + this.policy.unpaidTtl).toISOString(),
      ...this.view(a),
    };
  }

  /** A reservation looked up by its id (and its address made hot: its payer is probably about to pay). */
  async reservation(id: string): Promise<ReservationView | undefined> {
    const a = await this.account(id);
    if (!a) return undefined;
    this.hot(a.scriptHash);
    return this.reservationView(a);
  }

  paymentUri(address: string, sats: number) {
    return `${this.o.uriScheme}:${address}${sats > 0 ? `?amount=${formatCoins(sats)}` : ''}`;
  }

  /** Writes an account and moves it in the expiry index, as batch operations. */
  private saveOps(before: Account | undefined, after: Account): BatchOp[] {
    const e = evaluate(after, this.tipHeight, this.clock(), this.policy);
    const ops: BatchOp[] = [];
    const now = this.clock();
    if (e.balance < 0 && after.activatedAt !== undefined) after.negativeSince ??= now;
    else delete after.negativeSince;
    // An active file is looked at again just after its paid time runs out too, so the counters see it
    // become suspended without waiting for a download or a payment to touch it.
    const suspendAt = e.state === 'active' && e.paidThrough !== undefined && e.paidThrough >= now ? e.paidThrough + SUSPEND_CHECK_DELAY_MS : undefined;
    after.reviewAt = suspendAt !== undefined && (e.reviewAt === undefined || suspendAt < e.reviewAt) ? suspendAt : e.reviewAt;
    after.counted = countedState(after, e);
    if (before?.reviewAt !== undefined && before.reviewAt !== after.reviewAt) ops.push({ type: 'del', key: layout.expiry(before.reviewAt, after.id) });
    if (after.reviewAt !== undefined) ops.push({ type: 'put', key: layout.expiry(after.reviewAt, after.id), value: Buffer.alloc(0) });
    ops.push(maturingOp(after, this.tipHeight, this.policy.confirmations));
    // The counters move in the same batch: what this account was counted as, and what it is now.
    if (!before) ops.push(count('accounts', 1));
    if (before?.counted) ops.push(count(`files.${before.counted}`, -1), count(`bytes.${before.counted}`, -sizeOf(before)));
    ops.push(count(`files.${after.counted}`, 1), count(`bytes.${after.counted}`, sizeOf(after)));
    ops.push(count('unpaidBytes', unpaid(after) - unpaid(before)));
    // Credits earned only follow confirmations (and reorgs); a deleted file keeps what it paid counted.
    ops.push(count('creditsEarned', e.credits - (before?.creditsCounted ?? 0)));
    after.creditsCounted = e.credits;
    if (after.nmc || before?.nmcCounted) {
      const now = this.nmcConfirmed(after);
      const was = before?.nmcCounted ?? { sats: 0, nmc: 0 };
      if (now.sats !== was.sats) ops.push(count('creditsNmc', now.sats - was.sats));
      if (now.nmc !== was.nmc) ops.push(count('nmcReceived', now.nmc - was.nmc));
      after.nmcCounted = now;
    }
    ops.push({ type: 'put', key: layout.account(after.id), value: json(after) });
    return ops;
  }

  private trackUnpaid(before: Account | undefined, after: Account | undefined) {
    this.unpaidBytes += unpaid(after) - unpaid(before);
  }

  private checkQuota(extra: number) {
    const disk = this.o.diskBytes;
    if (disk !== undefined && this.o.store.stats().bytes + extra > disk) {
      throw new UserError(507, `this drop box is full (${this.o.store.stats().bytes} of the ${disk} bytes its operator gives it); try again later`);
    }
    if (this.unpaidBytes + extra > this.o.maxUnpaidBytes) {
      throw new UserError(503, 'too many uploads are awaiting payment right now; try again later or pay first (POST /reserve)');
    }
  }

  /** A new account with the next address; its index is written in the same batch. */
  private newAccount(id: string, size: number, reservedSize?: number): { account: Account; ops: BatchOp[] } {
    const index = this.nextIndex++;
    const { address, scriptHash, ops: allocated = [] } = this.o.allocate(index);
    const account: Account = { id, size, index, address, scriptHash, created: this.clock(), payments: [], sentBytes: 0, reservedSize };
    const n = Buffer.alloc(4);
    n.writeUInt32BE(this.nextIndex);
    return {
      account,
      ops: [
        { type: 'put', key: layout.nextIndex(), value: n },
        ...allocated,
        { type: 'put', key: layout.scriptHash(Buffer.from(scriptHash, 'hex')), value: Buffer.from(id, 'ascii') },
        ...this.saveOps(undefined, account),
      ],
    };
  }

  // ---- uploads ------------------------------------------------------------------------------------

  async admitUpload(declaredBytes: number | undefined, reservation: string | undefined) {
    if (reservation) {
      const a = await this.account(reservation);
      if (!a) throw new UserError(404, 'no such reservation (it may have expired); ask for a new one with POST /reserve?size=N');
      if (a.reservedSize === undefined) throw new UserError(409, 'this reservation was already used for an upload');
      if (declaredBytes !== undefined && declaredBytes > a.reservedSize) {
        throw new UserError(413, `the reservation is for ${a.reservedSize} bytes; this upload has ${declaredBytes}`);
      }
      return;
    }
    this.checkQuota(declaredBytes ?? 0);
  }

  /**
   * Writes committed with a new manifest: its account (new, or the reservation it was paid through), and
   * that account as the writes leave it, for the upload's answer (no read back of what was just written).
   */
  uploadOps(m: FileManifest, reservation: string | undefined): Promise<{ ops: BatchOp[]; account: Account }> {
    return this.lock.run(async () => {
      if (reservation) {
        const before = await this.account(reservation);
        if (!before || before.reservedSize === undefined) throw new UserError(409, 'this reservation was already used for an upload');
        if (m.size > before.reservedSize) throw new UserError(413, `the reservation is for ${before.reservedSize} bytes; this upload has ${m.size}`);
        const after = activate({ ...before, size: m.size, reservedSize: undefined, created: this.clock() }, this.tipHeight, this.clock(), this.policy);
        this.trackUnpaid(before, after);
        return { ops: this.saveOps(before, after), account: after };
      }
      this.checkQuota(m.size);
      const { account, ops } = this.newAccount(m.id, m.size);
      this.trackUnpaid(undefined, account);
      return { ops, account };
    });
  }

  async reserve(size: number): Promise<Account> {
    return this.lock.run(async () => {
      this.checkQuota(size);
      const { account, ops } = this.newAccount(newId(), 0, size);
      await this.o.store.write(ops);
      this.trackUnpaid(undefined, account);
      this.watch.watchHot(account.scriptHash);
      return account;
    });
  }

  /** For a deletion through HTTP: the account's removal, committed with the manifest's. */
  async deleteOps(m: FileManifest): Promise<BatchOp[]> {
    const a = await this.account(m.id);
    if (!a) return [];
    this.forgotten.set(a.id, a);
    return this.removalOps(a);
  }

  private removalOps(a: Account): BatchOp[] {
    return [
      { type: 'del', key: layout.account(a.id) },
      { type: 'del', key: layout.scriptHash(Buffer.from(a.scriptHash, 'hex')) },
      { type: 'del', key: layout.maturing(a.id) },
      ...(a.nmc ? [{ type: 'del' as const, key: layout.nmcScriptHash(Buffer.from(a.nmc.scriptHash, 'hex')) }] : []),
      ...(a.reviewAt !== undefined ? [{ type: 'del' as const, key: layout.expiry(a.reviewAt, a.id) }] : []),
      count('accounts', -1),
      ...(a.counted ? [count(`files.${a.counted}`, -1), count(`bytes.${a.counted}`, -sizeOf(a))] : []),
      count('unpaidBytes', -unpaid(a)),
    ];
  }

  /** An address just handed out (upload, reservation, pay page): watch it closely. */
  hot(scriptHash: string) {
    this.watch.watchHot(scriptHash);
  }

  /** Drops the in-memory traces of a deleted file (its account is already gone from the database). */
  forgetId(id: string) {
    const a = this.forgotten.get(id);
    this.forgotten.delete(id);
    if (a) this.forget(a);
  }

  forget(a: Account) {
    this.trackUnpaid(a, undefined);
    this.inFlight.delete(a.id);
    this.watch.unwatch(a.scriptHash);
    if (a.nmc) this.nmcWatch.unwatch(a.nmc.scriptHash);
  }

  // ---- downloads ----------------------------------------------------------------------------------

  /**
   * Debits `bytes` from a file's balance before a download sends anything, durably (one synced batch with
   * an open-download marker), so a crash can never make a download free; `settle` refunds what was not
   * sent. Concurrent downloads can never overdraw: each debit is checked and written under the lock.
   * `probe` (HEAD) only checks.
   */
  async openDownload(id: string, bytes: number, probe = false): Promise<{ settle(sent: number): Promise<void> }> {
    // The debit is checked and queued under the lock (later checks see it: db.ts's overlay), and its fsync
    // waited for outside it, so downloads starting together share one synced write (group commit).
    const opened = await this.lock.run(async () => {
      const a = await this.account(id);
      if (!a) throw new UserError(404, 'no such file');
      if (!canSend(a, bytes, 0, this.tipHeight, this.clock(), this.policy)) {
        this.watch.watchHot(a.scriptHash);
        throw this.paymentRequired(a, bytes);
      }
      if (probe || bytes === 0) return { durable: Promise.resolve(), ticket: { settle: async () => {} } };
      const key = layout.download(id, crypto.randomBytes(8));
      const amount = Buffer.alloc(8);
      amount.writeBigUInt64BE(BigInt(bytes));
      const after = { ...a, sentBytes: a.sentBytes + bytes };
      const durable = this.o.store.write([...this.saveOps(a, after), { type: 'put', key, value: amount }, count('bytesSent', bytes)]);
      durable.catch(() => {}); // awaited below, outside the lock
      this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
      let settled = false;
      return {
        durable,
        ticket: {
          settle: (sent: number) => {
            if (settled) return Promise.resolve();
            settled = true;
            return this.settle(id, key, bytes, sent);
          },
        },
      };
    });
    try {
      await opened.durable;
    } catch (err) {
      // Not debited, so nothing to refund; the database refuses writes from now on (db.ts).
      const left = (this.inFlight.get(id) ?? 1) - 1;
      if (left > 0) this.inFlight.set(id, left);
      else this.inFlight.delete(id);
      throw err;
    }
    return opened.ticket;
  }

  /** Ends a download: drops its marker and refunds the bytes that did not leave. */
  private settle(id: string, key: Buffer, debited: number, sent: number): Promise<void> {
    const p = this.writeSettle(id, key, debited, sent);
    this.settling.add(p);
    const done = () => { this.settling.delete(p); };
    p.then(done, done);
    return p;
  }

  /**
   * Resolves once the settles of downloads that have ended are written. The daemon's stop calls it after
   * the HTTP server has closed and before the store closes: a download answered just before a SIGTERM
   * used to have its marker write refused ("Database is not open").
   */
  async settled(): Promise<void> {
    while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
  }

  private writeSettle(id: string, key: Buffer, debited: number, sent: number): Promise<void> {
    return this.lock.run(async (): Promise<{ written: Promise<void> }> => {
      const left = (this.inFlight.get(id) ?? 1) - 1;
      if (left > 0) this.inFlight.set(id, left);
      else this.inFlight.delete(id);
      const ops: BatchOp[] = [{ type: 'del', key }];
      const refund = debited - Math.max(0, Math.min(sent, debited));
      const before = await this.account(id);
      if (before && refund > 0) ops.push(...this.saveOps(before, { ...before, sentBytes: Math.max(0, before.sentBytes - refund) }));
      if (refund > 0) ops.push(count('bytesSent', -refund));
      // Not synced: if this write is lost in a crash, the download stays charged in full (never free).
      // Queued under the lock, waited for outside it: downloads ending together share one write.
      const written = this.o.store.write(ops, { sync: false });
      written.catch(() => {});
      return { written };
    }).then(({ written }) => written);
  }

  paymentRequired(a: Account, bytes: number): UserError {
    const e = this.evaluate(a);
    const due = e.state === 'active' || e.state === 'suspended' ? payable(Math.max(e.amountDue, 1)) : e.amountDue;
    const uri = this.paymentUri(a.address, due);
    const waiting = e.pending > 0 ? ` (${e.pending} sats are seen and wait for ${this.policy.confirmations} confirmation${this.policy.confirmations > 1 ? 's' : ''})` : '';
    const what = a.activatedAt === undefined
      ? `this file is ${e.state}: send ${due} sats to ${a.address} to make it downloadable${waiting}`
      : `this file's balance (${e.balance} sats) does not cover a download of ${bytes} bytes: send ${due} sats to ${a.address} to top it up${waiting}`;
    return new UserError(402, what, {
      state: e.state,
      address: a.address,
      amountDue: due,
      balance: e.balance,
      pending: e.pending,
      paymentUri: uri,
      paidThrough: e.paidThrough === undefined ? null : new Date(e.paidThrough).toISOString(),
      hint: uri,
    });
  }

  // ---- chain events -------------------------------------------------------------------------------

  /** The full current payment list of one address (idempotent: replaces what was known). */
  onPayments(scriptHash: string, payments: Payment[]): Promise<void> {
    // The lookup runs inside the lock too: two lists for one address must apply in the order they came,
    // and LevelDB reads may complete out of order.
    return this.lock.run(async () => {
      const idBuf = await this.o.db.get(layout.scriptHash(Buffer.from(scriptHash, 'hex')));
      if (idBuf) await this.apply(idBuf.toString('ascii'), (a) => ({ ...a, payments }));
    });
  }

  async onTip(height: number) {
    if (height === this.tipHeight) return;
    this.tipHeight = height;
    await this.o.db.put(layout.singleton('tip'), json({ height }));
    // Only the accounts with payments still maturing can change with a block (the m[id] index).
    const maturing: string[] = [];
    for await (const key of this.o.db.keys(layout.range(PREFIX.maturing))) maturing.push(layout.body(key).toString('ascii'));
    for (const id of maturing) await this.refresh(id, (a) => a);
  }

  /** Applies a change to an account, activates it if now paid, and re-files it. */
  private refresh(id: string, change: (a: Account) => Account): Promise<void> {
    return this.lock.run(() => this.apply(id, change));
  }

  /** refresh() for callers that already hold the lock */
  private async apply(id: string, change: (a: Account) => Account): Promise<void> {
    const before = await this.account(id);
    if (!before) return;
    const after = activate(this.withNmcCredits(change(before)), this.tipHeight, this.clock(), this.policy);
    if (after.activatedAt !== undefined && before.activatedAt === undefined) {
      this.log(`file ${id} is paid and active (${after.payments.length} payment${after.payments.length > 1 ? 's' : ''})`);
    }
    this.trackUnpaid(before, after);
    await this.o.store.write(this.saveOps(before, after));
  }

  // ---- paid in NMC --------------------------------------------------------------------------------

  /** The Namecoin watcher's control (hot addresses, unwatch on deletion). */
  attachNmc(w: WatchControl) {
    this.nmcWatch = w;
  }

  nmcTip() {
    return this.nmcTipHeight;
  }

  /** The NMC payments as sats at the rate, each confirmed or not on the Namecoin chain. */
  private withNmcCredits(a: Account): Account {
    const n = this.o.nmc;
    if (!a.nmc || !n) return a;
    const nmcCredits = a.nmc.payments.map((p) => ({
      txid: `nmc:${p.txid}`,
      height: p.height,
      sats: nmcToSats(p.sats, n.rate),
      confirmed: isConfirmed(p, this.nmcTipHeight, n.confirmations),
    }));
    return { ...a, nmcCredits };
  }

  private nmcConfirmed(a: Account): { sats: number; nmc: number } {
    let sats = 0;
    let nmc = 0;
    (a.nmc?.payments ?? []).forEach((p, i) => {
      const c = a.nmcCredits?.[i];
      if (c?.confirmed) { sats += c.sats; nmc += p.sats; }
    });
    return { sats, nmc };
  }

  /**
   * The file's Namecoin address, assigned the first time it is asked for (a page shown, not every upload:
   * an address from the node wallet is an RPC). Undefined when NMC is off or the account is gone.
   */
  async nmcView(id: string): Promise<NmcView | undefined> {
    const n = this.o.nmc;
    if (!n) return undefined;
    let a = await this.account(id);
    if (!a) return undefined;
    if (!a.nmc) {
      const got = await n.allocate(a.index);
      a = await this.lock.run(async () => {
        const before = await this.account(id);
        if (!before || before.nmc) return before;
        const after: Account = { ...before, nmc: { address: got.address, scriptHash: got.scriptHash, payments: [] } };
        await this.o.store.write([
          { type: 'put', key: layout.nmcScriptHash(Buffer.from(got.scriptHash, 'hex')), value: Buffer.from(id, 'ascii') },
          ...this.saveOps(before, after),
        ]);
        return after;
      });
      if (!a?.nmc) return undefined;
    }
    this.nmcWatch.watchHot(a.nmc!.scriptHash);
    const due = this.evaluate(a).amountDue;
    const amount = due > 0 ? satsToNmc(due, n.rate) : 0;
    return { address: a.nmc!.address, amountDue: amount, rate: n.rate, paymentUri: `namecoin:${a.nmc!.address}${amount > 0 ? `?amount=${formatCoins(amount)}` : ''}` };
  }

  /** The full current payment list of one Namecoin address (NMC base units, Namecoin heights). */
  onNmcPayments(scriptHash: string, payments: Payment[]): Promise<void> {
    return this.lock.run(async () => {
      const idBuf = await this.o.db.get(layout.nmcScriptHash(Buffer.from(scriptHash, 'hex')));
      if (idBuf) await this.apply(idBuf.toString('ascii'), (a) => (a.nmc ? { ...a, nmc: { ...a.nmc, payments } } : a));
    });
  }

  async onNmcTip(height: number) {
    if (height === this.nmcTipHeight) return;
    this.nmcTipHeight = height;
    await this.o.db.put(layout.singleton('nmcTip'), json({ height }));
    const maturing: string[] = [];
    for await (const key of this.o.db.keys(layout.range(PREFIX.maturing))) maturing.push(layout.body(key).toString('ascii'));
    for (const id of maturing) await this.refresh(id, (a) => a);
  }

  /** Namecoin scripthashes of every account paid in NMC, in key order, for that watcher's slow sweep. */
  async nmcScriptHashes(after: string | undefined, limit: number): Promise<string[]> {
    const range = layout.range(PREFIX.nmcScriptHash);
    const opts = after ? { gt: layout.nmcScriptHash(Buffer.from(after, 'hex')), lt: range.lt, limit } : { ...range, limit };
    const out: string[] = [];
    for await (const key of this.o.db.keys(opts)) out.push(Buffer.from(layout.body(key)).toString('hex'));
    return out;
  }

  // ---- expiry -------------------------------------------------------------------------------------

  /**
   * Looks at every account whose review time has come (only those: the index is ordered by time) and
   * deletes the files that stayed unpaid past the TTL or negative past the grace period.
   * Returns the ids deleted.
   */
  async sweep(): Promise<string[]> {
    // One sweep at a time; one asked for during another runs after it, with its own clock reading.
    return this.sweepLock.run(() => this.sweepDue());
  }

  /** Ends a sweep in progress after its current slice (the daemon is stopping). */
  stop() {
    this.stopped = true;
  }

  /** true while a sweep runs (the daemon's timer skips a turn rather than queue behind a long one) */
  get sweepRunning(): boolean {
    return this.sweepsRunning > 0;
  }

  private async sweepDue(): Promise<string[]> {
    this.sweepsRunning++;
    try {
      return await this.sweepSlices();
    } finally {
      this.sweepsRunning--;
    }
  }

  private async sweepSlices(): Promise<string[]> {
    const now = this.clock();
    const due = layout.expiryDue(now);
    const deleted: string[] = [];
    let after: Buffer | undefined;
    for (;;) {
      // Bounded slices with a turn of the event loop between them: a million files due at once never
      // hold the daemon up, nor sit in memory together.
      const keys: Buffer[] = [];
      for await (const key of this.o.db.keys({ ...(after ? { gt: after } : { gte: due.gte }), lt: due.lt, limit: SWEEP_SLICE })) keys.push(key);
      for (const key of keys) {
        const id = layout.parseExpiry(key).id;
        // Each decision holds the lock: a payment arriving now is applied before or after, never between.
        await this.lock.run(async () => {
          const a = await this.account(id);
          if (!a) return;
          if (!this.evaluate(a).expired || this.inFlight.has(id)) {
            await this.apply(id, (x) => x);
            return;
          }
          const m = await this.o.store.get(id);
          const ops = this.removalOps(a);
          const why = a.activatedAt === undefined ? 'never paid' : 'unpaid past the grace period';
          let what = 'file';
          if (m) await this.o.store.delete(id, ops, why);
          else if (await this.o.store.deleteDrop(id, ops, why)) what = 'drop';
          else { await this.o.store.write(ops); what = 'reservation'; }
          this.forget(a);
          deleted.push(id);
          this.log(`deleted ${what} ${id}: ${why}`);
        });
      }
      if (keys.length < SWEEP_SLICE || this.stopped) return deleted;
      after = keys[keys.length - 1];
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Scripthashes of every account, in key order, for the watcher's slow sweep. */
  async scriptHashes(after: string | undefined, limit: number): Promise<string[]> {
    const range = layout.range(PREFIX.scriptHash);
    const opts = after ? { gt: layout.scriptHash(Buffer.from(after, 'hex')), lt: range.lt, limit } : { ...range, limit };
    const out: string[] = [];
    for await (const key of this.o.db.keys(opts)) out.push(Buffer.from(layout.body(key)).toString('hex'));
    return out;
  }
}

const COIN = 100_000_000n;
/** NMC base units → sats at `rate` sats per NMC, rounded down (the payer is never credited more than sent) */
export const nmcToSats = (nmc: number, rate: number) => Number((BigInt(Math.max(0, Math.floor(nmc))) * BigInt(rate)) / COIN);
/** sats → NMC base units at `rate`, rounded up (what is asked always covers the sats due) */
export const satsToNmc = (sats: number, rate: number) => Number((BigInt(Math.max(0, Math.floor(sats))) * COIN + BigInt(rate) - 1n) / BigInt(rate));

const sizeOf = (a: Account) => a.reservedSize ?? a.size;
const unpaid = (a?: Account) => (a && a.activatedAt === undefined ? sizeOf(a) : 0);

function countedState(a: Account, e: Evaluation): CountedState {
  if (a.reservedSize !== undefined) return 'reserved';
  return e.state.replace(' ', '_') as CountedState;
}

/** In the maturing index while any payment lacks the confirmations the policy asks for. */
function maturingOp(a: Account, tip: number, confirmations: number): BatchOp {
  return paymentsOf(a).some((p) => !isConfirmed(p, tip, confirmations))
    ? { type: 'put', key: layout.maturing(a.id), value: Buffer.alloc(0) }
    : { type: 'del', key: layout.maturing(a.id) };
}
