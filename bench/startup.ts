// Start-up time and idle memory against the number of files stored.
//
//   node build/bench/startup.js [--sizes 10000,100000,1000000] [--dir DIR] [--idle 10s]
//
// Builds a store directly in LevelDB (not through HTTP): per file a manifest, refcounts, a payment account,
// its scripthash and expiry entries, as the daemon writes them; 70% of the files active (paid), 20% awaiting
// payment, 10% partially paid; payloads come from a pool of 1024 one-KiB chunk files (so a million files
// fit on a small disk). The store grows from one size to the next. For each size the real daemon
// (build/bin/bitdrop.js, paid mode on its embedded devnet, tor off) is started twice:
//   - the first start after the records were added finds no k[counters] (as an older store) and counts
//     once: the one-time upgrade cost;
//   - the second start is the one an operator sees every day.
// Each prints the time from spawn to the first byte of a stored file's download, RSS at that moment, and
// RSS after --idle seconds (the background orphan and expiry sweeps have run by then), with ratios against
// the empty store: the named peer is bitdrop itself with nothing stored. Addresses and scripthashes are
// random (deriving a million keys costs minutes and does not change what start-up reads).

import { spawn } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import net from 'net';
import os from 'os';
import path from 'path';
import { Level } from 'level';
import { layout, SCHEMA_VERSION } from '../lib/store/layout';
import { parseDuration } from '../lib/config';
import type { FileManifest } from '../lib/store';
import type { Account } from '../lib/ledger/account';

const CLI = path.resolve(__dirname, '..', 'bin', 'bitdrop.js');
const POOL = 1024;
const SIZE = 1024;
const DAY = 86_400_000;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const id = (i: number) => crypto.createHash('sha256').update(`file ${i}`).digest().subarray(0, 16).toString('base64url');

