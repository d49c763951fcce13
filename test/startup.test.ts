// Start-up reads persisted counters instead of every manifest and account; the walks over the whole store
// (orphaned chunks, expiry) run after the listener is up. (Timings are in bench/startup.ts, not here.)

import t from 'tap';
import fs from 'fs';
import { curl, randomFile, tmpDir } from './helpers/daemon';
import { startPaidNode, until, MiB, DAY } from './helpers/paid-node';
import { devnetPay, devnetMine } from '../lib/devnet/wallet';
import { layout } from '../lib/store/layout';

const upload = async (url: string, file: string) => JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${url}/`));

t.test('counters by state follow uploads, payments and expiry, survive a restart, and are counted once when missing', async (t) => {
  const dataDir = tmpDir('bitdrop-test-', t);
  const work = tmpDir('bitdrop-test-', t);
  let p = await startPaidNode({}, dataDir);
  t.teardown(() => p.stop());
  const paid = await upload(p.url, randomFile(work, MiB, 'paid.bin'));
  const unpaid = await upload(p.url, randomFile(work, 1000, 'unpaid.bin'));
  const stats = () => p.node.ledger!.stats();
  t.match(stats().byState, { awaiting_payment: { files: 2, bytes: MiB + 1000 }, active: { files: 0 } }, 'two uploads await payment');
  t.equal(stats().unpaidBytes, MiB + 1000);

  await devnetPay(p.devnetDir, paid.address, 2977);
  await until(() => p.node.ledger!.stats().accounts === 2 && (p.node.store!.counters()['files.awaiting_payment'] ?? 0) === 2, 30_000, 'seen');
  await devnetMine(p.devnetDir, 1);
  await until(() => stats().byState.active.files === 1, 15_000, 'activation counted');
  t.match(stats().byState, { awaiting_payment: { files: 1, bytes: 1000 }, active: { files: 1, bytes: MiB } }, 'the paid file is counted active');
  t.equal(stats().unpaidBytes, 1000, 'unpaid bytes drop when a file activates');

  // A day and a bit later the unpaid upload's TTL is over: the sweep deletes it and its counts.
  p.clock.advance(DAY + 1000);
  t.same(await p.node.ledger!.sweep(), [unpaid.id], 'the expiry sweep deletes the unpaid upload');
  t.match(stats().byState, { awaiting_payment: { files: 0, bytes: 0 }, active: { files: 1 } });
  t.match(p.node.store!.stats(), { files: 1, bytes: MiB });
  const before = { ...p.node.store!.counters() };

  // Restart: the counters are read back, not recounted.
  await p.stop();
  p = await startPaidNode({}, dataDir);
  t.same(p.node.store!.counters(), before, 'the same counters after a restart');
  t.notOk(p.logs.some((l) => /counted .* accounts once/.test(l)), 'no recount');

  // A store from before the counters: the first start counts once.
  await p.stop();
  const { Level } = await import('level');
  const db = new Level<Buffer, Buffer>(`${dataDir}/db`, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.del(layout.counters());
  await db.close();
  p = await startPaidNode({}, dataDir);
  t.ok(p.logs.some((l) => /counted 1 accounts once/.test(l)), 'counted once');
  t.match(p.node.store!.counters(), { files: 1, bytes: MiB, accounts: 1, 'files.active': 1, 'bytes.active': MiB, unpaidBytes: 0 }, 'the same totals from the count');
});

t.test('an orphaned chunk is removed in the background after the listener is up', async (t) => {
  const dataDir = tmpDir('bitdrop-test-', t);
  let p = await startPaidNode({}, dataDir);
  await p.stop();
  const orphan = `${dataDir}/chunks/ab/${'ab'.repeat(32)}`;
  fs.mkdirSync(`${dataDir}/chunks/ab`, { recursive: true });
  fs.writeFileSync(orphan, 'left by an upload killed half-way');
  p = await startPaidNode({}, dataDir);
  t.teardown(() => p.stop());
  // the sweep logs once it has gone through every chunk dir, after the unlink: wait for both
  await until(() => !fs.existsSync(orphan) && p.logs.some((l) => /removed 1 orphaned chunk/.test(l)), 30_000, 'the orphan removed, and the sweep\'s line');
  t.notOk(fs.existsSync(orphan), 'the orphaned chunk is removed');
  t.ok(p.logs.some((l) => /removed 1 orphaned chunk/.test(l)), 'and the removal is logged');
});
