// What the box costs, as the operator states it (no price oracle): a JSON object, from --costs FILE,
// BITDROP_COSTS or the config file's "costs" (a path, or the object itself).
//   {"monthlySats": 300000, "disk": "100GiB", "egressSatsPerGiB": 20, "margin": 0.2}
// Those four keys are a contract. More, all optional, tune the cost pricing (lib/economy/pricing.ts).

import fs from 'fs';

export const GiB = 1024 ** 3;

export interface Costs {
  /** the fixed monthly bill (server, bandwidth plan, domain …), in sats */
  monthlySats: number;
  /** bytes of disk the box may fill */
  disk: number;
  /** what sending one GiB costs, in sats */
  egressSatsPerGiB: number;
  /** the share on top of cost, 0.2 = 20 % */
  margin: number;
  /** largest change of a price in a day, as a share of it (default 0.1: ±10 % a day, at least 1 sat) */
  maxDailyStep: number;
  /** utilization from which the storage price rises for scarcity (default 0.75) */
  scarcityFrom: number;
  /** the storage price at a full disk, as a multiple of its floor (default 4) */
  scarcityMultiple: number;
  /** the recovery price counts utilization as at least this (default 0.5: at most twice the floor) */
  recoverFrom: number;
  /** below this share of the last week's uploads paid for, the recovery term is dropped (default 0.85) */
  minPaidShare: number;
  /** sats the operator put in to start (the books' cash on hand starts here; default 0) */
  reserveSats: number;
}

export class CostsError extends Error {}

const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

function bytes(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v) : null;
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) throw new CostsError(`${where}: "disk" must be a size such as "100GiB" or 107374182400`);
  return Math.floor(Number(m[1]) * unit);
}

function num(o: Record<string, unknown>, key: string, where: string, opts: { int?: boolean; min?: number; max?: number; def?: number }): number {
  const v = o[key];
  if (v === undefined) {
    if (opts.def !== undefined) return opts.def;
    throw new CostsError(`${where}: "${key}" is missing`);
  }
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  const ok = typeof n === 'number' && Number.isFinite(n) && (!opts.int || Number.isSafeInteger(n))
    && n >= (opts.min ?? 0) && (opts.max === undefined || n <= opts.max);
  if (!ok) {
    const range = opts.max !== undefined ? ` between ${opts.min ?? 0} and ${opts.max}` : ` ≥ ${opts.min ?? 0}`;
    throw new CostsError(`${where}: "${key}" must be a ${opts.int ? 'whole number' : 'number'}${range} (got ${JSON.stringify(v)})`);
  }
  return n as number;
}

const KEYS = ['monthlySats', 'disk', 'egressSatsPerGiB', 'margin', 'maxDailyStep', 'scarcityFrom', 'scarcityMultiple', 'recoverFrom', 'minPaidShare', 'reserveSats'];

/** Checks a cost object; one readable line on bad input. */
export function parseCosts(raw: unknown, where = 'costs'): Costs {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CostsError(`${where}: expected a JSON object such as {"monthlySats": 300000, "disk": "100GiB", "egressSatsPerGiB": 20, "margin": 0.2}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) throw new CostsError(`${where}: unknown key "${k}" (known: ${KEYS.join(', ')})`);
  const c: Costs = {
    monthlySats: num(o, 'monthlySats', where, { int: true }),
    disk: bytes(o.disk, where),
    egressSatsPerGiB: num(o, 'egressSatsPerGiB', where, { int: true }),
    margin: num(o, 'margin', where, { max: 10 }),
    maxDailyStep: num(o, 'maxDailyStep', where, { min: 0.001, max: 1, def: 0.1 }),
    scarcityFrom: num(o, 'scarcityFrom', where, { max: 0.99, def: 0.75 }),
    scarcityMultiple: num(o, 'scarcityMultiple', where, { min: 1, max: 100, def: 4 }),
    recoverFrom: num(o, 'recoverFrom', where, { min: 0.01, max: 1, def: 0.5 }),
    minPaidShare: num(o, 'minPaidShare', where, { max: 1, def: 0.85 }),
    reserveSats: num(o, 'reserveSats', where, { int: true, def: 0 }),
  };
  if (o.disk === undefined) throw new CostsError(`${where}: "disk" is missing`);
  return c;
}

/** A path to a JSON file, or the object itself (the config file may inline it). */
export function readCosts(source: string | Record<string, unknown>): Costs {
  if (typeof source !== 'string') return parseCosts(source, 'costs');
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(source, 'utf8'));
  } catch (err) {
    throw new CostsError(`--costs ${source}: ${(err as Error).message}`);
  }
  return parseCosts(parsed, `--costs ${source}`);
}

/**
 * The fixed bill of one day (epoch day number), in whole sats: a year of 12 bills spread over 365 days so
 * that the days of a year add up to exactly 12 × monthlySats (no rounding drift in the books).
 */
export function fixedCostOfDay(c: Costs, day: number): number {
  const perYear = BigInt(c.monthlySats) * 12n;
  const upTo = (d: number) => (perYear * BigInt(d)) / 365n;
  return Number(upTo(day + 1) - upTo(day));
}

/** Egress cost of the bytes sent in total, rounded up (charged on the running total, like transferCost). */
export function egressCost(c: Costs, totalBytesSent: number): number {
  const b = BigInt(Math.max(0, Math.floor(totalBytesSent)));
  return Number((b * BigInt(c.egressSatsPerGiB) + BigInt(GiB) - 1n) / BigInt(GiB));
}
