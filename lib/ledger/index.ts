// The ledger: one payment account per file (or per reservation, before its upload), kept in LevelDB next
// to the store's keys, with an expiry index ordered by when each account must be looked at again.
// Money math lives in ./account and ./pricing (pure); this file does persistence, locking and timing.

import crypto from 'crypto';
import { UserError } from '../errors';
import { layout, PREFIX } from '../store/layout';
import { Mutex } from '../store/mutex';
import { newId, ID_PATTERN, type BatchOp, type Db, type FileManifest, type Store } from '../store';
import { Account, Evaluation, Payment, Policy, activate, canSend, credits, evaluate, isConfirmed } from './account';
import { formatCoins, payable } from './pricing';

export type { Account, Evaluation, Payment, Policy, FileState } from './account';

export interface AddressAllocator {
  (index: number): { address: string; scriptHash: string };
}

/** What the ledger needs of the payment watcher. */
export interface WatchControl {
  watchHot(scriptHash: string): void;
  unwatch(scriptHash: string): void;
  checkNow?(scriptHash: string): Promise<void>;
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

export class Ledger {
  readonly policy: Policy;
  private readonly lock = new Mutex();
  private readonly clock: () => number;
  private readonly log: (line: string) => void;
  private nextIndex = 0;
  private tipHeight = 0;
  /** total size of uploads and reservations not activated yet */
  private unpaidBytes = 0;
  /** downloads in flight per file (their bytes are already debited): the sweep leaves these files alone */
  private readonly inFlight = new Map<string, number>();
  /** accounts whose payments are not all confirmed enough yet: a new block may activate them */
  private readonly maturing = new Set<string>();
  /** accounts of deletions in progress, for forgetId after the commit */
  private readonly forgotten = new Map<string, Account>();
  private watch: WatchControl = { watchHot() {}, unwatch() {} };
  /** scripts of accounts awaiting payment when the ledger opened, oldest first: hot again on attach */
  private awaitingPayment: Array<{ created: number; scriptHash: string }> = [];

  private constructor(private readonly o: LedgerOptions) {
    this.policy = o.policy;
    this.clock = o.clock ?? Date.now;
    this.log = o.log ?? (() => {});
  }

  static async open(o: LedgerOptions): Promise<Ledger> {
    const l = new Ledger(o);
    const n = await o.db.get(layout.nextIndex());
    l.nextIndex = n ? n.readUInt32BE(0) : 0;
    const tip = await o.db.get(layout.singleton('tip'));
    l.tipHeight = tip ? JSON.parse(tip.toString()).height : 0;
    await l.settleCrashedDownloads();
    for await (const v of o.db.values(layout.range(PREFIX.account))) {
      const a = JSON.parse(v.toString()) as Account;
      if (a.activatedAt === undefined) {
        l.unpaidBytes += a.reservedSize ?? a.size;
        l.awaitingPayment.push({ created: a.created, scriptHash: a.scriptHash });
      }
      if (a.payments.some((p) => !isConfirmed(p, l.tipHeight, l.policy.confirmations))) l.maturing.add(a.id);
    }
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
    await this.o.db.batch(ops, { sync: true });
    this.log(`${ops.length} download${ops.length > 1 ? 's were' : ' was'} cut by a crash: charged in full (${bytes} bytes)`);
  }

  /**
   * Addresses handed out before a restart (or a standby's takeover) may be paid any moment: they are hot
   * again, the most recent last so they are the last to fall back to the sweep when over budget.
   */
  attach(watch: WatchControl) {
    this.watch = watch;
    for (const a of this.awaitingPayment.sort((x, y) => x.created - y.created)) watch.watchHot(a.scriptHash);
    this.awaitingPayment = [];
  }

  tip() {
    return this.tipHeight;
  }

  stats() {
    return { nextIndex: this.nextIndex, tip: this.tipHeight, unpaidBytes: this.unpaidBytes, downloadsInFlight: this.inFlight.size };
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
    after.reviewAt = e.reviewAt;
    if (before?.reviewAt !== undefined && before.reviewAt !== after.reviewAt) ops.push({ type: 'del', key: layout.expiry(before.reviewAt, after.id) });
    if (after.reviewAt !== undefined) ops.push({ type: 'put', key: layout.expiry(after.reviewAt, after.id), value: Buffer.alloc(0) });
    ops.push({ type: 'put', key: layout.account(after.id), value: json(after) });
    return ops;
  }

  private trackUnpaid(before: Account | undefined, after: Account | undefined) {
    const unpaid = (a?: Account) => (a && a.activatedAt === undefined ? a.reservedSize ?? a.size : 0);
    this.unpaidBytes += unpaid(after) - unpaid(before);
  }

  private checkQuota(extra: number) {
    if (this.unpaidBytes + extra > this.o.maxUnpaidBytes) {
      throw new UserError(503, 'too many uploads are awaiting payment right now; try again later or pay first (POST /reserve)');
    }
  }

