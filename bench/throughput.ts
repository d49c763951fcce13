// bench/throughput: 1 GiB upload vs `dd conv=fdatasync`, 1 GiB download vs nginx serving the same bytes,
// and the daemon's peak RSS — for both chunk backends (file = value separation, level = payloads in
// LevelDB), plus raw LevelDB write speed at the default and a 64 MiB write buffer. One run, printed ratios.
//
//   npm run build && node build/bench/throughput.js [--size-mib 1024] [--runs 3] [--backend file|level|both]
// Needs curl and Debian's nginx (nginx-light); as root it installs nginx-light when missing.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Level } from 'level';

const CLI = path.resolve(__dirname, '..', 'bin', 'bitdrop.js');
const MiB = 1024 * 1024;
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SIZE = arg('size-mib', 1024) * MiB;
const RUNS = arg('runs', 3);
const backendArg = process.argv.indexOf('--backend');
const BACKENDS = backendArg > 0 && process.argv[backendArg + 1] !== 'both' ? [process.argv[backendArg + 1]] : ['file', 'level'];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-bench-'));

const seconds = (fn: () => void) => {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mbps = (bytes: number, s: number) => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;

function ensureNginx(): string {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (fs.existsSync(p)) return p;
  if (process.getuid?.() === 0) {
    execFileSync('apt-get', ['update', '-qq']);
    execFileSync('apt-get', ['install', '-y', '-qq', 'nginx-light'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return '/usr/sbin/nginx';
  }
  throw new Error('bench/throughput needs nginx: apt-get install -y nginx-light (as root)');
}

function makeFile(file: string, size: number) {
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(4 * MiB);
  for (let off = 0; off < size; off += block.length) {
    crypto.randomFillSync(block);
    fs.writeSync(fd, block, 0, Math.min(block.length, size - off));
  }
  fs.closeSync(fd);
}

async function startDaemon(dataDir: string, backend: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--tor', 'off', '--console', '127.0.0.1:0', '--free', '--max-upload-bytes', String(SIZE * 2)], {
    env: { ...process.env, BITDROP_BLOB_BACKEND: backend },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /serving\s+(http:\/\/\S+?)\/?\s/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (c) => reject(new Error(`daemon exited ${c}`)));
  });
  return { proc, url };
}

const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const dropCaches = () => spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });

async function levelRaw(writeBufferSize?: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(work, 'level-'));
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', ...(writeBufferSize ? { writeBufferSize } : {}) });
  await db.open();
  const value = crypto.randomBytes(256 * 1024);
  const n = Math.min(SIZE, 512 * MiB) / value.length;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const key = Buffer.alloc(8);
    key.writeUInt32BE(i);
    value.writeUInt32BE(i, 0);
    await db.put(key, value);
  }
  await db.put(Buffer.from('sync'), Buffer.alloc(0), { sync: true });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return (n * value.length) / 1e6 / s;
}

