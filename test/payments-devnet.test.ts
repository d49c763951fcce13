// The watcher against the devnet: a real regtest chain, real signed transactions, the Electrum protocol over TCP.
// Pay, confirm, fee-bump, reorg out, outage — the payment list always equals what the chain says.
import t from 'tap';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Devnet } from '../lib/devnet';
import { devnetPay, devnetBump, devnetReorg } from '../lib/devnet/wallet';
import { HeaderChain } from '../lib/chain';
import { Watcher, type Payment } from '../lib/payments/watcher';
import { parseXpub, deriveFileAddress } from '../lib/payments/xpub';
import { until } from './helpers/payments-electrum';

t.test('paying file addresses on the devnet', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-payments-devnet-'));
  const devnet = await Devnet.open({ dir });
  t.teardown(async () => {
    await devnet.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const key = parseXpub(devnet.xpub, 'regtest');
  const addr = Array.from({ length: 20 }, (_, i) => deriveFileAddress(key, i));
  t.equal(addr[7].address, devnet.operatorAddress(7), 'bitdrop and the devnet derive the same file addresses');

  const ordered = addr.map((a) => a.scriptHash).sort();
  const seen = new Map<string, Payment[]>();
  const w = new Watcher({
    servers: [devnet.electrumUrl],
    chain: HeaderChain.open({ network: 'regtest' }),
    budget: 2,
    sweepPeriodMs: 1000,
    maxSweepRate: 1000,
    clearnet: false,
    coldSource: async (after, limit) => ordered.filter((s) => after === undefined || s > after).slice(0, limit),
    electrum: { timeoutMs: 5000, backoff: { minMs: 20, maxMs: 200 } },
    log: (l) => process.env.WLOG && console.error(l),
  });
  w.on('payments', (sh: string, list: Payment[]) => seen.set(sh, list));
  t.teardown(() => w.stop());
  await w.start();
  t.equal(w.tip()?.height, devnet.height);

  const a = addr[0];
  w.watchHot(a.scriptHash);
  const txid = await devnetPay(dir, a.address, 50_000);
  await until(() => seen.get(a.scriptHash)?.[0]?.txid === txid, 30_000, 'mempool payment');
  t.same(seen.get(a.scriptHash), [{ txid, height: 0, sats: 50_000 }]);

  devnet.mine(1);
  const height = devnet.height;
  await until(() => seen.get(a.scriptHash)?.[0]?.height === height, 30_000, 'confirmation');
  t.equal(w.tip()?.height, height);

  await t.test('fee bump: the replacement, with its new amount, is the only payment', async (t) => {
    const b = addr[1];
    w.watchHot(b.scriptHash);
    const first = await devnetPay(dir, b.address, 30_000);
    await until(() => seen.get(b.scriptHash)?.[0]?.txid === first);
    const bump = await devnetBump(dir, first, { sats: 31_000, feeRate: 10 });
    await until(() => seen.get(b.scriptHash)?.[0]?.txid === bump, 30_000, 'replacement');
    t.same(seen.get(b.scriptHash), [{ txid: bump, height: 0, sats: 31_000 }]);
  });

  await t.test('reorg: a confirmed payment double-spent away disappears', async (t) => {
    const c = addr[2];
    w.watchHot(c.scriptHash);
    const paid = await devnetPay(dir, c.address, 20_000);
    devnet.mine(1);
    await until(() => (seen.get(c.scriptHash)?.[0]?.height ?? 0) > 0, 30_000, 'confirmed');
    await devnetReorg(dir, 1, { dropTxids: [paid] });
    await until(() => seen.get(c.scriptHash)?.length === 0, 30_000, 'payment gone after reorg');
    t.same(seen.get(c.scriptHash), []);
  });

  await t.test('outage: a payment made while Electrum is down is found after it returns', async (t) => {
    const d = addr[3];
    w.watchHot(d.scriptHash);
    await until(() => w.status().subscriptions === 2);
    await devnet.stopElectrum();
    await until(() => !w.status().connected);
    devnet.mine(1, d.address); // a coinbase to the file's address: no Electrum needed to make it
    const h = devnet.height;
    await devnet.startElectrum();
    await until(() => seen.get(d.scriptHash)?.[0]?.height === h, 10_000, 'payment after the outage');
    t.equal(seen.get(d.scriptHash)![0].sats > 0, true);
  });

  await t.test('cold: an address evicted from the budget is still found by the sweep', async (t) => {
    const e = addr[15]; // never hot
    const paid = await devnetPay(dir, e.address, 12_345);
    await until(() => seen.get(e.scriptHash)?.[0]?.txid === paid, 30_000, 'sweep finds it');
    t.same(seen.get(e.scriptHash), [{ txid: paid, height: 0, sats: 12_345 }]);
    t.ok(w.status().subscriptions <= 2, 'never beyond the budget');
  });
});