  /** A new account with the next address; its index is written in the same batch. */
  private newAccount(id: string, size: number, reservedSize?: number): { account: Account; ops: BatchOp[] } {
    const index = this.nextIndex++;
    const { address, scriptHash } = this.o.allocate(index);
    const account: Account = { id, size, index, address, scriptHash, created: this.clock(), payments: [], sentBytes: 0, reservedSize };
    const n = Buffer.alloc(4);
    n.writeUInt32BE(this.nextIndex);
    return {
      account,
      ops: [
        { type: 'put', key: layout.nextIndex(), value: n },
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

  /** Writes committed with a new manifest: its account (new, or the reservation it was paid through). */
  uploadOps(m: FileManifest, reservation: string | undefined): Promise<BatchOp[]> {
    return this.lock.run(async () => {
      if (reservation) {
        const before = await this.account(reservation);
        if (!before || before.reservedSize === undefined) throw new UserError(409, 'this reservation was already used for an upload');
        if (m.size > before.reservedSize) throw new UserError(413, `the reservation is for ${before.reservedSize} bytes; this upload has ${m.size}`);
        const after = activate({ ...before, size: m.size, reservedSize: undefined, created: this.clock() }, this.tipHeight, this.clock(), this.policy);
        this.trackUnpaid(before, after);
        return this.saveOps(before, after);
      }
      this.checkQuota(m.size);
      const { account, ops } = this.newAccount(m.id, m.size);
      this.trackUnpaid(undefined, account);
      return ops;
    });
  }

  async reserve(size: number): Promise<Account> {
    return this.lock.run(async () => {
      this.checkQuota(size);
      const { account, ops } = this.newAccount(newId(), 0, size);
      await this.o.db.batch(ops, { sync: true });
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
      ...(a.reviewAt !== undefined ? [{ type: 'del' as const, key: layout.expiry(a.reviewAt, a.id) }] : []),
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
    this.maturing.delete(a.id);
    this.inFlight.delete(a.id);
    this.watch.unwatch(a.scriptHash);
  }

  // ---- downloads ----------------------------------------------------------------------------------

  /**
   * Debits `bytes` from a file's balance before a download sends anything, durably (one synced batch with
   * an open-download marker), so a crash can never make a download free; `settle` refunds what was not
   * sent. Concurrent downloads can never overdraw: each debit is checked and written under the lock.
   * `probe` (HEAD) only checks.
   */
  openDownload(id: string, bytes: number, probe = false): Promise<{ settle(sent: number): Promise<void> }> {
    return this.lock.run(async () => {
      const a = await this.account(id);
      if (!a) throw new UserError(404, 'no such file');
      if (!canSend(a, bytes, 0, this.tipHeight, this.clock(), this.policy)) {
        this.watch.watchHot(a.scriptHash);
        throw this.paymentRequired(a, bytes);
      }
      if (probe || bytes === 0) return { settle: async () => {} };
      const key = layout.download(id, crypto.randomBytes(8));
      const amount = Buffer.alloc(8);
      amount.writeBigUInt64BE(BigInt(bytes));
      const after = { ...a, sentBytes: a.sentBytes + bytes };
      await this.o.db.batch([...this.saveOps(a, after), { type: 'put', key, value: amount }], { sync: true });
      this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
      let settled = false;
      return {
        settle: (sent: number) => {
          if (settled) return Promise.resolve();
          settled = true;
          return this.settle(id, key, bytes, sent);
        },
      };
    });
  }

  /** Ends a download: drops its marker and refunds the bytes that did not leave. */
  private settle(id: string, key: Buffer, debited: number, sent: number): Promise<void> {
    return this.lock.run(async () => {
      const left = (this.inFlight.get(id) ?? 1) - 1;
      if (left > 0) this.inFlight.set(id, left);
      else this.inFlight.delete(id);
      const ops: BatchOp[] = [{ type: 'del', key }];
      const refund = debited - Math.max(0, Math.min(sent, debited));
      const before = await this.account(id);
      if (before && refund > 0) ops.push(...this.saveOps(before, { ...before, sentBytes: Math.max(0, before.sentBytes - refund) }));
      // Not synced: if this write is lost in a crash, the download stays charged in full (never free).
      await this.o.db.batch(ops);
    });
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
    for (const id of [...this.maturing]) await this.refresh(id, (a) => a);
  }

  /** Applies a change to an account, activates it if now paid, and re-files it. */
  private refresh(id: string, change: (a: Account) => Account): Promise<void> {
    return this.lock.run(() => this.apply(id, change));
  }

  /** refresh() for callers that already hold the lock */
  private async apply(id: string, change: (a: Account) => Account): Promise<void> {
    const before = await this.account(id);
    if (!before) { this.maturing.delete(id); return; }
    const after = activate(change(before), this.tipHeight, this.clock(), this.policy);
    const { pending } = credits(after.payments, this.tipHeight, this.policy.confirmations);
    if (pending > 0) this.maturing.add(id);
    else this.maturing.delete(id);
    if (after.activatedAt !== undefined && before.activatedAt === undefined) {
      this.log(`file ${id} is paid and active (${after.payments.length} payment${after.payments.length > 1 ? 's' : ''})`);
    }
    this.trackUnpaid(before, after);
    await this.o.db.batch(this.saveOps(before, after), { sync: true });
  }

  // ---- expiry -------------------------------------------------------------------------------------

  /**
   * Looks at every account whose review time has come (only those: the index is ordered by time) and
   * deletes the files that stayed unpaid past the TTL or negative past the grace period.
   * Returns the ids deleted.
   */
  async sweep(): Promise<string[]> {
    const now = this.clock();
    const due: string[] = [];
    for await (const key of this.o.db.keys(layout.expiryDue(now))) due.push(layout.parseExpiry(key).id);
    const deleted: string[] = [];
    for (const id of due) {
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
        else { await this.o.db.batch(ops, { sync: true }); what = 'reservation'; }
        this.forget(a);
        deleted.push(id);
        this.log(`deleted ${what} ${id}: ${why}`);
      });
    }
    return deleted;
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
