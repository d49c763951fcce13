// A file's payment account and what follows from it. Pure functions of (account, chain tip, clock, prices):
// credits are derived from the address history every time, never patched, so restarts, RBF replacements
// and reorgs come out exact.

import { DAY_MS, Prices, activationAmount, payable, storageCost, storageTime, transferCost } from './pricing';

export interface Payment {
  txid: string;
  /** > 0 confirmed at that height; 0 or -1 in the mempool */
  height: number;
  /** value paid to this file's address by this transaction */
  sats: number;
  /** set on an NMC payment converted to sats: confirmed on the Namecoin chain (its own tip and depth) */
  confirmed?: boolean;
}

/** A file's Namecoin address and what was paid to it (in NMC base units, heights of the Namecoin chain). */
export interface NmcAccount {
  address: string;
  scriptHash: string;
  payments: Payment[];
}

export interface Account {
  /** the file id, or the reservation id while nothing is uploaded yet */
  id: string;
  size: number;
  /** derivation index: the address is <xpub>/0/index */
  index: number;
  address: string;
  scriptHash: string;
  created: number;
  /** the full current history of payments to the address, as last seen */
  payments: Payment[];
  /** when confirmed credits first covered activation; storage accrues from here */
  activatedAt?: number;
  /** bytes charged so far: those sent, plus those debited for downloads still in flight (layout d[...]) */
  sentBytes: number;
  /** expiry-index time this account is filed under (so it can be moved) */
  reviewAt?: number;
  /** when the ledger first saw the balance negative (matters when storage is free and nothing else moves) */
  negativeSince?: number;
  /** set on a reservation: the size it was quoted for */
  reservedSize?: number;
  /** the state the persisted counters count this account under, as of its last save */
  counted?: CountedState;
  /** the confirmed credits the persisted creditsEarned counter holds for this account */
  creditsCounted?: number;
  /** paid in NMC too: the file's Namecoin address (assigned when its page is first shown) */
  nmc?: NmcAccount;
  /** the NMC payments in sats at --nmc-rate, each marked confirmed or not on the Namecoin chain (ledger) */
  nmcCredits?: Payment[];
  /** the confirmed NMC credits (sats, and NMC base units) the persisted counters hold for this account */
  nmcCounted?: { sats: number; nmc: number };
  /**
   * The prices this account is charged at, and the money it had when they were set (README, "Prices that
   * follow costs"). Absent: an account activated before prices could change, charged at Policy.basePrices.
   */
  lock?: PriceLock;
}

/**
 * An active account's prices and its money as of the last time they changed. Storage accrues from `at` at
 * `storagePrice`; `money` is what was left for it then (credits minus transfers), with credits and bytes
 * sent since counted on top. Prices move only when new credits arrive (rebase), and a rebase keeps the
 * time already paid for: paidThrough never moves earlier because prices rose.
 */
export interface PriceLock extends Prices {
  /** when storage started accruing (activation; a rebase of a negative balance restarts it) */
  at: number;
  /** sats available for storage from `at`, at these prices (may be negative: debt) */
  money: number;
  /** confirmed credits already counted in `money` */
  credits: number;
  /** Account.sentBytes already charged in `money` */
  sentBytes: number;
}

/** FileState as a counter name, plus reservations (accounts with no upload yet); deleted ones are gone. */
export type CountedState = 'reserved' | 'awaiting_payment' | 'partially_paid' | 'active' | 'suspended';

export interface Policy extends Prices {
  /** the prices of accounts with no lock (activated before prices could change); default: the policy's own */
  basePrices?: Prices;
  confirmations: number;
  /** ms a file may stay negative before deletion */
  grace: number;
  /** ms an upload awaiting payment is kept */
  unpaidTtl: number;
}

export type FileState = 'awaiting payment' | 'partially paid' | 'active' | 'suspended' | 'deleted';

export interface Evaluation {
  state: FileState;
  /** confirmed per policy */
  credits: number;
  /** seen but not yet confirmed enough */
  pending: number;
  /** credits − storage accrued − bytes sent; meaningful once activated */
  balance: number;
  /** what to pay now: to activate, or to cover a download plus a day when active */
  amountDue: number;
  /** when the balance runs out with no more downloads (ms); undefined before activation or when free */
  paidThrough?: number;
  /** when the ledger must look at this account again (deletion time, or when it becomes due) */
  reviewAt?: number;
  /** true when the time has come to delete the file */
  expired: boolean;
}

/** Every payment that counts for an account: to its bitcoin address, and its NMC ones converted. */
export const paymentsOf = (a: Account): Payment[] => (a.nmcCredits?.length ? [...a.payments, ...a.nmcCredits] : a.payments);

export function isConfirmed(p: Payment, tip: number, confirmations: number): boolean {
  if (p.confirmed !== undefined) return p.confirmed;
  return p.height > 0 && tip - p.height + 1 >= Math.max(1, confirmations);
}

export function credits(payments: Payment[], tip: number, confirmations: number) {
  let confirmed = 0;
  let pending = 0;
  for (const p of payments) {
    if (isConfirmed(p, tip, confirmations)) confirmed += p.sats;
    else pending += p.sats;
  }
  return { confirmed, pending };
}

/** An active account's lock: its own, or the implicit one of an account activated before locks. */
export function lockOf(a: Account, policy: Policy): PriceLock {
  if (a.lock) return a.lock;
  const p = policy.basePrices ?? policy;
  return { at: a.activatedAt ?? a.created, storagePrice: p.storagePrice, transferPrice: p.transferPrice, money: 0, credits: 0, sentBytes: 0 };
}

/** Transfer charged for bytes sent since the lock; a refund after a rebase can make it negative. */
function sentSince(a: Account, L: PriceLock): number {
  const d = a.sentBytes - L.sentBytes;
  return d >= 0 ? transferCost(d, L) : -transferCost(-d, L);
}