async function main() {
  const nginx = ensureNginx();
  const src = path.join(work, 'payload.bin');
  console.log(`bitdrop throughput bench: ${SIZE / MiB} MiB, best of ${RUNS}, ${os.cpus().length} cores, in ${work}`);
  makeFile(src, SIZE);

  // Peer 1: dd writing the same bytes to the same disk, synced at the end. This VM's disk speed drifts by
  // 3× over minutes, so dd runs right before each bitdrop upload and the ratios pair them.
  const ddTimes: number[] = [];
  const ddRun = () => {
    // Freed pages are slow to reuse on this VM after a few seconds (the hypervisor takes them back), and
    // dd writes through the page cache: give it pages just freed, as it would have on a busy host.
    const warm = path.join(work, 'warm.bin');
    fs.copyFileSync(src, warm);
    fs.rmSync(warm);
    const out = path.join(work, 'dd.out');
    const s = seconds(() => execFileSync('dd', [`if=${src}`, `of=${out}`, 'bs=1M', 'conv=fdatasync'], { stdio: 'ignore' }));
    fs.rmSync(out);
    ddTimes.push(s);
    return s;
  };

  // Peer 2: nginx serving the same file from loopback (sendfile on). The served file is a hard link to the
  // uploaded one: the same bytes in the same page-cache pages. (A copy made the working set — source, copy
  // and bitdrop's chunks — larger than the page cache this VM's memory cgroup keeps, about 2.7 GB, so one
  // side was read from disk and the other from memory.)
  const www = path.join(work, 'www');
  fs.mkdirSync(www);
  fs.linkSync(src, path.join(www, 'payload.bin'));
  // nginx's workers run unprivileged: let them read the served bytes.
  fs.chmodSync(work, 0o755);
  fs.chmodSync(www, 0o755);
  fs.chmodSync(src, 0o644);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = path.join(work, 'nginx.conf');
  fs.writeFileSync(conf, `daemon off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/nginx.err;
events { worker_connections 64; }
http { access_log off; sendfile on; tcp_nopush on; server { listen 127.0.0.1:${port}; root ${www}; } }\n`);
  const ng = spawn(nginx, ['-c', conf, '-p', work], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const curlGet = (url: string) => seconds(() => execFileSync('curl', ['-sSf', '-o', '/dev/null', url]));
  curlGet(`http://127.0.0.1:${port}/payload.bin`);
  // nginx keeps running: its downloads alternate with bitdrop's below, so both see the same machine state.
  const ngTimes: number[] = [];
  const nginxGet = () => {
    const s = curlGet(`http://127.0.0.1:${port}/payload.bin`);
    ngTimes.push(s);
    return s;
  };

  const rows: string[] = [];
  let lastDd = 0;
  for (const backend of BACKENDS) {
    const upTimes: number[] = [];
    const downTimes: number[] = [];
    const upRatios: number[] = [];
    const downRatios: number[] = [];
    let rss = 0;
    for (let i = 0; i < RUNS; i++) {
      const dataDir = path.join(work, `data-${backend}-${i}`);
      const d = await startDaemon(dataDir, backend);
      let url = '';
      const ddTime = ddRun();
      const up = seconds(() => {
        url = execFileSync('curl', ['-sSf', '-T', src, `${d.url}/`]).toString().split('\n')[0];
      });
      upTimes.push(up);
      upRatios.push(ddTime / up);
      curlGet(url);
      for (let k = 0; k < 2; k++) {
        const ng = nginxGet();
        const down = curlGet(url);
        downTimes.push(down);
        downRatios.push(ng / down);
      }
      rss = Math.max(rss, peakRssMiB(d.proc.pid!));
      d.proc.kill('SIGTERM');
      await new Promise((r) => d.proc.once('exit', r));
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    const up = best(upTimes);
    const down = best(downTimes);
    const ngBest = best(ngTimes.splice(0));
    const dd = best(ddTimes.splice(0));
    const upMed = median(upRatios);
    const downMed = median(downRatios);
    console.log(`dd conv=fdatasync (before each bitdrop[${backend}] upload)  ${mbps(SIZE, dd)}`);
    console.log(`nginx download (alternating with bitdrop[${backend}])  ${mbps(SIZE, ngBest)}`);
    console.log(`bitdrop[${backend}] upload      ${mbps(SIZE, up)}   best ${(dd / up).toFixed(2)}× dd, median of pairs ${upMed.toFixed(2)}×      (goal ≥ 0.9×, issue 15)`);
    console.log(`bitdrop[${backend}] download    ${mbps(SIZE, down)}   best ${(ngBest / down).toFixed(2)}× nginx, median of pairs ${downMed.toFixed(2)}×   (goal ≥ 0.9×)`);
    console.log(`bitdrop[${backend}] peak RSS    ${rss.toFixed(0)} MiB          (goal ≤ 200 MiB)`);
    rows.push(`| ${backend} | ${(dd / up).toFixed(2)}× (pairs ${upMed.toFixed(2)}×) | ${(ngBest / down).toFixed(2)}× (pairs ${downMed.toFixed(2)}×) | ${rss.toFixed(0)} MiB |`);
    lastDd = dd;
  }
  ng.kill();
  const def = await levelRaw();
  const tuned = await levelRaw(64 * MiB);
  console.log(`LevelDB 256 KiB puts       default ${def.toFixed(0)} MB/s, 64 MiB write buffer ${tuned.toFixed(0)} MB/s (${(tuned / def).toFixed(1)}×) = ${(tuned / (SIZE / 1e6 / lastDd)).toFixed(2)}× dd`);
  console.log('\n| backend | upload vs dd | download vs nginx | peak RSS |\n|---|---|---|---|\n' + rows.join('\n'));
  dropCaches();
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
