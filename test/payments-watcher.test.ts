// The watcher's story: an address is handed out, someone pays it, the daemon hears about it — with the server
// flapping, and with far more files than Electrum subscriptions.
import t from 'tap';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import { HeaderChain } from '../lib/chain';
import { Watcher, type Payment, type WatcherOptions } from '../lib/payments/watcher';
import { parseXpub, deriveFileAddress, type FileAddress } from '../lib/payments/xpub';
import { NETWORKS } from '../lib/payments/networks';
import { TestElectrum, until } from './helpers/payments-electrum';

const net = NETWORKS.regtest;
const vpub = BIP32Factory(ecc)
  .fromSeed(Buffer.alloc(32, 1), { wif: 0xef, bip32: { public: 0x045f1cf6, private: 0x045f18bc } })
  .derivePath("m/84'/1'/0'")
  .neutered()
  .toBase58();
const key = parseXpub(vpub, 'regtest');
const files: FileAddress[] = [];
const file = (i: number) => (files[i] ??= deriveFileAddress(key, i));

function watcher(server: TestElectrum, extra: Partial<WatcherOptions> = {}) {
  const seen = new Map<string, Payment[]>();
  const emits: string[] = [];
  const w = new Watcher({
    servers: [server.url],
    chain: HeaderChain.open({ network: 'regtest' }),
    budget: 10,
    clearnet: false,
    coldSource: async () => [],
    electrum: { timeoutMs: 2000, backoff: { minMs: 20, maxMs: 100 } },
    ...extra,
  });
  w.on('payments', (sh: string, list: Payment[]) => {
    seen.set(sh, list);
    emits.push(sh);
  });
  t.teardown(() => w.stop());
  return { w, seen, emits };
}

const gets = (s: TestElectrum) => s.counts['blockchain.scripthash.get_history'] ?? 0;

t.test('a hot address is paid: mempool, then confirmed; an RBF replacement replaces', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const { w, seen } = watcher(server);
  const tips: number[] = [];
  w.on('tip', (tip: { height: number }) => tips.push(tip.height));
  await w.start();
  t.match(w.tip(), { height: 100, hash: /^[0-9a-f]{64}$/ });
  const a = file(0);
  w.watchHot(a.scriptHash);
  await until(() => w.status().subscriptions === 1);

  const txid = server.pay(a.address, 25_000, net);
  await until(() => seen.get(a.scriptHash)?.length === 1, 30_000, 'mempool payment');
  t.same(seen.get(a.scriptHash), [{ txid, height: 0, sats: 25_000 }]);

  server.mine();
  await until(() => seen.get(a.scriptHash)?.[0].height === 101, 30_000, 'confirmation');
  t.same(tips, [100, 101]);
  t.equal(w.tip()?.height, 101);

  const b = file(1);
  w.watchHot(b.scriptHash);
  const first = server.pay(b.address, 10_000, net);
  await until(() => seen.get(b.scriptHash)?.[0]?.txid === first);
  server.drop(first); // replaced by fee bump: the first one never confirms
  const bump = server.pay(b.address, 10_000, net);
  await until(() => seen.get(b.scriptHash)?.[0]?.txid === bump, 30_000, 'replacement');
  t.same(seen.get(b.scriptHash), [{ txid: bump, height: 0, sats: 10_000 }], 'full list, not a delta');
});

t.test('history is fetched only when the status hash differs', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const { w, emits } = watcher(server);
  await w.start();
  for (let i = 0; i < 5; i++) w.watchHot(file(i).scriptHash);
  await until(() => w.status().subscriptions === 5);
  t.equal(gets(server), 0, 'fresh addresses: status null, nothing fetched');

  server.pay(file(100).address, 1_000, net); // someone else's address
  server.mine();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(gets(server), 0, 'unrelated activity costs nothing');

  server.pay(file(2).address, 7_000, net);
  await until(() => emits.length === 1);
  t.equal(gets(server), 1, 'one get_history for one status change');
  t.equal(server.counts['blockchain.transaction.get'], 1);

  // reconnect with nothing changed: everything is resubscribed and compared, nothing fetched
  await server.kill();
  await server.restart();
  await until(() => w.status().connected && (server.counts['blockchain.scripthash.subscribe'] ?? 0) >= 10, 30_000, 'resubscribe');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(gets(server), 1, 'statuses matched after reconnect: no history fetched');
  t.equal(emits.length, 1);

  await w.checkNow(file(2).scriptHash);
  t.equal(emits.length, 2, 'checkNow always emits');
  t.equal(server.counts['blockchain.transaction.get'], 1, 'transactions come from the cache');
});

t.test('a payment made while the server is down is found after reconnect', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const { w, seen } = watcher(server);
  await w.start();
  const a = file(3);
  w.watchHot(a.scriptHash);
  await until(() => w.status().subscriptions === 1);
  await server.kill();
  await until(() => !w.status().connected);
  const txid = server.pay(a.address, 42_000, net);
  server.mine();
  await server.restart();
  await until(() => seen.has(a.scriptHash), 30_000, 'payment after reconnect');
  t.same(seen.get(a.scriptHash), [{ txid, height: 101, sats: 42_000 }]);
  t.equal(w.tip()?.height, 101);
});

