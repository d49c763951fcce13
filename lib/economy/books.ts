// The books: revenue (confirmed credits) and costs (the cost file's fixed bill and egress, plus what the box
// spent: fees, NMC, and — issue 29 — its operating wallet's payments) by day. Pure functions: a day's row is
// booked from the previous day's closing figures and a snapshot of the ledger's running totals, so the sum of
// the rows' revenue is always exactly the ledger's credits (the running totals telescope).

import { DAY_MS } from '../ledger/pricing';
import { egressCost, fixedCostOfDay, type Costs } from './costs';

/** The ledger's running totals at one moment (persisted counters; never a walk over the accounts). */
export interface Snapshot {
  at: number;
  /** confirmed BTC credits ever earned by files (the ledger's creditsEarned counter), sats */
  creditsBtc: number;
  /** confirmed NMC credits ever earned, counted in sats at --nmc-rate */
  creditsNmc: number;
  /** bytes charged for downloads ever */
  bytesSent: number;
  /** bytes of files held now, whatever their state */
  storedBytes: number;
  storagePrice: number;
  transferPrice: number;
}

/**
 * Something the box paid for: a transaction fee, NMC for a name, a mirror's bill (issue 29's operating
 * wallet books its payments here through Economy.spend). Its `sats` are costs of the day it happened.
 */
export interface SpentEntry {
  at: number;
  sats: number;
  coin: 'BTC' | 'NMC';
  /** NMC base units spent (coin NMC), for the NMC balance */
  nmc?: number;
  what: string;
}

export interface BookRow {
  /** epoch day */
  day: number;
  /** YYYY-MM-DD (UTC) */
  date: string;
  revenue: number;
  revenueBtc: number;
  revenueNmc: number;
  /** the cost file's monthly bill, spread over the days of the year */
  fixed: number;
  /** egress of the bytes sent this day at egressSatsPerGiB */
  egress: number;
  /** fees, NMC and other payments the box made this day */
  spent: number;
  costs: number;
  profit: number;
  /** closing running totals (what the next day is booked against) */
  creditsBtc: number;
  creditsNmc: number;
  bytesSent: number;
  storedBytes: number;
  /** storedBytes ÷ disk, 0…1 (0 without a cost file) */
  utilization: number;
  storagePrice: number;
  transferPrice: number;
}

export const dayOf = (ms: number) => Math.floor(ms / DAY_MS);
export const dateOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);

/**
 * Rows from the day after `closed` (the last closed day) through the snapshot's day: days in between (the
 * daemon was off) carry their fixed bill and nothing else, and what moved meanwhile lands on the last one.
 */
export function bookDays(closed: BookRow | undefined, snap: Snapshot, costs: Costs | undefined, spentOn: (day: number) => number): BookRow[] {
  const today = dayOf(snap.at);
  const rows: BookRow[] = [];
  let prev = closed;
  const first = closed ? closed.day + 1 : today;
  for (let day = first; day <= today; day++) {
    const last = day === today;
    const s: Snapshot = last ? snap : { ...snap, at: day * DAY_MS, creditsBtc: prev!.creditsBtc, creditsNmc: prev!.creditsNmc, bytesSent: prev!.bytesSent, storedBytes: prev!.storedBytes };
    prev = bookDay(prev, s, costs, spentOn(day));
    rows.push(prev);
  }
  return rows;
}

