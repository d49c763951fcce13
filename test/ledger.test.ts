// The money math, pure: integers of satoshis, an explicit clock, no sleeping.

import t from 'tap';
import { activationAmount, formatCoins, payable, storageCost, storageTime, transferCost, DAY_MS, GiB } from '../lib/ledger/pricing';
import { activate, canSend, credits, evaluate, type Account, type Policy } from '../lib/ledger/account';

const policy: Policy = { storagePrice: 1_000_000, transferPrice: 2_048_000, confirmations: 2, grace: 7 * DAY_MS, unpaidTtl: DAY_MS };
const MiB = 1024 * 1024;
const T0 = Date.UTC(2026, 0, 1);
const account = (over: Partial<Account> = {}): Account => ({
  id: 'x'.repeat(22), size: MiB, index: 0, address: 'bcrt1q', scriptHash: '00'.repeat(32), created: T0, payments: [], sentBytes: 0, ...over,
});

t.test('prices round up, in integers', async (t) => {
  t.equal(storageCost(MiB, DAY_MS, policy), 977, '1 MiB for a day at 1,000,000 sats/GiB/day = 976.56 → 977');
  t.equal(transferCost(MiB, policy), 2000);
  t.equal(transferCost(1, policy), 1, 'a byte still costs a satoshi');
  t.equal(transferCost(0, policy), 0);
  t.equal(activationAmount(MiB, policy), 2977);
  t.equal(storageCost(GiB, 21 * DAY_MS, { storagePrice: 1e14, transferPrice: 0 }), 21e6 * 1e8, 'no float drift at 21M BTC');
  t.throws(() => storageCost(1e15, 1e15, policy), RangeError, 'refuses to leave the safe integers');
  for (const sats of [1, 977, 12345, 10 ** 7]) {
    const ms = storageTime(sats, MiB, policy);
    t.ok(storageCost(MiB, ms, policy) <= sats, 'storageTime never buys more than was paid');
    t.ok(storageCost(MiB, ms + 100, policy) > sats - 1, 'and not much less');
  }
  t.equal(storageTime(100, MiB, { storagePrice: 0, transferPrice: 1 }), Infinity, 'free storage lasts forever');
  t.equal(storageTime(2000, 3, { storagePrice: 1000, transferPrice: 0 }), 100 * 365 * DAY_MS, 'a 3-byte file paid 2000 sats: capped at a century, no overflow');
  t.equal(formatCoins(2977), '0.00002977');
  t.equal(formatCoins(100_000_000), '1');
  t.equal(formatCoins(123_456_789_012), '1234.56789012');
  t.equal(payable(3), 546, 'below dust cannot be sent: ask for dust');
  t.equal(payable(0), 0);
});

t.test('credits follow the confirmation policy', async (t) => {
  const payments = [{ txid: 'a', height: 100, sats: 1000 }, { txid: 'b', height: 101, sats: 500 }, { txid: 'c', height: 0, sats: 7 }];
  t.same(credits(payments, 101, 2), { confirmed: 1000, pending: 507 });
  t.same(credits(payments, 102, 2), { confirmed: 1500, pending: 7 });
  t.same(credits(payments, 102, 1), { confirmed: 1500, pending: 7 });
});

t.test('states: awaiting → partially paid → active → suspended → expired', async (t) => {
  let a = account();
  t.match(evaluate(a, 100, T0, policy), { state: 'awaiting payment', amountDue: 2977, expired: false, reviewAt: T0 + DAY_MS });
  a = { ...a, payments: [{ txid: 'a', height: 99, sats: 1000 }] };
  t.match(evaluate(a, 100, T0, policy), { state: 'partially paid', credits: 1000, amountDue: 1977 });
  t.equal(activate(a, 100, T0, policy).activatedAt, undefined, 'not enough to activate');
  a = { ...a, payments: [...a.payments, { txid: 'b', height: 100, sats: 1977 }] };
  t.equal(activate(a, 100, T0, policy).activatedAt, undefined, 'one confirmation of two is not enough');
  a = activate(a, 101, T0 + 1000, policy);
  t.equal(a.activatedAt, T0 + 1000, 'activated when the credits are confirmed enough');
  const e = evaluate(a, 101, T0 + 1000, policy);
  t.match(e, { state: 'active', balance: 2977 });
  t.equal(e.paidThrough, T0 + 1000 + storageTime(2977, MiB, policy));
  t.equal(e.reviewAt, e.paidThrough! + policy.grace);
  t.ok(canSend(a, MiB, 0, 101, T0 + 1000, policy), 'a full download is covered');
  t.notOk(canSend(a, MiB, MiB, 101, T0 + 1000, policy), 'not with another full download already in flight');
  a = { ...a, sentBytes: MiB };
  const later = e.paidThrough! - 977; // storage still owed: negative after the download
  t.equal(evaluate(a, 101, T0 + 1000 + DAY_MS / 2, policy).state, 'active');
  const neg = evaluate(a, 101, e.paidThrough! + DAY_MS, policy);
  t.equal(neg.state, 'suspended');
  t.equal(neg.expired, false, 'within grace');
  t.ok(later > 0);
  t.equal(evaluate(a, 101, neg.reviewAt! + 1, policy).expired, true, 'past grace');
  t.equal(evaluate(account(), 100, T0 + DAY_MS, policy).expired, true, 'unpaid past the TTL');
});

t.test('overpayment extends paidThrough; a reorg that removes credit makes the balance negative', async (t) => {
  const base = activate(account({ payments: [{ txid: 'a', height: 10, sats: 2977 }] }), 20, T0, policy);
  const more = { ...base, payments: [...base.payments, { txid: 'b', height: 11, sats: 9770 }] };
  t.ok(evaluate(more, 20, T0, policy).paidThrough! - evaluate(base, 20, T0, policy).paidThrough! >= 9 * DAY_MS, '9,770 sats more buy ~10 days more');
  const reorged = { ...base, payments: [] };
  t.equal(evaluate(reorged, 20, T0, policy).state, 'active', 'zero balance at once');
  t.equal(evaluate(reorged, 20, T0 + DAY_MS, policy).state, 'suspended', 'then negative');
});

t.test('a paid reservation outlives the unpaid TTL by the grace period', async (t) => {
  const r = account({ size: 0, reservedSize: MiB, payments: [{ txid: 'a', height: 1, sats: 2977 }] });
  t.equal(evaluate(r, 10, T0, policy).reviewAt, T0 + DAY_MS + 7 * DAY_MS);
  t.equal(evaluate({ ...r, payments: [] }, 10, T0, policy).reviewAt, T0 + DAY_MS);
});
