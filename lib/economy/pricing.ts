// Cost pricing (--pricing cost): prices from the operator's costs and the box's own utilization. Pure
// functions of (costs, usage, previous prices); the daemon calls nextPrices once a day.
//
//   floor      F = fixed bill per day ÷ disk GiB × (1 + margin): what a GiB-day costs at full utilization,
//                  plus the margin. The storage price is never below it.
//   recovery   F ÷ max(u, recoverFrom): the fixed bill recovered over the GiB actually stored (u is the
//                  utilization), counted down to recoverFrom so a nearly empty box does not price away
//                  the few users it has (a death spiral: higher price, fewer files, higher price …).
//   scarcity   F × (1 + (scarcityMultiple − 1) × s²), s = (u − scarcityFrom) ÷ (1 − scarcityFrom) above
//                  scarcityFrom: as the disk fills the price rises (it fills more slowly instead of
//                  refusing uploads); as it empties the price falls back.
//   storage    target = max(F, recovery, scarcity); transfer target = egress × (1 + margin).
//   demand     the recovery term applies only while uploads still get paid: when fewer than minPaidShare of
//                  the last week's uploads were paid for, the price has passed what users pay, and raising it
//                  further to recover the bill would only lose them (bench/economy's price-sensitive year
//                  found this: recovery alone halved revenue there), so the target drops back to
//                  max(F, scarcity) until they pay again; scarcity too waits for 90 % full then (the elastic
//                  year's spike lost more to a scarcity price than the fixed box lost to refusals).
//   step       a price moves toward its target by at most maxDailyStep of itself a day (at least 1 sat).

import { GiB, type Costs } from './costs';
import type { Prices } from '../ledger/pricing';

export type PricingMode = 'fixed' | 'cost';

/** One day's prices, as the home page and the books show them. */
export interface PricePoint extends Prices {
  /** epoch day (floor(ms / 86,400,000)) these prices took effect */
  day: number;
  /** utilization when they were set (0…1) */
  utilization: number;
}

const dailyFixed = (c: Costs) => (c.monthlySats * 12) / 365;

/** The storage price at full utilization with the margin: the lowest storage price cost pricing sets. */
export function storageFloor(c: Costs): number {
  return Math.max(1, Math.ceil((dailyFixed(c) / (c.disk / GiB)) * (1 + c.margin) - 1e-9));
}

export function transferTarget(c: Costs): number {
  return Math.ceil(c.egressSatsPerGiB * (1 + c.margin) - 1e-9);
}

/** Where prices head at utilization u (0…1); paidShare: the share of recent uploads that were paid for. */
export function targetPrices(c: Costs, utilization: number, paidShare?: number): Prices {
  const u = Math.min(1, Math.max(0, utilization));
  const F = storageFloor(c);
  const priced = paidShare !== undefined && paidShare < c.minPaidShare;
  const recovery = priced ? F : F / Math.max(u, c.recoverFrom);
  // Scarcity is gated the same way until the disk is really short (90 %): with users already priced out the
  // box fills slowly enough by itself.
  const s = u > c.scarcityFrom && (!priced || u >= 0.9) ? (u - c.scarcityFrom) / (1 - c.scarcityFrom) : 0;
  const scarcity = F * (1 + (c.scarcityMultiple - 1) * s * s);
  return { storagePrice: Math.ceil(Math.max(F, recovery, scarcity) - 1e-9), transferPrice: transferTarget(c) };
}

/** The largest move of a price in one day. */
export function maxStep(price: number, c: Costs): number {
  return Math.max(1, Math.ceil(price * c.maxDailyStep));
}

const toward = (from: number, to: number, step: number) => (to > from ? Math.min(to, from + step) : Math.max(to, from - step));

/**
 * Tomorrow's prices: today's moved toward the target by at most one step each (the first prices, with
 * nothing before them: the floor, and the transfer target). The storage price only goes below the floor when the floor itself
 * rose (a new cost file), and then climbs to it a step a day.
 */
export function nextPrices(prev: Prices | undefined, c: Costs, utilization: number, paidShare?: number): Prices {
  const target = targetPrices(c, utilization, paidShare);
  // The first day knows nothing of demand: it starts at the floor and climbs from there.
  if (!prev) return { storagePrice: storageFloor(c), transferPrice: target.transferPrice };
  const storage = toward(prev.storagePrice, target.storagePrice, maxStep(prev.storagePrice, c));
  const transfer = toward(prev.transferPrice, target.transferPrice, maxStep(prev.transferPrice, c));
  return { storagePrice: storage, transferPrice: transfer };
}

/** A sentence for the home page: how prices are set here. */
export function describePolicy(c: Costs): string {
  return `Prices follow this box's costs: storage recovers its fixed bill over the space actually used, plus a ${Math.round(c.margin * 100)} % margin, ` +
    `never below ${storageFloor(c)} sats per GiB per day (its cost when full); it rises as the disk fills past ${Math.round(c.scarcityFrom * 100)} % ` +
    `and falls as it empties. A price moves at most ${Math.round(c.maxDailyStep * 100)} % a day, and a price change never shortens the time a file is already paid for.`;
}
