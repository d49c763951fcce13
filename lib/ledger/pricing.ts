// Prices → satoshis. Pure integer arithmetic (bigint inside, safe integers out), always rounded up so the
// operator is never paid less than the stated price.

export const GiB = 1024 ** 3;
export const DAY_MS = 86_400_000;

/** Smallest output a p2wpkh payment can have (Bitcoin Core's dust limit for it is 294; 546 covers every type). */
export const DUST_SATS = 546;

export interface Prices {
  /** satoshis per GiB per day stored */
  storagePrice: number;
  /** satoshis per GiB sent */
  transferPrice: number;
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;
const big = (n: number) => BigInt(Math.max(0, Math.floor(n)));

function toSafe(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('amount exceeds 2^53 satoshis');
  return Number(n);
}

/** Storage of `bytes` for `ms` milliseconds. */
export function storageCost(bytes: number, ms: number, p: Prices): number {
  return toSafe(ceilDiv(big(bytes) * big(ms) * big(p.storagePrice), BigInt(GiB) * BigInt(DAY_MS)));
}

/** Sending `bytes` in total. Charged on cumulative bytes, so many small ranges cost what one download does. */
export function transferCost(bytes: number, p: Prices): number {
  return toSafe(ceilDiv(big(bytes) * big(p.transferPrice), BigInt(GiB)));
}

/** What makes a file downloadable: 24 hours of storage plus one full download. */
export function activationAmount(size: number, p: Prices): number {
  return storageCost(size, DAY_MS, p) + transferCost(size, p);
}

/** Runways are capped at a century: a tiny file can be paid for longer than dates go. */
export const MAX_RUNWAY_MS = 100 * 365 * DAY_MS;

/**
 * How long `sats` pay for storing `bytes` (ms, rounded down, at most MAX_RUNWAY_MS); Infinity when storage
 * is free. The inverse of storageCost: storageCost(bytes, storageTime(s), p) <= s.
 */
export function storageTime(sats: number, bytes: number, p: Prices): number {
  if (sats <= 0) return 0;
  if (p.storagePrice === 0 || bytes === 0) return Infinity;
  const ms = (big(sats) * BigInt(GiB) * BigInt(DAY_MS)) / (big(bytes) * big(p.storagePrice));
  return ms > BigInt(MAX_RUNWAY_MS) ? MAX_RUNWAY_MS : Number(ms);
}

/** A payable amount: nothing, or at least the dust limit (smaller outputs cannot be sent). */
export const payable = (sats: number) => (sats <= 0 ? 0 : Math.max(sats, DUST_SATS));

/** sats → "0.00012345" coin units, exactly (for BIP21 URIs), without floats. */
export function formatCoins(sats: number): string {
  const s = big(sats).toString().padStart(9, '0');
  const whole = s.slice(0, -8);
  const frac = s.slice(-8).replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : whole;
}
