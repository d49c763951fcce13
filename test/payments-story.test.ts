// Every file pays its own way: the whole story over real HTTP (curl) and real Electrum (devnet over TCP).

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { curl, curlStatus, randomFile, sha256File, tmpDir, chunkFiles } from './helpers/daemon';
import { startPaidNode, until, MiB, HOUR, DAY, type PaidNode } from './helpers/paid-node';
import { devnetPay, devnetMine, devnetBump, devnetReorg } from '../lib/devnet/wallet';

const json = async (p: PaidNode, url: string) => JSON.parse(await curl('-H', 'Accept: application/json', url));

async function uploadJson(p: PaidNode, file: string, extra = '') {
  return JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${p.url}/${extra}`));
}

t.test('upload → 402 → pay too little → pay the rest → mine → download → debits → top-up → deletion', async (t) => {
  const p = await startPaidNode();
  t.teardown(() => p.stop());
  const work = tmpDir();
  const file = randomFile(work, MiB, 'story.bin');
  const up = await uploadJson(p, file);
  t.equal(up.state, 'awaiting payment');
  t.equal(up.amountDue, 2977, '24 h of storage (977) + one download (2000)');
  t.match(up.address, /^bcrt1q/);
  t.equal(up.paymentUri, `bitcoin:${up.address}?amount=0.00002977`);
  const fileUrl = `${p.url}/${up.id}`;

  let r = await curlStatus(fileUrl);
  t.equal(r.status, 402, 'not downloadable before payment');
  t.match(await curl('-I', fileUrl), /^HTTP\/1\.1 402 /, 'HEAD answers as GET would');
  t.match(r.body, new RegExp(`^402 Payment Required: this file is awaiting payment: send 2977 sats to ${up.address}`));
  t.match(r.body, new RegExp(`\nbitcoin:${up.address}\\?amount=0\\.00002977\n$`), 'the BIP21 URI on its own line');
  t.match(await json(p, fileUrl), { state: 'awaiting payment', address: up.address, amountDue: 2977, paymentUri: up.paymentUri, paidThrough: null });

  await devnetPay(p.devnetDir, up.address, 1000);
  await until(async () => (await json(p, fileUrl)).pending === 1000, 15_000, 'pending 1000');
  await devnetMine(p.devnetDir, 1);
  const partial = await until(async () => { const v = await json(p, fileUrl); return v.credits === 1000 && v; }, 15_000, 'credit 1000');
  t.equal(partial.state, 'partially paid');
  t.equal(partial.amountDue, 1977);
  t.equal((await curlStatus(fileUrl)).status, 402, 'too little: still 402');

  await devnetPay(p.devnetDir, up.address, 1977);
  await until(async () => (await json(p, fileUrl)).pending === 1977, 15_000, 'pending rest');
  t.equal((await curlStatus('-o', '/dev/null', fileUrl)).status, 402, 'unconfirmed does not count');
  await devnetMine(p.devnetDir, 1);
  await until(async () => (await json(p, fileUrl)).state === 'active', 15_000, 'active');
  const out = path.join(work, 'out');
  await curl('-f', '-o', out, fileUrl);
  t.equal(await sha256File(out), await sha256File(file), 'downloaded after payment');
  let v = await json(p, fileUrl);
  t.equal(v.balance, 977, 'one download (2000) debited');

  p.clock.advance(12 * HOUR);
  v = await json(p, fileUrl);
  t.equal(v.balance, 977 - 489, '12 h of storage debited (489 sats, rounded up)');
  r = await curlStatus(fileUrl);
  t.equal(r.status, 402, 'balance cannot cover a download');
  t.match(r.body, /balance \(488 sats\) does not cover a download of 1048576 bytes/);

  // Anyone can pay any file's address.
  await devnetPay(p.devnetDir, up.address, 5000);
  await devnetMine(p.devnetDir, 1);
  await until(async () => (await json(p, fileUrl)).credits === 7977, 15_000, 'top-up credited');
  await curl('-f', '-o', out, fileUrl);
  t.equal(await sha256File(out), await sha256File(file), 'downloadable again after a third party topped up');
  v = await json(p, fileUrl);
  t.equal(v.balance, 7977 - 489 - 4000);
  const activated = Date.parse(v.paidThrough) - Math.floor((3977 * 1024 ** 3 * 86_400_000) / (MiB * 1_000_000));
  t.ok(Math.abs(activated - (p.clock.now - 12 * HOUR)) < 1000, 'paidThrough = activation + what the credits buy');

  // Range download charges only the bytes of the range.
  const range = await curlStatus('-o', '/dev/null', '-H', 'Range: bytes=0-1023', fileUrl);
  t.equal(range.status, 206);
  v = await json(p, fileUrl);
  t.equal(v.balance, 7977 - 489 - transfer(MiB * 2 + 1024), 'a 1 KiB range costs what 1 KiB costs');

  // Run the balance out: past paidThrough the file is suspended, but kept for the grace period.
  p.clock.now = Date.parse(v.paidThrough) + DAY;
  v = await json(p, fileUrl);
  t.equal(v.state, 'suspended');
  t.ok(v.balance < 0);
  t.same(await p.node.ledger!.sweep(), [], 'within grace: nothing deleted');
  t.equal((await curlStatus('-o', '/dev/null', fileUrl)).status, 402);
  p.clock.now = Date.parse(v.paidThrough) + 7 * DAY + 1000;
  const before = chunkFiles(p.dataDir).length;
  t.same(await p.node.ledger!.sweep(), [up.id], 'negative past the grace period: deleted');
  t.equal((await curlStatus('-o', '/dev/null', fileUrl)).status, 410, 'its URL says it is gone');
  t.equal(chunkFiles(p.dataDir).length, before - 1, 'its chunk was freed');
});

const transfer = (bytes: number) => Math.ceil((bytes * 2_048_000) / 1024 ** 3);

t.test('unpaid uploads expire after --unpaid-ttl; --max-unpaid-bytes refuses with 503 and stores nothing', async (t) => {
  const p = await startPaidNode({ maxUnpaidBytes: String(3 * MiB), unpaidTtl: '24h' });
  t.teardown(() => p.stop());
  const work = tmpDir();
  const a = await uploadJson(p, randomFile(work, 2 * MiB, 'a.bin'));
  const chunks = chunkFiles(p.dataDir).length;
  const over = await curlStatus('-T', randomFile(work, 2 * MiB, 'b.bin'), `${p.url}/`);
  t.equal(over.status, 503);
  t.match(over.body, /^503 Service Unavailable: too many uploads are awaiting payment/);
  const chunked = await curlStatus('-H', 'Transfer-Encoding: chunked', '-T', path.join(work, 'b.bin'), `${p.url}/`);
  t.equal(chunked.status, 503, 'also when the size is only known at the end');
  t.equal(chunkFiles(p.dataDir).length, chunks, 'nothing stored');
  p.clock.advance(23 * HOUR);
  t.same(await p.node.ledger!.sweep(), [], 'kept within the TTL');
  p.clock.advance(2 * HOUR);
  t.same(await p.node.ledger!.sweep(), [a.id], 'deleted after the TTL');
  t.equal(chunkFiles(p.dataDir).length, 0);
  t.equal((await curlStatus('-T', path.join(work, 'b.bin'), `${p.url}/`)).status, 201, 'room again');
});

t.test('reserve first: quote, pay, then upload against the reservation', async (t) => {
  const p = await startPaidNode();
  t.teardown(() => p.stop());
  const work = tmpDir();
  const file = randomFile(work, MiB, 'r.bin');
  const q = JSON.parse(await curl('-f', '-X', 'POST', '-H', 'Accept: application/json', `${p.url}/reserve?size=${MiB}`));
  t.equal(q.amountDue, 2977);
  t.match(q.upload, /\?reservation=/);
  t.equal((await curlStatus('-X', 'POST', `${p.url}/reserve`)).status, 400, 'size is required');
  await devnetPay(p.devnetDir, q.address, q.amountDue);
  await devnetMine(p.devnetDir, 1);
  await until(async () => (await json(p, q.status)).credits === 2977, 15_000, 'reservation paid');
  const tooBig = await curlStatus('-T', randomFile(work, MiB + 1, 'big.bin'), q.upload);
  t.equal(tooBig.status, 413, 'larger than reserved');
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, q.upload));
  t.equal(up.id, q.reservation);
  t.equal(up.state, 'active', 'paid before it was sent: active at once');
  t.equal(up.address, q.address);
  const out = path.join(work, 'out');
  await curl('-f', '-o', out, up.url);
  t.equal(await sha256File(out), await sha256File(file));
  t.equal((await curlStatus('-T', file, q.upload)).status, 409, 'a reservation is used once');
  t.equal((await curlStatus('-T', file, `${p.url}/?reservation=AAAAAAAAAAAAAAAAAAAAAA`)).status, 404);
});

t.test('a reorg that removes a confirmed payment takes the credit away', async (t) => {
  const p = await startPaidNode();
  t.teardown(() => p.stop());
  const up = await uploadJson(p, randomFile(tmpDir(), MiB, 'o.bin'));
  const fileUrl = `${p.url}/${up.id}`;
  const txid = await devnetPay(p.devnetDir, up.address, 2977);
  await devnetMine(p.devnetDir, 1);
  await until(async () => (await json(p, fileUrl)).state === 'active', 15_000, 'active');
  p.clock.advance(HOUR);
  await devnetReorg(p.devnetDir, 1, { dropTxids: [txid] });
  const v = await until(async () => { const x = await json(p, fileUrl); return x.credits === 0 && x; }, 15_000, 'credit removed');
  t.equal(v.state, 'suspended', 'activated once, now owing');
  t.equal((await curlStatus('-o', '/dev/null', fileUrl)).status, 402);
});

t.test('an RBF replacement replaces the pending amount, it does not add to it', async (t) => {
  const p = await startPaidNode();
  t.teardown(() => p.stop());
  const up = await uploadJson(p, randomFile(tmpDir(), MiB, 'b.bin'));
  const fileUrl = `${p.url}/${up.id}`;
  const first = await devnetPay(p.devnetDir, up.address, 1000);
  await until(async () => (await json(p, fileUrl)).pending === 1000, 15_000, 'first seen');
  await devnetBump(p.devnetDir, first, { sats: 3000 });
  await until(async () => (await json(p, fileUrl)).pending === 3000, 15_000, 'replacement seen');
  await devnetMine(p.devnetDir, 1);
  const v = await until(async () => { const x = await json(p, fileUrl); return x.state === 'active' && x; }, 15_000, 'active');
  t.equal(v.credits, 3000, 'only the replacement counts');
});

t.test('a payment made while the Electrum server is down is credited after reconnecting', async (t) => {
  const p = await startPaidNode();
  t.teardown(() => p.stop());
  const up = await uploadJson(p, randomFile(tmpDir(), MiB, 'e.bin'));
  const fileUrl = `${p.url}/${up.id}`;
  const devnet = p.node.devnet!;
  await devnet.stopElectrum();
  await until(() => !p.node.watcher!.status().connected, 15_000, 'watcher notices');
  devnet.mine(1, up.address); // a miner pays the file's address while the server is down
  await devnet.startElectrum();
  const v = await until(async () => { const x = await json(p, fileUrl); return x.credits > 0 && x; }, 30_000, 'credited after reconnect');
  t.ok(v.credits >= 2977, `credited ${v.credits} sats`);
  t.equal(v.state, 'active');
});

t.test('100 concurrent downloads on a balance worth 10: at most 10 are served', async (t) => {
  const p = await startPaidNode({ storagePrice: 0 });
  t.teardown(() => p.stop());
  const up = await uploadJson(p, randomFile(tmpDir(), MiB, 'c.bin'));
  const fileUrl = `${p.url}/${up.id}`;
  await devnetPay(p.devnetDir, up.address, 10 * 2000);
  await devnetMine(p.devnetDir, 1);
  await until(async () => (await json(p, fileUrl)).state === 'active', 15_000, 'active');
  const codes = await Promise.all(Array.from({ length: 100 }, async () => (await curlStatus('-o', '/dev/null', fileUrl)).status));
  const served = codes.filter((c) => c === 200).length;
  t.equal(served, 10, 'exactly what the balance covers');
  t.equal(codes.filter((c) => c === 402).length, 90, 'the rest get 402');
  t.equal((await json(p, fileUrl)).balance, 0, 'never overdrawn');
});

t.test('bad payment configuration stops start-up with one clear line', async (t) => {
  const { BitdropNode } = await import('../lib/node');
  const { loadConfig } = await import('../lib/config');
  const mk = (flags: Record<string, unknown>) => new BitdropNode(loadConfig({ env: {}, flags: { dataDir: tmpDir(), listen: '127.0.0.1:0', console: '127.0.0.1:0', tor: 'off', storagePrice: 1, ...flags } }), { log: () => {} });
  await t.rejects(mk({ xpub: 'nonsense', electrum: ['tcp://127.0.0.1:1'] }).start(), /--xpub: /);
  const mainnetZpub = 'zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs';
  await t.rejects(mk({ xpub: mainnetZpub, electrum: ['tcp://127.0.0.1:1'], network: 'regtest' }).start(), /--xpub: .*mainnet/i);
  await t.rejects(mk({ xpub: mainnetZpub }).start(), /--xpub is set but --electrum is not/);
  t.throws(() => loadConfig({ env: {}, flags: { network: 'dogecoin' } }), /network: "dogecoin" is not one of/);
  fs.rmSync(tmpDir(), { recursive: true, force: true });
});

t.test('a watch budget of 50 with 5,000 files: payments to hot and cold addresses are both found', async (t) => {
  const p = await startPaidNode({ watchBudget: '50', maxUnpaidBytes: '1TiB' }, tmpDir(), { coldSweepPeriodMs: 4000, maxSweepRate: 5000 });
  t.teardown(() => p.stop());
  const ledger = p.node.ledger!;
  const accounts = [];
  for (let i = 0; i < 5000; i++) accounts.push(await ledger.reserve(1000));
  const cold = accounts[10];
  const hot = accounts[4990];
  const devnet = p.node.devnet!;
  await devnetPay(p.devnetDir, hot.address, 3000);
  await devnetPay(p.devnetDir, cold.address, 4000);
  await devnetMine(p.devnetDir, 1);
  const credit = async (id: string) => ledger.view((await ledger.account(id))!).credits;
  await until(async () => (await credit(hot.id)) === 3000, 15_000, 'hot payment');
  t.pass('the hot address was paid and seen');
  await until(async () => (await credit(cold.id)) === 4000, 30_000, 'cold payment found by the sweep');
  t.pass('the cold address was paid and found by the sweep');
  t.ok(devnet.electrum.peakSubscriptions <= 50, `the server never held more than 50 subscriptions (peak ${devnet.electrum.peakSubscriptions})`);
  t.ok(p.node.watcher!.status().subscriptions <= 50);
});

t.test('an interrupted download is charged only for the bytes sent', async (t) => {
  const p = await startPaidNode({ storagePrice: 0 });
  t.teardown(() => p.stop());
  const size = 48 * MiB;
  const up = await uploadJson(p, randomFile(tmpDir(), size, 'big.bin'));
  const fileUrl = `${p.url}/${up.id}`;
  const full = Math.ceil((size * 2_048_000) / 1024 ** 3); // 96,000 sats
  await devnetPay(p.devnetDir, up.address, 3 * full);
  await devnetMine(p.devnetDir, 1);
  await until(async () => (await json(p, fileUrl)).state === 'active', 15_000, 'active');
  const { spawn } = await import('child_process');
  const slow = spawn('curl', ['-sS', '--limit-rate', '1M', '-o', '/dev/null', fileUrl], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  slow.kill('SIGKILL');
  // The whole download is debited before its first byte; wait for the refund of what did not leave.
  await until(() => p.node.ledger!.stats().downloadsInFlight === 0, 10_000, 'settled');
  const charged = 3 * full - (await json(p, fileUrl)).balance;
  t.ok(charged > 0, `charged ${charged} sats for the part that left`);
  // "Left" is what the kernel took: on loopback the client's receive buffer alone may grow to 32 MiB.
  t.ok(charged < full, `less than a full download (${full} sats): the rest was refunded`);
});

t.test('reservation URLs use --public-url, like upload answers do', async (t) => {
  const p = await startPaidNode({ publicUrl: 'http://example.invalid' });
  t.teardown(() => p.stop());
  const q = JSON.parse(await curl('-f', '-X', 'POST', '-H', 'Accept: application/json', `${p.url}/reserve?size=10`));
  t.match(q.upload, /^http:\/\/example\.invalid\/\?reservation=[A-Za-z0-9_-]{22}$/);
  t.match(q.status, /^http:\/\/example\.invalid\/reserve\/[A-Za-z0-9_-]{22}$/);
  const up = await uploadJson(p, randomFile(tmpDir(), 10, 'u.bin'));
  t.match(up.url, /^http:\/\/example\.invalid\//);
});
