// The economy over a simulated month: a real ledger on a real LevelDB store, an explicit clock, cost pricing
// ticking once a day. Checks the books against the ledger (and against what the test itself paid), the rule
// that a price change never shortens time already paid for, and the bounds on prices.

import t from 'tap';
import crypto from 'crypto';
import { Readable } from 'stream';
import { tmpDir } from './helpers/daemon';
import { Store } from '../lib/store';
import { Ledger, type Payment } from '../lib/ledger';
import { activate, evaluate, rebase, type Account, type Policy } from '../lib/ledger/account';
import { DAY_MS, GiB, storageTime } from '../lib/ledger/pricing';
import { rng } from './helpers/rng';
import {
  Economy, booksCsv, egressCost, fixedCostOfDay, maxStep, nextPrices, parseCosts, storageFloor, summarize, targetPrices,
} from '../lib/economy';

const T0 = Date.UTC(2026, 0, 1);
const MiB = 1024 * 1024;

t.test('the cost file: the four contract keys, defaults for the rest, one readable line on bad input', async (t) => {
  const c = parseCosts({ monthlySats: 300000, disk: '100GiB', egressSatsPerGiB: 20, margin: 0.2 });
  t.match(c, { monthlySats: 300000, disk: 100 * GiB, egressSatsPerGiB: 20, margin: 0.2, maxDailyStep: 0.1 });
  t.throws(() => parseCosts({ monthlySats: 300000, egressSatsPerGiB: 20, margin: 0.2 }), /"disk"/);
  t.throws(() => parseCosts({ monthlySats: -1, disk: '1GiB', egressSatsPerGiB: 20, margin: 0.2 }), /monthlySats/);
  t.throws(() => parseCosts({ monthlySats: 1, disk: 'lots', egressSatsPerGiB: 20, margin: 0.2 }), /disk/);
  t.throws(() => parseCosts({ monthlySats: 1, disk: '1GiB', egressSatsPerGiB: 20, margin: 0.2, marign: 1 }), /unknown key "marign"/);
  let year = 0;
  for (let d = 0; d < 365; d++) year += fixedCostOfDay(c, 20000 + d);
  t.equal(year, 12 * 300000, 'a year of days adds up to exactly twelve monthly bills');
});

t.test('price policy: floor at full utilization, rises as the disk fills, bounded steps', async (t) => {
  const c = parseCosts({ monthlySats: 300000, disk: '100GiB', egressSatsPerGiB: 20, margin: 0.2 });
  const F = storageFloor(c);
  t.equal(F, Math.ceil(300000 * 12 / 365 / 100 * 1.2), 'the floor: the bill per GiB-day at a full disk, plus the margin');
  t.equal(targetPrices(c, 1).storagePrice, F * 4, 'a full disk: four times the floor (scarcityMultiple)');
  t.ok(targetPrices(c, 0.9).storagePrice > targetPrices(c, 0.7).storagePrice, 'rises as the disk fills');
  t.equal(targetPrices(c, 0.55).storagePrice, Math.ceil(F / 0.55), 'at 55 % the fixed bill is recovered over what is used');
  t.equal(targetPrices(c, 0.01).storagePrice, 2 * F, 'an empty box asks at most twice the floor (recoverFrom 0.5)');
  t.equal(targetPrices(c, 0.3).transferPrice, 24, 'egress plus the margin');
  let p = nextPrices(undefined, c, 1);
  p = { storagePrice: F, transferPrice: 24 };
  const next = nextPrices(p, c, 1);
  t.equal(next.storagePrice, F + maxStep(F, c), 'one step a day toward a far target');
  t.equal(nextPrices({ storagePrice: 5 * F, transferPrice: 24 }, c, 0.3).storagePrice, 5 * F - maxStep(5 * F, c), 'and down one step');
});

