// Cost pricing and the books in a running daemon: the home page states the policy and shows the price
// history; the console's /books (HTML charts, JSON, CSV), /metrics and `bitdrop books --csv` agree with the
// ledger after a real payment on the embedded devnet.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { execFile } from 'child_process';
import { promisify } from 'util';
import { curl, curlStatus, randomFile, tmpDir } from './helpers/daemon';
import { startPaidNode, until, DAY } from './helpers/paid-node';
import { adminTokenPath } from '../lib/node';
import { devnetPay, devnetMine } from '../lib/devnet/wallet';
import { parseCosts, storageFloor } from '../lib/economy';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', 'build', 'bin', 'bitdrop.js');

t.test('cost pricing: home page, /books, /metrics and bitdrop books agree with the ledger', async (t) => {
  const dataDir = tmpDir('bitdrop-test-', t);
  const work = tmpDir('bitdrop-test-', t);
  const costsFile = path.join(work, 'costs.json');
  const costs = { monthlySats: 300000, disk: '1MiB', egressSatsPerGiB: 20, margin: 0.2 };
  fs.writeFileSync(costsFile, JSON.stringify(costs));
  const F = storageFloor(parseCosts(costs));
  const p = await startPaidNode({ pricing: 'cost', costs: costsFile }, dataDir);
  t.teardown(() => p.stop());
  const token = fs.readFileSync(adminTokenPath(dataDir), 'utf8').trim();
  const admin = ['-f', '-H', `X-Admin-Token: ${token}`];

  const home = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${p.url}/`));
  t.match(home, { pricing: 'cost', storagePrice: F, transferPrice: 24 }, 'the first day: the floor, egress plus margin');
  t.match(home.pricingPolicy, /never below .* sats per GiB per day/, 'the home page says how prices are set');
  t.match(home.pricingPolicy, /never shortens the time a file is already paid for/);
  const page = await curl('-f', '-H', 'Accept: text/html', `${p.url}/`);
  t.match(page, /How prices are set/);

  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 200_000, 'a.bin'), `${p.url}/`));
  t.ok(up.amountDue > 0);
  await devnetPay(p.devnetDir, up.address, up.amountDue + 5000);
  await devnetMine(p.devnetDir, 1);
  const credited = await until(async () => {
    const v = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${p.url}/${up.id}`));
    return v.credits > 0 && v.credits;
  }, 30_000, 'the payment credited');
  await p.node.economy!.tick();

  const books = JSON.parse(await curl(...admin, '-H', 'Accept: application/json', `${p.node.consoleUrl}/books`));
  t.equal(books.summary.revenue, credited, 'the books hold the credit');
  t.equal(books.rows.reduce((n: number, r: { revenue: number }) => n + r.revenue, 0), p.node.ledger!.stats().creditsEarned, 'and sum to what the ledger credited');
  t.ok(books.summary.costs > 0, 'the day\'s share of the monthly bill is a cost');
  t.match(await curl(...admin, '-H', 'Accept: text/html', `${p.node.consoleUrl}/books`), /<svg[^>]*role="img"/, 'server-made charts on the console');
  t.match(await curl(...admin, '-H', 'Accept: text/html', `${p.node.consoleUrl}/`), /<a href="\/books">The books<\/a>/, 'the console links to them');
  const csv = await curl(...admin, `${p.node.consoleUrl}/books.csv`);
  t.match(csv, /^date,revenue_btc,revenue_nmc,revenue,fixed,egress,spent,costs,profit,stored_bytes,utilization,bytes_sent,storage_price,transfer_price\n2026-01-01,/);
  const cli = await run(process.execPath, [BIN, 'books', '--csv', '--data-dir', dataDir]);
  t.equal(cli.stdout, csv, '`bitdrop books --csv` prints the same CSV');

  await (p.node as unknown as { refreshEconomyCache(): Promise<void> }).refreshEconomyCache();
  const metrics = await curl(...admin, `${p.node.consoleUrl}/metrics`);
  t.match(metrics, new RegExp(`^bitdrop_books_revenue_sats ${credited}$`, 'm'), '/metrics: revenue');
  t.match(metrics, new RegExp(`^bitdrop_storage_price_sats ${F}$`, 'm'), '/metrics: the price in force');

  // the disk of the cost file is the limit: an upload past it is refused, with one line
  const full = await curlStatus('-H', 'Accept: text/plain', '-T', randomFile(work, 900_000, 'big.bin'), `${p.url}/`);
  t.equal(full.status, 507, 'past the disk the operator gives it: 507');
  t.match(full.body, /this drop box is full/);

  // the next day: a new price point, a bounded step from the first
  p.clock.advance(DAY);
  await p.node.economy!.tick();
  const h = p.node.economy!.priceHistory();
  t.equal(h.length, 2, 'one price a day');
  t.ok(h[1].storagePrice > F && h[1].storagePrice <= F + Math.ceil(F * 0.1), 'the price climbs from the floor toward recovery, one step');
  const home2 = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${p.url}/`));
  t.equal(home2.storagePrice, h[1].storagePrice, 'quotes use the new price');
  t.equal(home2.priceHistory.length, 2, 'the home page carries the price history');
});

t.test('--pricing cost without --costs: one readable line', async (t) => {
  const r = await run(process.execPath, [BIN, 'start', '--pricing', 'cost', '--tor', 'off', '--data-dir', tmpDir('bitdrop-test-', t)]).catch((e) => e);
  t.equal(r.code, 2);
  t.match(r.stderr, /^bitdrop: --pricing cost needs --costs FILE/);
});