t.test('budget 50, 5,000 files: hot and cold payments both found, never more than 50 subscriptions', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const all = Array.from({ length: 5000 }, (_, i) => file(i));
  const ordered = all.map((f) => f.scriptHash).sort();
  const coldSource = async (after: string | undefined, limit: number) => {
    let i = 0;
    if (after !== undefined) while (i < ordered.length && ordered[i] <= after) i++;
    return ordered.slice(i, i + limit);
  };
  const { w, seen } = watcher(server, { budget: 50, sweepPeriodMs: 2000, maxSweepRate: 100_000, sweepConcurrency: 16, sweepPageSize: 500, coldSource });
  await w.start();
  for (const f of all.slice(0, 200)) w.watchHot(f.scriptHash); // handed out over time: the last 50 stay hot
  await until(() => w.status().subscriptions === 50 && w.status().hot === 50, 30_000, 'hot set settles');

  const hot = all[199];
  const cold = all[4321];
  const started = Date.now();
  // "within one sweep period" is counted in passes, not wall time (a loaded machine slows every pass): the
  // pass running now may already be past the cold script; the next one, whole, must find it.
  const passAtPayment = w.status().sweep.pass;
  const hotTx = server.pay(hot.address, 1_500, net);
  const coldTx = server.pay(cold.address, 2_500, net);
  await until(() => seen.has(hot.scriptHash), 30_000, 'hot payment');
  const hotMs = Date.now() - started;
  await until(() => seen.has(cold.scriptHash) || w.status().sweep.pass >= passAtPayment + 2, 60_000, 'the next whole sweep pass');
  t.ok(seen.has(cold.scriptHash), `the cold payment found by the first whole sweep pass after it (pass ${w.status().sweep.pass}, paid during pass ${passAtPayment})`);
  const coldMs = Date.now() - started;
  t.same(seen.get(hot.scriptHash), [{ txid: hotTx, height: 0, sats: 1_500 }]);
  t.same(seen.get(cold.scriptHash), [{ txid: coldTx, height: 0, sats: 2_500 }]);
  t.ok(w.status().sweep.pass >= 1);
  t.comment(`hot seen after ${hotMs} ms, cold after ${coldMs} ms; ${gets(server)} history requests`);

  // the cold script had a mempool payment: it was promoted to hot, so its confirmation arrives by notification
  await until(() => w.status().subscriptions === 50);
  server.mine();
  await until(() => seen.get(cold.scriptHash)?.[0].height === 101, 30_000, 'the promoted cold script\'s confirmation, by notification');
  t.ok(server.maxLiveSubs <= 50, `server saw at most ${server.maxLiveSubs} live subscriptions`);
});

t.test('a server without unsubscribe: the watcher reconnects rather than exceed the budget', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  server.unsupported.add('blockchain.scripthash.unsubscribe');
  const { w } = watcher(server, { budget: 5 });
  await w.start();
  for (let i = 0; i < 5; i++) w.watchHot(file(i).scriptHash);
  await until(() => w.status().subscriptions === 5);
  for (let i = 5; i < 8; i++) w.watchHot(file(i).scriptHash);
  await until(() => server.accepted >= 2 && w.status().subscriptions === 5, 30_000, 'fresh session');
  await until(() => server.liveSubs === 5);
  t.ok(server.maxLiveSubs <= 5, `max ${server.maxLiveSubs} live subscriptions`);
});

t.test('unwatch and bad scripthashes', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const { w } = watcher(server);
  await w.start();
  t.throws(() => w.watchHot('nope'), /not an Electrum scripthash/);
  w.watchHot(file(0).scriptHash);
  await until(() => server.liveSubs === 1);
  w.unwatch(file(0).scriptHash);
  await until(() => server.liveSubs === 0);
  t.equal(w.status().hot, 0);
});

t.test('an outage with 16 cold checks in flight: they share one wait for the server, and the sweep goes on', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const ordered = Array.from({ length: 400 }, (_, i) => file(i).scriptHash).sort();
  const coldSource = async (after: string | undefined, limit: number) => ordered.filter((sh) => after === undefined || sh > after).slice(0, limit);
  const { w } = watcher(server, { sweepPeriodMs: 60_000, maxSweepRate: 100_000, sweepConcurrency: 16, coldSource });
  await w.start();
  server.stall = true; // the checks now in flight hang …
  await until(() => (server.counts['blockchain.scripthash.get_history'] ?? 0) >= 16, 30_000, '16 checks in flight');
  const before = w.status().sweep.checkedThisPass;
  await server.kill(); // … and fail together when the server goes away
  await until(() => !w.status().connected, 30_000, 'disconnected');
  await new Promise((r) => setTimeout(r, 300));
  server.stall = false;
  await server.restart();
  await until(() => w.status().sweep.checkedThisPass >= before + 50 || w.status().sweep.pass >= 1, 30_000, 'the sweep goes on after the outage');
  t.same(warnings.filter((l) => /MaxListeners/.test(l)), [], 'no MaxListenersExceededWarning');
});
