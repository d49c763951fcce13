// bench/payments: Electrum notification → balance visible over HTTP, p50/p99.
// A node with prices on its embedded devnet; each sample pays a fresh file's address (a real transaction
// broadcast over the Electrum protocol) and polls the file's JSON until the payment shows, then mines and
// polls until it is credited.
//
//   npm run build && node build/bench/payments.js [--samples 50]

import fs from 'fs';
import os from 'os';
import path from 'path';
import { BitdropNode } from '../lib/node';
import { loadConfig } from '../lib/config';
import { devnetPay, devnetMine } from '../lib/devnet/wallet';

const i = process.argv.indexOf('--samples');
const SAMPLES = i > 0 ? Number(process.argv[i + 1]) : 50;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-bench-pay-'));
  const node = new BitdropNode(loadConfig({ env: {}, flags: { dataDir, listen: '127.0.0.1:0', console: '127.0.0.1:0', tor: 'off', storagePrice: 1000, transferPrice: 1000 } }), { log: () => {} });
  await node.start();
  const devnetDir = path.join(dataDir, 'devnet');
  const seen: number[] = [];
  const credited: number[] = [];
  const view = async (id: string) => (await fetch(`${node.url}/${id}`, { headers: { Accept: 'application/json' } })).json() as Promise<{ pending: number; credits: number }>;
  for (let n = 0; n < SAMPLES; n++) {
    const res = await fetch(`${node.url}/f${n}.bin`, { method: 'PUT', body: Buffer.alloc(1000, n), headers: { Accept: 'application/json' } });
    const up = (await res.json()) as { id: string; address: string };
    await devnetPay(devnetDir, up.address, 5000);
    const t0 = performance.now();
    while ((await view(up.id)).pending !== 5000) await new Promise((r) => setImmediate(r));
    seen.push(performance.now() - t0);
    await devnetMine(devnetDir, 1);
    const t1 = performance.now();
    while ((await view(up.id)).credits !== 5000) await new Promise((r) => setImmediate(r));
    credited.push(performance.now() - t1);
  }
  console.log(`payments bench: ${SAMPLES} payments to hot addresses, devnet Electrum over loopback TCP`);
  console.log(`broadcast → pending visible over HTTP   p50 ${pct(seen, 50).toFixed(1)} ms   p99 ${pct(seen, 99).toFixed(1)} ms`);
  console.log(`block mined → credit visible over HTTP  p50 ${pct(credited, 50).toFixed(1)} ms   p99 ${pct(credited, 99).toFixed(1)} ms`);
  await node.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
