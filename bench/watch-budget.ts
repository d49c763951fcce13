// How far does a watch budget stretch? 1,000,000 files, 500 Electrum subscriptions.
//
//   node build/bench/watch-budget.js [--files 1000000] [--budget 500] [--period 100s] [--hot 2000]
//
// Runs the real Watcher against the in-process test Electrum server (real TCP, real JSON-RPC) with a
// compressed sweep period, and prints: subscriptions held (by the server's count), time to see a payment to a
// hot and to a cold address, and the request rate the sweep needs — for the bench period and for the 24 h default.
// Most files get random scripthashes (deriving 1M keys is measured separately on a sample); the paid ones are
// real derived addresses mixed into the same ordered list.

import { HeaderChain } from '../lib/chain';
import crypto from 'crypto';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import { Watcher } from '../lib/payments/watcher';
import { parseXpub, deriveFileAddress } from '../lib/payments/xpub';
import { NETWORKS } from '../lib/payments/networks';
import { parseDuration } from '../lib/config';
import { TestElectrum, until } from '../test/helpers/payments-electrum';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const files = Number(arg('files', '1000000'));
  const budget = Number(arg('budget', '500'));
  const periodMs = parseDuration(arg('period', '100s'));
  const handedOut = Number(arg('hot', '2000'));
  const day = 86_400_000;

  const key = parseXpub(
    BIP32Factory(ecc).fromSeed(crypto.randomBytes(32), { wif: 0xef, bip32: { public: 0x045f1cf6, private: 0x045f18bc } }).derivePath("m/84'/1'/0'").neutered().toBase58(),
    'regtest',
  );
  let t0 = performance.now();
  const real = Array.from({ length: handedOut + 1 }, (_, i) => deriveFileAddress(key, i));
  const deriveUs = ((performance.now() - t0) * 1000) / real.length;

  t0 = performance.now();
  const random = crypto.randomBytes(32 * (files - real.length));
  const all: string[] = real.map((f) => f.scriptHash);
  for (let i = 0; i < files - real.length; i++) all.push(random.toString('hex', i * 32, i * 32 + 32));
  all.sort();
  const buildMs = performance.now() - t0;
  const coldSource = async (after: string | undefined, limit: number) => {
    let lo = 0;
    let hi = all.length;
    while (after !== undefined && lo < hi) {
      const mid = (lo + hi) >> 1;
      if (all[mid] <= after) lo = mid + 1;
      else hi = mid;
    }
    return all.slice(lo, lo + limit);
  };

  const server = await TestElectrum.start();
  const neededRate = files / (0.8 * (periodMs / 1000));
  const watcher = new Watcher({
    servers: [server.url],
    chain: HeaderChain.open({ network: 'regtest' }),
    budget,
    sweepPeriodMs: periodMs,
    clearnet: false,
    coldSource,
    maxSweepRate: Math.ceil(neededRate * 1.1),
    sweepConcurrency: 64,
    sweepPageSize: 5000,
  });
  const seen = new Map<string, number>();
  watcher.on('payments', (sh: string) => seen.has(sh) || seen.set(sh, performance.now()));
  await watcher.start();
  const started = performance.now();
  for (const f of real.slice(0, handedOut)) watcher.watchHot(f.scriptHash);
  await until(() => watcher.status().subscriptions === Math.min(budget, handedOut), 60_000, 'hot set');

  const hot = real[handedOut - 1];
  const cold = real[handedOut]; // never handed out through watchHot: only the sweep can find it
  const paidAt = performance.now();
  server.pay(hot.address, 10_000, NETWORKS.regtest);
  server.pay(cold.address, 10_000, NETWORKS.regtest);
  await until(() => seen.has(hot.scriptHash) && seen.has(cold.scriptHash), periodMs + 30_000, 'both payments');
  const status = watcher.status();
  const elapsed = (performance.now() - started) / 1000;
  const histories = server.counts['blockchain.scripthash.get_history'] ?? 0;
  await watcher.stop();
  await server.close();

  const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1 });
  console.log(`files ${fmt(files)}, budget ${budget}, addresses handed out ${fmt(handedOut)}, sweep period ${fmt(periodMs / 1000)} s`);
  console.log(`subscriptions held: ${status.subscriptions} now, ${server.maxLiveSubs} at most (server's count)`);
  console.log(`payment to a hot address seen after   ${fmt(seen.get(hot.scriptHash)! - paidAt)} ms`);
  console.log(`payment to a cold address seen after  ${fmt(seen.get(cold.scriptHash)! - paidAt)} ms (bound: 80% of the period = ${fmt(0.8 * periodMs)} ms)`);
  console.log(`sweep: ${fmt(histories)} get_history in ${fmt(elapsed)} s = ${fmt(histories / elapsed)} req/s achieved; pass ${status.sweep.pass}, ${fmt(status.sweep.checkedThisPass)} checked this pass`);
  console.log(`request rate needed: ${fmt(neededRate)} req/s for this period; ${fmt(files / (0.8 * day / 1000))} req/s for the 24 h default`);
  console.log(`setup: derive ${fmt(deriveUs)} µs/address (1M files ≈ ${fmt((deriveUs * 1e6) / 1e6)} s once), build+sort list ${fmt(buildMs)} ms`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