/** Adds files [from, to) to the store at `dir`; returns the id of one active file to download. */
async function grow(dir: string, from: number, to: number, pool: string[]): Promise<void> {
  const db = new Level<Buffer, Buffer>(path.join(dir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  if (from === 0) {
    await db.put(layout.version(), json({ version: SCHEMA_VERSION }));
    await db.put(layout.singleton('tip'), json({ height: 120 }));
  }
  const now = Date.now();
  let ops: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];
  for (let i = from; i < to; i++) {
    const fid = id(i);
    const chunk = pool[i % POOL];
    const m: FileManifest = {
      id: fid, name: `file-${i}.bin`, type: 'application/octet-stream', size: SIZE, sha256: chunk, chunkSize: 4 * 1024 * 1024,
      chunks: [chunk], created: now - DAY, deleteTokenHash: crypto.randomBytes(32).toString('hex'),
    };
    const scriptHash = crypto.randomBytes(32).toString('hex');
    const kind = i % 10 < 7 ? 'active' : i % 10 < 9 ? 'awaiting' : 'partial';
    const a: Account = {
      id: fid, size: SIZE, index: i, address: `bcrt1q${crypto.randomBytes(19).toString('hex')}`, scriptHash, created: now - DAY / 2,
      payments: kind === 'awaiting' ? [] : [{ txid: crypto.randomBytes(32).toString('hex'), height: 110, sats: kind === 'active' ? 100_000_000 : 10 }],
      sentBytes: 0,
    };
    if (kind === 'active') a.activatedAt = now - DAY / 2;
    // Files are looked at again in the future: an unpaid one at the end of its TTL, a paid one years on.
    a.reviewAt = kind === 'active' ? now + 3650 * DAY : a.created + 30 * DAY;
    ops.push(
      { type: 'put', key: layout.file(fid), value: json(m) },
      { type: 'put', key: layout.account(fid), value: json(a) },
      { type: 'put', key: layout.scriptHash(Buffer.from(scriptHash, 'hex')), value: Buffer.from(fid, 'ascii') },
      { type: 'put', key: layout.expiry(a.reviewAt, fid), value: Buffer.alloc(0) },
    );
    if (ops.length >= 40_000) { await db.batch(ops); ops = []; }
  }
  const total = Buffer.alloc(4);
  total.writeUInt32BE(to);
  ops.push({ type: 'put', key: layout.nextIndex(), value: total });
  for (let k = 0; k < POOL; k++) {
    const refs = Math.floor(to / POOL) + (k < to % POOL ? 1 : 0);
    const v = Buffer.alloc(8);
    v.writeUInt32BE(refs, 0);
    v.writeUInt32BE(SIZE, 4);
    if (refs > 0) ops.push({ type: 'put', key: layout.chunkRef(Buffer.from(pool[k], 'hex')), value: v });
  }
  await db.batch(ops);
  // As an older store: no counters. The first start counts once.
  await db.del(layout.counters());
  await db.close();
}

function makePool(dir: string): string[] {
  const pool: string[] = [];
  for (let k = 0; k < POOL; k++) {
    const data = crypto.randomBytes(SIZE);
    const hex = crypto.createHash('sha256').update(data).digest('hex');
    fs.mkdirSync(path.join(dir, 'chunks', hex.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'chunks', hex.slice(0, 2), hex), data);
    pool.push(hex);
  }
  return pool;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** RSS, and of it the anonymous part (heap, stacks): LevelDB's mmapped table files count as file pages. */
const rssMiB = (pid: number) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  lastAnon = kb('RssAnon');
  return kb('VmRSS');
};
let lastAnon = NaN;

/**
 * One GET; resolves with the status once the first byte of the body arrives. Only bitdrop's answers count
 * (its Content-Security-Policy): on a shared machine another process may hold the port for a while.
 */
function firstByte(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      if (!/sandbox|default-src 'none'/.test(String(res.headers['content-security-policy'] ?? ''))) {
        res.destroy();
        reject(new Error('not bitdrop'));
        return;
      }
      res.once('data', () => { resolve(res.statusCode ?? 0); res.destroy(); });
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

interface Run { ttfbMs: number; rssFirst: number; rssIdle: number; anonIdle: number; status: number; log: string }

async function startOnce(dir: string, fileId: string, idleMs: number): Promise<Run> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = spawn(process.execPath, [CLI, 'start', '--data-dir', dir, '--listen', `127.0.0.1:${port}`, '--tor', 'off',
    '--storage-price', '1000000', '--transfer-price', '2048000', '--max-unpaid-bytes', '1TiB'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  try {
    let status = 0;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`daemon exited:\n${log}`);
      try {
        status = await firstByte(`http://127.0.0.1:${port}/${fileId}`);
        break;
      } catch {
        if (performance.now() - t0 > 1_200_000) throw new Error(`no answer in 20 min:\n${log}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const ttfbMs = performance.now() - t0;
    const rssFirst = rssMiB(proc.pid!);
    await new Promise((r) => setTimeout(r, idleMs));
    const rssIdle = rssMiB(proc.pid!);
    return { ttfbMs, rssFirst, rssIdle, anonIdle: lastAnon, status, log };
  } finally {
    proc.kill('SIGTERM');
    await exited;
  }
}

async function main() {
  const sizes = arg('sizes', '10000,100000,1000000').split(',').map(Number);
  const idleMs = parseDuration(arg('idle', '10s'));
  const dir = fs.mkdtempSync(path.join(arg('dir', os.tmpdir()), 'bitdrop-bench-startup-'));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    const fileId = id(0); // file 0 is active and paid: its download is served
    console.log(`start-up bench: ${os.cpus().length} cores, node ${process.version}; store in ${dir}`);
    console.log('files      build     first start (counts once)   start: first byte   RSS first byte   RSS idle');
    // The empty store: the peer every figure is compared with (its second start: the first makes the devnet).
    await startOnce(dir, fileId, 500);
    const empty = await startOnce(dir, fileId, idleMs);
    console.log(`${'0'.padEnd(10)} ${'-'.padEnd(9)} ${'-'.padEnd(27)} ${fmtMs(empty.ttfbMs).padEnd(19)} ${fmtMiB(empty.rssFirst).padEnd(16)} ${fmtMiB(empty.rssIdle)}`);
    fs.rmSync(path.join(dir, 'db'), { recursive: true, force: true });
    // After the empty run: its orphan sweep would rightly remove chunk files nothing references yet.
    const pool = makePool(dir);
    let have = 0;
    for (const n of sizes) {
      const b0 = performance.now();
      await grow(dir, have, n, pool);
      have = n;
      const buildMs = performance.now() - b0;
      const first = await startOnce(dir, fileId, 1000);
      if (!/counted \d+ accounts once/.test(first.log)) throw new Error(`the first start did not count:\n${first.log}`);
      const run = await startOnce(dir, fileId, idleMs);
      if (run.status !== 200) throw new Error(`the download answered ${run.status}:\n${run.log}`);
      console.log(
        `${String(n).padEnd(10)} ${fmtMs(buildMs).padEnd(9)} ${fmtMs(first.ttfbMs).padEnd(27)} ` +
        `${(fmtMs(run.ttfbMs) + ` (${(run.ttfbMs / empty.ttfbMs).toFixed(2)}×)`).padEnd(19)} ` +
        `${(fmtMiB(run.rssFirst) + ` (${(run.rssFirst / empty.rssFirst).toFixed(2)}×)`).padEnd(16)} ` +
        `${fmtMiB(run.rssIdle)} (${(run.rssIdle / empty.rssIdle).toFixed(2)}×; anonymous ${fmtMiB(run.anonIdle)}, empty store ${fmtMiB(empty.anonIdle)})`,
      );
    }
    console.log('ratios: against the empty store (same machine, same run). Goal: ≤ 3 s to the first byte at 1,000,000 files.');
  } finally {
    cleanup();
  }
}

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const fmtMiB = (m: number) => `${m.toFixed(0)} MiB`;

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
