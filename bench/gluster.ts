// bench/gluster: bitdrop with --data-dir on a GlusterFS replica-3 volume (three bricks on this machine,
// FUSE-mounted), against the volume itself:
//   upload   curl -T into bitdrop   vs  dd bs=1M conv=fdatasync of the same bytes onto the same mount
//   download curl from bitdrop      vs  cat of the same bytes (bitdrop's chunk files, in order) from the mount
// dd and the upload alternate, as do cat and the download, so each pair sees the same machine. One run,
// printed ratios (goals: upload ≥ 0.5× dd, download ≥ 0.8× cat).
//
//   npm run build && node build/bench/gluster.js [--size-mib 256] [--runs 1]
// Needs root, glusterfs-server and curl (scripts/test-setup installs them); makes and removes its own volume.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { createVolume } from '../test/helpers/gluster';
import { DEFAULT_CHUNK_SIZE } from '../lib/store';

const CLI = path.resolve(__dirname, '..', 'bin', 'bitdrop.js');
const MiB = 1024 * 1024;
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SIZE = arg('size-mib', 256) * MiB;
const RUNS = arg('runs', 1);

const seconds = (fn: () => void) => {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
const mbps = (bytes: number, s: number) => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Drops the page cache (the FUSE client's too), so every read below goes through GlusterFS. */
const dropCaches = () => spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });

/** The store names a chunk by its SHA-256: the names of `file`'s chunks, in order. */
function chunkNames(file: string): string[] {
  const data = fs.readFileSync(file);
  const out: string[] = [];
  for (let off = 0; off < data.length; off += DEFAULT_CHUNK_SIZE) {
    out.push(crypto.createHash('sha256').update(data.subarray(off, off + DEFAULT_CHUNK_SIZE)).digest('hex'));
  }
  return out;
}

async function startDaemon(dataDir: string): Promise<{ proc: ChildProcess; url: string; out: () => string }> {
  const proc = spawn(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0',
    '--tor', 'off', '--free', '--max-upload-bytes', String(SIZE * 2)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /serving\s+(http:\/\/\S+?)\/?\s/.exec(out);
      if (m && /^ready\s/m.test(out)) resolve(m[1]);
    });
    proc.once('exit', (c) => reject(new Error(`daemon exited ${c}:\n${out}`)));
  });
  return { proc, url, out: () => out };
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-bench-gluster-'));
  const vol = await createVolume({ replica: 3, mounts: 1 });
  try {
    const mount = vol.mounts[0];
    const src = path.join(work, 'payload.bin');
    const fd = fs.openSync(src, 'w');
    const block = Buffer.alloc(4 * MiB);
    for (let off = 0; off < SIZE; off += block.length) fs.writeSync(fd, crypto.randomFillSync(block), 0, Math.min(block.length, SIZE - off));
    fs.closeSync(fd);
    console.log(`bitdrop on GlusterFS: ${SIZE / MiB} MiB, replica 3 (${vol.bricks.length} bricks on ${vol.host}, ${os.cpus().length} cores), ${RUNS} run(s)`);

    const dataDir = path.join(mount, 'bitdrop');
    const d = await startDaemon(dataDir);
    const volumeLine = /^volume\s+(.*)$/m.exec(d.out())?.[1];
    if (volumeLine) console.log(`daemon sees: ${volumeLine}`);
    const ups: Array<[number, number]> = [];
    const downs: Array<[number, number]> = [];
    for (let i = 0; i < RUNS; i++) {
      dropCaches();
      const ddOut = path.join(mount, `dd-${i}.out`);
      const dd = seconds(() => execFileSync('dd', [`if=${src}`, `of=${ddOut}`, 'bs=1M', 'conv=fdatasync'], { stdio: 'ignore' }));
      fs.rmSync(ddOut);
      dropCaches();
      let url = '';
      const up = seconds(() => {
        url = execFileSync('curl', ['-sSf', '-T', src, `${d.url}/`]).toString().split('\n')[0];
      });
      ups.push([dd, up]);
      // the same bytes on the mount: the uploaded file's chunk files, in order (named by their SHA-256)
      const id = new URL(url).pathname.split('/')[1];
      const chunks = chunkNames(src).map((h) => path.join(dataDir, 'chunks', h.slice(0, 2), h));
      for (const c of chunks) if (!fs.existsSync(c)) throw new Error(`chunk ${c} is not on the mount`);
      for (let k = 0; k < 2; k++) {
        dropCaches();
        const cat = seconds(() => execFileSync('sh', ['-c', `cat ${chunks.map((c) => `'${c}'`).join(' ')} > /dev/null`]));
        dropCaches();
        const down = seconds(() => execFileSync('curl', ['-sSf', '-o', '/dev/null', `${d.url}/${id}`]));
        downs.push([cat, down]);
      }
    }
    d.proc.kill('SIGTERM');
    await new Promise((r) => d.proc.once('exit', r));
    const upRatio = median(ups.map(([dd, up]) => dd / up));
    const downRatio = median(downs.map(([cat, down]) => cat / down));
    const med = (xs: number[]) => median(xs);
    console.log(`pairs: upload/dd ${ups.map(([dd, up]) => (dd / up).toFixed(2)).join(' ')}; download/cat ${downs.map(([cat, down]) => (cat / down).toFixed(2)).join(' ')}`);
    console.log(`dd conv=fdatasync onto the mount   ${mbps(SIZE, med(ups.map((p) => p[0])))}`);
    console.log(`bitdrop upload onto the volume     ${mbps(SIZE, med(ups.map((p) => p[1])))}   ${upRatio.toFixed(2)}× dd (median of pairs)     (goal ≥ 0.5×)`);
    console.log(`cat of the chunks from the mount   ${mbps(SIZE, med(downs.map((p) => p[0])))}`);
    console.log(`bitdrop download from the volume   ${mbps(SIZE, med(downs.map((p) => p[1])))}   ${downRatio.toFixed(2)}× cat (median of pairs)    (goal ≥ 0.8×)`);
  } finally {
    await vol.remove();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
