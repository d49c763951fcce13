// The box's economy: what it costs (costs.ts), the prices that follow those costs (pricing.ts), and its
// books (books.ts). The money math is pure; this class keeps the price history and the day rows in LevelDB
// (keys in lib/store/layout.ts) and is ticked by the daemon with an explicit clock.

import crypto from 'crypto';
import { layout, PREFIX } from '../store/layout';
import type { Db } from '../store/db';
import type { Prices } from '../ledger/pricing';
import { DAY_MS } from '../ledger/pricing';
import { bookDays, dayOf, summarize, type BookRow, type Snapshot, type SpentEntry } from './books';
import { nextPrices, type PricePoint, type PricingMode } from './pricing';
import type { Costs } from './costs';

export * from './costs';
export * from './pricing';
export * from './books';

/** Price points kept (a little more than a year of days). */
const HISTORY = 400;

export interface EconomyOptions {
  db: Db;
  mode: PricingMode;
  costs?: Costs;
  /** the fixed prices (the config's), used in fixed mode and before cost pricing's first day */
  fixed: Prices;
  /** the ledger's running totals now (counters; never a walk) */
  snapshot: () => Omit<Snapshot, 'at' | 'storagePrice' | 'transferPrice'>;
  /** told when cost pricing sets new prices */
  onPrices?: (p: Prices) => void;
  clock?: () => number;
  log?: (line: string) => void;
}

export class Economy {
  private history: PricePoint[] = [];
  /** the last row of a day before today (what today's row is booked against) */
  private closed?: BookRow;
  private today?: BookRow;
  private readonly clock: () => number;

  private constructor(private readonly o: EconomyOptions) {
    this.clock = o.clock ?? Date.now;
  }

  static async open(o: EconomyOptions): Promise<Economy> {
    if (o.mode === 'cost' && !o.costs) throw new Error('cost pricing needs the costs (--costs FILE)');
    const e = new Economy(o);
    const h = await o.db.get(layout.singleton('prices'));
    e.history = h ? (JSON.parse(h.toString()) as PricePoint[]) : [];
    const now = e.clock();
    for await (const v of o.db.values({ ...layout.range(PREFIX.book), lt: layout.book(dayOf(now)), reverse: true, limit: 1 })) e.closed = JSON.parse(v.toString());
    const t = await o.db.get(layout.book(dayOf(now)));
    if (t) e.today = JSON.parse(t.toString());
    if (o.mode === 'cost') {
      const last = e.history[e.history.length - 1];
      if (last) o.onPrices?.(last);
    }
    return e;
  }

  get mode(): PricingMode {
    return this.o.mode;
  }

  get costs(): Costs | undefined {
    return this.o.costs;
  }

  /** The prices in force now. */
  prices(): Prices {
    const last = this.history[this.history.length - 1];
    if (this.o.mode === 'cost' && last) return { storagePrice: last.storagePrice, transferPrice: last.transferPrice };
    return { ...this.o.fixed };
  }

  priceHistory(): readonly PricePoint[] {
    return this.history;
  }

  /**
   * Once a minute or so (and whenever a test's clock moves): sets the day's prices when a new day began
   * (cost pricing), and books today's row from the running totals.
   */
  async tick(): Promise<void> {
    const now = this.clock();
    const day = dayOf(now);
    const base = this.o.snapshot();
    const last = this.history[this.history.length - 1];
    if (this.o.mode === 'cost' && (!last || last.day < day)) {
      const u = Math.min(1, base.storedBytes / this.o.costs!.disk);
      const p = nextPrices(last, this.o.costs!, u);
      this.history.push({ day, ...p, utilization: u });
      if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
      await this.o.db.put(layout.singleton('prices'), Buffer.from(JSON.stringify(this.history)));
      if (!last || last.storagePrice !== p.storagePrice || last.transferPrice !== p.transferPrice) {
        this.o.log?.(`prices    ${p.storagePrice} sats per GiB per day stored, ${p.transferPrice} sats per GiB sent (cost pricing, ${(u * 100).toFixed(1)} % of the disk used)`);
      }
      this.o.onPrices?.(p);
    }
    if (this.today && this.today.day < day) this.closed = this.today;
    const spent = new Map<number, number>();
    const from = this.closed ? this.closed.day + 1 : day;
    for await (const v of this.o.db.values(layout.spentRange(from * DAY_MS, (day + 1) * DAY_MS))) {
      const s = JSON.parse(v.toString()) as SpentEntry;
      spent.set(dayOf(s.at), (spent.get(dayOf(s.at)) ?? 0) + s.sats);
    }
    // the operating wallet's spends (lib/wallet, W[seq]) are read where the wallet keeps them: amount and fee,
    // on the day the spend was recorded; a spend whose coins went elsewhere ('failed') paid nothing
    for await (const v of this.o.db.values(layout.range(PREFIX.walletSpend))) {
      const w = JSON.parse(v.toString()) as { created: number; sats: number; fee: number; state: string };
      if (w.state === 'failed' || w.created < from * DAY_MS || w.created >= (day + 1) * DAY_MS) continue;
      spent.set(dayOf(w.created), (spent.get(dayOf(w.created)) ?? 0) + w.sats + w.fee);
    }
    const rows = bookDays(this.closed, { at: now, ...base, ...this.prices() }, this.o.costs, (d) => spent.get(d) ?? 0);
    await this.o.db.batch(rows.map((r) => ({ type: 'put' as const, key: layout.book(r.day), value: Buffer.from(JSON.stringify(r)) })));
    if (rows.length > 1) this.closed = rows[rows.length - 2];
    this.today = rows[rows.length - 1];
  }

  /**
   * The hook for payments the box makes (fees, NMC for its names, issue 29's operating wallet): booked as
   * a cost of the day they happen.
   */
  async spend(entry: Omit<SpentEntry, 'at'> & { at?: number }): Promise<void> {
    const e: SpentEntry = { ...entry, at: entry.at ?? this.clock() };
    if (!Number.isSafeInteger(e.sats) || e.sats < 0) throw new RangeError(`spent sats must be a whole number ≥ 0 (got ${e.sats})`);
    await this.o.db.put(layout.spent(e.at, crypto.randomBytes(4)), Buffer.from(JSON.stringify(e)), { sync: true });
    await this.tick();
  }

  /** Every spent entry, oldest first. */
  async spentEntries(): Promise<SpentEntry[]> {
    const out: SpentEntry[] = [];
    for await (const v of this.o.db.values(layout.range(PREFIX.spent))) out.push(JSON.parse(v.toString()));
    return out;
  }

  /** The day rows, oldest first (all of them, or the last `days`). */
  async rows(days?: number): Promise<BookRow[]> {
    const out: BookRow[] = [];
    const opts = days ? { ...layout.range(PREFIX.book), reverse: true, limit: days } : layout.range(PREFIX.book);
    for await (const v of this.o.db.values(opts)) out.push(JSON.parse(v.toString()));
    return days ? out.reverse() : out;
  }

  async summary(days?: number) {
    return summarize(await this.rows(days), this.o.costs);
  }
}