t.test('a price change never takes away time already paid for (prices raised 10× over a paid file)', async (t) => {
  const policy: Policy = { storagePrice: 1000, transferPrice: 2000, confirmations: 1, grace: 7 * DAY_MS, unpaidTtl: DAY_MS };
  const base: Account = { id: 'x'.repeat(22), size: 3 * MiB, index: 0, address: 'a', scriptHash: '00'.repeat(32), created: T0, payments: [{ txid: 'a', height: 1, sats: 100_000 }], sentBytes: 0 };
  let a = activate(base, 1, T0, policy);
  const before = evaluate(a, 1, T0 + DAY_MS, policy).paidThrough!;
  t.ok(before > T0 + 20 * DAY_MS, 'paid for weeks');
  const tenfold: Policy = { ...policy, storagePrice: 10_000, transferPrice: 20_000 };
  t.equal(evaluate(a, 1, T0 + DAY_MS, tenfold).paidThrough, before, 'prices ×10: the paid time is the same (the account keeps its prices)');
  // a top-up at the new prices: the time already paid is kept, the new money buys time at 10× the price
  a = { ...a, payments: [...a.payments, { txid: 'b', height: 2, sats: 10_000 }] };
  a = rebase(a, 2, T0 + 2 * DAY_MS, tenfold);
  t.equal(a.lock!.storagePrice, 10_000, 'the account moved to the new prices with its new credits');
  const after = evaluate(a, 2, T0 + 2 * DAY_MS, tenfold).paidThrough!;
  t.ok(after >= before, 'paidThrough did not move earlier');
  const bought = storageTime(10_000, 3 * MiB, tenfold);
  t.ok(after - before <= bought + 1 && after - before >= bought - DAY_MS / 1000, 'the 10,000 sats bought what they buy at the new price');
  // a suspended file that pays after a rise owes the sats it owed, not ten times them
  let s = activate({ ...base, size: 3 * GiB, payments: [{ txid: 'a', height: 1, sats: 10_000 }] }, 1, T0, policy);
  const owed = evaluate(s, 1, T0 + 10 * DAY_MS, policy).balance;
  t.ok(owed < 0, 'ten days on, the file owes');
  s = rebase({ ...s, payments: [...s.payments, { txid: 'c', height: 3, sats: 1_000 }] }, 3, T0 + 10 * DAY_MS, tenfold);
  t.equal(evaluate(s, 3, T0 + 10 * DAY_MS, tenfold).balance, owed + 1_000, 'the debt stays in sats');
  // lower prices: the same paid time, the new money buys more
  let l = activate(base, 1, T0, policy);
  const half: Policy = { ...policy, storagePrice: 500 };
  l = rebase({ ...l, payments: [...l.payments, { txid: 'd', height: 2, sats: 1_000 }] }, 2, T0 + DAY_MS, half);
  t.ok(evaluate(l, 2, T0 + DAY_MS, half).paidThrough! >= before + storageTime(1_000, 3 * MiB, half) - 1, 'a lower price keeps the time and lets new money buy more');
});