export function bookDay(prev: BookRow | undefined, s: Snapshot, costs: Costs | undefined, spent: number): BookRow {
  const day = dayOf(s.at);
  const revenueBtc = s.creditsBtc - (prev?.creditsBtc ?? 0);
  const revenueNmc = s.creditsNmc - (prev?.creditsNmc ?? 0);
  const fixed = costs ? fixedCostOfDay(costs, day) : 0;
  const egress = costs ? egressCost(costs, s.bytesSent) - egressCost(costs, prev?.bytesSent ?? 0) : 0;
  const revenue = revenueBtc + revenueNmc;
  const total = fixed + egress + spent;
  return {
    day, date: dateOf(day),
    revenue, revenueBtc, revenueNmc,
    fixed, egress, spent, costs: total, profit: revenue - total,
    creditsBtc: s.creditsBtc, creditsNmc: s.creditsNmc, bytesSent: s.bytesSent, storedBytes: s.storedBytes,
    utilization: costs ? Math.min(1, s.storedBytes / costs.disk) : 0,
    storagePrice: s.storagePrice, transferPrice: s.transferPrice,
  };
}

export interface BooksSummary {
  days: number;
  revenue: number;
  costs: number;
  profit: number;
  /** profit ÷ revenue (null without revenue) */
  margin: number | null;
  /** the operator's reserve plus every day's profit */
  cash: number;
  /** average daily loss over the last 30 days (≤ 0: the box pays for itself) */
  burnPerDay: number;
  /** days the cash lasts at that burn (null: it does not run out) */
  runwayDays: number | null;
  utilization: number;
}

export function summarize(rows: BookRow[], costs: Costs | undefined): BooksSummary {
  const revenue = rows.reduce((n, r) => n + r.revenue, 0);
  const spentAll = rows.reduce((n, r) => n + r.costs, 0);
  const profit = revenue - spentAll;
  const recent = rows.slice(-30);
  const burn = recent.length ? recent.reduce((n, r) => n + (r.costs - r.revenue), 0) / recent.length : 0;
  const cash = (costs?.reserveSats ?? 0) + profit;
  return {
    days: rows.length, revenue, costs: spentAll, profit,
    margin: revenue > 0 ? profit / revenue : null,
    cash,
    burnPerDay: Math.round(burn),
    runwayDays: burn > 0 ? Math.max(0, Math.floor(cash / burn)) : null,
    utilization: rows.length ? rows[rows.length - 1].utilization : 0,
  };
}

const CSV_COLUMNS: (keyof BookRow)[] = ['date', 'revenueBtc', 'revenueNmc', 'revenue', 'fixed', 'egress', 'spent', 'costs', 'profit', 'storedBytes', 'utilization', 'bytesSent', 'storagePrice', 'transferPrice'];

/** For an accountant: one line a day, amounts in sats. */
export function booksCsv(rows: BookRow[]): string {
  const head = CSV_COLUMNS.map((c) => c.replace(/[A-Z]/g, (x) => '_' + x.toLowerCase())).join(',');
  return [head, ...rows.map((r) => CSV_COLUMNS.map((c) => (c === 'utilization' ? r.utilization.toFixed(4) : String(r[c]))).join(','))].join('\n') + '\n';
}

/** The plain-text table `bitdrop books` prints. */
export function booksTable(rows: BookRow[], sum: BooksSummary): string {
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  const lines = [`${'date'.padEnd(10)} ${pad('revenue', 10)} ${pad('costs', 10)} ${pad('profit', 10)} ${pad('used', 6)} ${pad('price', 6)}`];
  for (const r of rows) lines.push(`${r.date} ${pad(r.revenue, 10)} ${pad(r.costs, 10)} ${pad(r.profit, 10)} ${pad((r.utilization * 100).toFixed(1) + '%', 6)} ${pad(r.storagePrice, 6)}`);
  lines.push('');
  lines.push(`${sum.days} days: revenue ${sum.revenue} sats, costs ${sum.costs} sats, profit ${sum.profit} sats` + (sum.margin === null ? '' : ` (margin ${(sum.margin * 100).toFixed(1)} %)`));
  lines.push(`cash ${sum.cash} sats; ` + (sum.runwayDays === null ? 'the box pays for itself (no runway limit)' : `burning ${sum.burnPerDay} sats a day: runway ${sum.runwayDays} days`));
  return lines.join('\n') + '\n';
}