/** Money left for storage since the lock's start: what it had, credits since, minus transfers since. */
function moneyLeft(a: Account, confirmed: number, L: PriceLock): number {
  return L.money + (confirmed - L.credits) - sentSince(a, L);
}

/** Balance at `now`, given bytes already charged. */
export function balanceAt(a: Account, confirmed: number, now: number, policy: Policy): number {
  if (a.activatedAt === undefined) return confirmed - transferCost(a.sentBytes, policy);
  const L = lockOf(a, policy);
  return moneyLeft(a, confirmed, L) - storageCost(a.size, Math.max(0, now - L.at), L);
}

/** Activation is a one-way step: once the confirmed credits covered it, storage accrues from then on. */
export function activate(a: Account, tip: number, now: number, policy: Policy): Account {
  if (a.activatedAt !== undefined || a.reservedSize !== undefined) return rebase(a, tip, now, policy);
  const { confirmed } = credits(paymentsOf(a), tip, policy.confirmations);
  if (confirmed < activationAmount(a.size, policy)) return a;
  const lock: PriceLock = { at: now, storagePrice: policy.storagePrice, transferPrice: policy.transferPrice, money: confirmed - transferCost(a.sentBytes, policy), credits: confirmed, sentBytes: a.sentBytes };
  return { ...a, activatedAt: now, lock };
}

/**
 * Moves an active account to the current prices when new credits arrive (and only then: a million
 * accounts are never rewritten for a price change). Time already paid is kept exactly:
 *   - balance ≥ 0: the money left since the lock's start is revalued by new/old storage price, rounded up,
 *     so storageTime(money', new) ≥ storageTime(money, old) and paidThrough cannot move earlier; the new
 *     credits then buy time at the new price;
 *   - balance < 0: the debt stays what it was in sats, storage restarts from now at the new price.
 * Lower prices are passed on the same way (the same paid time, new money buys more). A reorg that takes
 * credits away is no rebase: it subtracts them, in sats, exactly.
 */
export function rebase(a: Account, tip: number, now: number, policy: Policy): Account {
  if (a.activatedAt === undefined) return a;
  const L = lockOf(a, policy);
  const { confirmed } = credits(paymentsOf(a), tip, policy.confirmations);
  if (confirmed <= L.credits) return a;
  if (L.storagePrice === policy.storagePrice && L.transferPrice === policy.transferPrice) return a;
  const left = moneyLeft(a, L.credits, L);
  const balance = left - storageCost(a.size, Math.max(0, now - L.at), L);
  const fresh = confirmed - L.credits;
  const base = { storagePrice: policy.storagePrice, transferPrice: policy.transferPrice, credits: confirmed, sentBytes: a.sentBytes };
  if (balance < 0) return { ...a, lock: { ...base, at: now, money: balance + fresh } };
  const revalued = L.storagePrice === 0 || policy.storagePrice === 0
    ? left
    : ceilMul(left, policy.storagePrice, L.storagePrice);
  return { ...a, lock: { ...base, at: L.at, money: revalued + fresh } };
}

/** ceil(x · num / den) in integers, for x ≥ 0 */
function ceilMul(x: number, num: number, den: number): number {
  const v = (BigInt(x) * BigInt(num) + BigInt(den) - 1n) / BigInt(den);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('amount exceeds 2^53 satoshis');
  return Number(v);
}

export function evaluate(a: Account, tip: number, now: number, policy: Policy): Evaluation {
  const { confirmed, pending } = credits(paymentsOf(a), tip, policy.confirmations);
  const needed = activationAmount(a.reservedSize ?? a.size, policy);
  if (a.activatedAt === undefined) {
    // A reservation paid in full is kept through the grace period too: its payer must not lose the money
    // for uploading late.
    const paidReservation = a.reservedSize !== undefined && confirmed >= needed;
    const reviewAt = a.created + policy.unpaidTtl + (paidReservation ? policy.grace : 0);
    return {
      state: confirmed === 0 ? 'awaiting payment' : 'partially paid',
      credits: confirmed,
      pending,
      balance: confirmed,
      amountDue: payable(needed - confirmed),
      reviewAt,
      expired: now >= reviewAt,
    };
  }
  const L = lockOf(a, policy);
  const balance = balanceAt(a, confirmed, now, policy);
  const runway = storageTime(moneyLeft(a, confirmed, L), a.size, L);
  const paidThrough = Number.isFinite(runway) ? L.at + runway : undefined;
  // Without storage price a negative balance never changes by itself: count grace from now on.
  const negativeFrom = paidThrough ?? a.negativeSince ?? now;
  const reviewAt = balance < 0 || paidThrough !== undefined ? negativeFrom + policy.grace : undefined;
  return {
    state: balance < 0 ? 'suspended' : 'active',
    credits: confirmed,
    pending,
    balance,
    amountDue: payable(storageCost(a.size, DAY_MS, policy) + transferCost(a.size, policy) - balance),
    paidThrough,
    reviewAt,
    expired: balance < 0 && reviewAt !== undefined && now >= reviewAt,
  };
}

/** Can `bytes` more be sent, with `reservedBytes` already promised to downloads in flight? */
export function canSend(a: Account, bytes: number, reservedBytes: number, tip: number, now: number, policy: Policy): boolean {
  if (a.activatedAt === undefined) return false;
  const { confirmed } = credits(paymentsOf(a), tip, policy.confirmations);
  const L = lockOf(a, policy);
  const more = { ...a, sentBytes: a.sentBytes + reservedBytes + bytes };
  return moneyLeft(more, confirmed, L) - storageCost(a.size, Math.max(0, now - L.at), L) >= 0;
}