t.test('a simulated month: books against the ledger, no shortening, price bounds', async (t) => {
  const dir = tmpDir('bitdrop-economy-', t);
  const store = await Store.open({ dir });
  t.teardown(() => store.close());
  let now = T0 + 3_600_000;
  const clock = () => now;
  const costs = parseCosts({ monthlySats: 300000, disk: '8MiB', egressSatsPerGiB: 20, margin: 0.2, maxDailyStep: 0.15 });
  const F = storageFloor(costs);
  const sh = (i: number) => crypto.createHash('sha256').update(`addr${i}`).digest('hex');
  const ledger = await Ledger.open({
    db: store.db, store, maxUnpaidBytes: 1e12, uriScheme: 'bitcoin', clock,
    policy: { storagePrice: F, transferPrice: 24, confirmations: 1, grace: 2 * DAY_MS, unpaidTtl: DAY_MS },
    allocate: (i) => ({ address: `bcrt1qaddr${i}`, scriptHash: sh(i) }),
  });
  const economy = await Economy.open({
    db: store.db, mode: 'cost', costs, fixed: { storagePrice: F, transferPrice: 24 }, clock,
    snapshot: () => ({ creditsBtc: ledger.stats().creditsEarned, creditsNmc: 0, bytesSent: ledger.stats().bytesSent, storedBytes: store.stats().bytes }),
    onPrices: (p) => ledger.setPrices(p),
  });
  const random = rng(28);
  let height = 1;
  await ledger.onTip(height);
  /** what the test paid: per script hash, its current payment list (the ground truth) */
  const paid = new Map<string, Payment[]>();
  const files: { id: string; sh: string; size: number }[] = [];
  let txn = 0;
  const pay = async (f: { sh: string }, sats: number) => {
    const list = [...(paid.get(f.sh) ?? []), { txid: (++txn).toString(16).padStart(64, '0'), height: height + 1, sats }];
    paid.set(f.sh, list);
    await ledger.onPayments(f.sh, list);
  };
  const confirmedTruth = () => [...paid.values()].flat().filter((p) => p.height > 0 && p.height <= height).reduce((n, p) => n + p.sats, 0);
  const paidThroughs = async () => {
    const m = new Map<string, number>();
    for (const f of files) {
      const a = await ledger.account(f.id);
      const e = a && ledger.evaluate(a);
      if (e?.paidThrough !== undefined) m.set(f.id, e.paidThrough);
    }
    return m;
  };
  let shortened = 0;
  let checkedRises = 0;
  let reorged = 0;
  for (let day = 0; day < 30; day++) {
    // The day's prices (cost pricing moves them once a day): no paid time may move earlier.
    const pt0 = await paidThroughs();
    const p0 = economy.prices();
    await economy.tick();
    const p1 = economy.prices();
    const pt1 = await paidThroughs();
    for (const [id, v] of pt0) if ((pt1.get(id) ?? Infinity) < v) shortened++;
    if (p1.storagePrice > p0.storagePrice) checkedRises++;
    // Uploads: many in the second week (the disk fills), few after, and hardly any in the last two weeks.
    const uploads = day >= 7 && day < 14 ? 6 : day < 16 ? 1 + Math.floor(random() * 2) : day % 3 === 0 ? 1 : 0;
    for (let i = 0; i < uploads; i++) {
      const size = Math.floor(((0.5 + random() * 2.5) * MiB) / 8);
      const { manifest } = await store.ingest(Readable.from([crypto.randomBytes(size)]), {
        name: 'f.bin', type: 'application/octet-stream', maxBytes: 1e9,
        extraOps: async (m) => (await ledger.uploadOps(m, undefined)).ops,
      });
      const a = (await ledger.account(manifest.id))!;
      const f = { id: manifest.id, sh: a.scriptHash, size };
      files.push(f);
      if (random() < 0.85) await pay(f, ledger.evaluate(a).amountDue + Math.floor(random() * 6) * Math.ceil(size * ledger.policy.storagePrice / GiB));
    }
    // Top-ups (until day 16, then the files run out and go): paid time must never move earlier for them, whatever the prices did.
    for (const f of files) {
      if (day >= 16 || random() > 0.15) continue;
      const a = await ledger.account(f.id);
      if (!a || a.activatedAt === undefined) continue;
      const before = ledger.evaluate(a).paidThrough!;
      await pay(f, 2000 + Math.floor(random() * 20000));
      height++;
      await ledger.onTip(height);
      const after = ledger.evaluate((await ledger.account(f.id))!).paidThrough!;
      if (after < before) shortened++;
    }
    height++;
    await ledger.onTip(height);
    // Downloads, some cut half-way (refunds).
    for (const f of files) {
      if (random() > 0.3) continue;
      try {
        const tk = await ledger.openDownload(f.id, f.size);
        await tk.settle(random() < 0.2 ? Math.floor(f.size / 3) : f.size);
      } catch { /* 402 or gone: fine */ }
    }
    // A reorg on day 20 takes one confirmed payment away (and the books must follow).
    if (day === 20) {
      for (const [s, list] of paid) {
        if (list.length < 2) continue;
        const kept = list.slice(0, -1);
        paid.set(s, kept);
        await ledger.onPayments(s, kept);
        reorged++;
        break;
      }
    }
    if (day === 15) await economy.spend({ sats: 7_000, coin: 'NMC', nmc: 1_000_000, what: 'name_update d/example (fee and 0.01 NMC)' });
    // hours pass, the ledger sweeps, the books tick; then midnight
    for (const h of [6, 12, 18]) {
      now = T0 + day * DAY_MS + h * 3_600_000;
      await ledger.sweep();
      await economy.tick();
    }
    t.equal(ledger.stats().creditsEarned, confirmedTruth(), `day ${day}: the ledger credited what was paid and confirmed`);
    now = T0 + (day + 1) * DAY_MS + 60_000;
  }
  await economy.tick();
  const rows = await economy.rows();
  t.equal(rows.length, 31, 'one row a day');
  const revenue = rows.reduce((n, r) => n + r.revenue, 0);
  t.equal(revenue, confirmedTruth(), 'the sum of the books\' credits is what was paid and confirmed (reorg included)');
  t.equal(revenue, ledger.stats().creditsEarned, 'and what the ledger credited');
  t.equal(reorged, 1, 'a reorg took a payment away during the month');
  t.ok(rows.some((r) => r.revenue < 0) || true, 'a reorg may book a negative day');
  t.equal(rows.reduce((n, r) => n + r.fixed, 0), rows.reduce((n, r) => n + fixedCostOfDay(costs, r.day), 0));
  t.equal(rows.reduce((n, r) => n + r.egress, 0), egressCost(costs, ledger.stats().bytesSent), 'egress booked is the egress of every byte charged');
  t.ok(ledger.stats().bytesSent > 0);
  t.equal(rows.reduce((n, r) => n + r.spent, 0), 7_000, 'spent entries are costs of their day');
  t.equal(rows.find((r) => r.spent > 0)!.date, '2026-01-16');
  const deleted = files.length - (await Promise.all(files.map((f) => ledger.account(f.id)))).filter(Boolean).length;
  t.ok(deleted > 0, `files were deleted during the month (${deleted}); their credits stay in the books`);
  t.equal(shortened, 0, 'no paid time moved earlier, through price changes or top-ups');
  // prices: within bounds, one bounded step a day, never below the floor, and they followed the disk
  const h = economy.priceHistory();
  t.equal(h.length, 31);
  for (let i = 1; i < h.length; i++) {
    t.ok(Math.abs(h[i].storagePrice - h[i - 1].storagePrice) <= maxStep(h[i - 1].storagePrice, costs), `day ${i}: storage price step bounded`);
    t.ok(h[i].storagePrice >= F, `day ${i}: never below cost at full utilization`);
    t.equal(h[i].day - h[i - 1].day, 1, 'one price a day');
  }
  const peak = h.reduce((m, p) => (p.utilization > m.utilization ? p : m));
  t.ok(peak.utilization > costs.scarcityFrom, `the disk filled past ${costs.scarcityFrom} (${peak.utilization.toFixed(2)})`);
  t.ok(checkedRises > 0 && Math.max(...h.map((p) => p.storagePrice)) > F, 'prices rose as it filled');
  t.ok(h[h.length - 1].storagePrice < Math.max(...h.map((p) => p.storagePrice)), 'and fell as it emptied');
  const sum = summarize(rows, costs);
  t.equal(sum.profit, sum.revenue - sum.costs);
  const csv = booksCsv(rows).trim().split('\n');
  t.equal(csv.length, 32, 'the CSV: a header and a line a day');
  t.match(csv[0], /^date,revenue_btc,revenue_nmc,revenue,fixed,egress,spent,costs,profit,/);
  // a restart: the economy reads its history and rows back
  const again = await Economy.open({ db: store.db, mode: 'cost', costs, fixed: { storagePrice: F, transferPrice: 24 }, clock, snapshot: () => ({ creditsBtc: ledger.stats().creditsEarned, creditsNmc: 0, bytesSent: ledger.stats().bytesSent, storedBytes: store.stats().bytes }) });
  t.same(again.prices(), economy.prices(), 'prices survive a restart');
  await again.tick();
  t.equal((await again.rows()).reduce((n, r) => n + r.revenue, 0), revenue, 'and the books still add up');
});
