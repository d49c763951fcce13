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
}

/** FileState as a counter name, plus reservations (accounts with no upload yet); deleted ones are gone. */
export type CountedState = 'reserved' | 'awaiting_payment' | 'partially_paid' | 'active' | 'suspended';

export interface Policy extends Prices {
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

export function isConfirmed(p: Payment, tip: number, confirmations: number): boolean {
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

/** Balance at `now`, given bytes already charged. */
export function balanceAt(a: Account, confirmed: number, now: number, p: Prices): number {
  const storage = a.activatedAt === undefined ? 0 : storageCost(a.size, Math.max(0, now - a.activatedAt), p);
  return confirmed - storage - transferCost(a.sentBytes, p);
}

/** Activation is a one-way step: once the confirmed credits covered it, storage accrues from then on. */
export function activate(a: Account, tip: number, now: number, policy: Policy): Account {
  if (a.activatedAt !== undefined || a.reservedSize !== undefined) return a;
  const { confirmed } = credits(a.payments, tip, policy.confirmations);
  return confirmed >= activationAmount(a.size, policy) ? { ...a, activatedAt: now } : a;
}

export function evaluate(a: Account, tip: number, now: number, policy: Policy): Evaluation {
  const { confirmed, pending } = credits(a.payments, tip, policy.confirmations);
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
  const balance = balanceAt(a, confirmed, now, policy);
  const left = confirmed - transferCost(a.sentBytes, policy);
  const runway = storageTime(left, a.size, policy);
  const paidThrough = Number.isFinite(runway) ? a.activatedAt + runway : undefined;
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
  const { confirmed } = credits(a.payments, tip, policy.confirmations);
  const storage = storageCost(a.size, Math.max(0, now - a.activatedAt), policy);
  return confirmed - storage - transferCost(a.sentBytes + reservedBytes + bytes, policy) >= 0;
}
