// bench/many-clients: bitdrop under many clients at once, against nginx and onionshare-cli in one run.
//
//   npm run build && node build/bench/many-clients.js [--rounds 3] [--clients 64] [--wide 256] [--size-mib 64]
//                                                     [--small-clients 32] [--small-seconds 5] [--only downloads|uploads]
//                                                     [--without-cache]
//
// Downloads: N parallel `curl` processes fetch the same file from each server; rounds alternate the servers
// (the order rotates each round) so every peer sees the same machine state. Printed per round: aggregate
// MiB/s, the server's CPU time per GiB sent (utime+stime of its processes, threads included: less noisy
// than wall time on a shared machine) and bitdrop's ratio to each peer in that round; then the medians.
// A wide round (256 clients) counts failures. `--without-cache` adds a bitdrop started with
// BITDROP_CHUNK_CACHE_MIB=0 (every download reads its own slices, as before the shared chunk cache). Small uploads: `wrk`, 32 keep-alive connections, each PUT
// a ~30-byte body, against nginx's WebDAV PUT and bitdrop (free, and paid mode with its embedded devnet).
// Paid mode twice: "paid" with an address pool large enough for every paid upload of the run
// (--address-pool, filled before anything is measured and again before each measurement, so its worker
// never runs during another server's turn: the burst rate), and "paid, no pool" (--address-pool 0: each
// address derived at its upload, as when a pool has run dry: the sustained rate).
//
// Peers: Debian's nginx (sendfile on, worker_processes auto, the same bytes through a hard link) and
// onionshare-cli 2.6 `--local-only --public --no-autostop-sharing` (its Flask/Werkzeug server). As root the
// bench installs nginx-light and wrk when missing; onionshare-cli must be installed (apt-get install
// onionshare-cli). nginx's PUT does not fsync: it is the ceiling of "store a small file over HTTP" here,
// bitdrop's every 201 is on disk.

import { execFileSync, spawn, type ChildProcess } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';

const CLI = path.resolve(__dirname, '..', 'bin', 'bitdrop.js');
const MiB = 1024 * 1024;
const argv = process.argv;
const arg = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  return i > 0 ? Number(argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 3);
const CLIENTS = arg('clients', 64);
const WIDE = arg('wide', 256);
const SIZE = arg('size-mib', 64) * MiB;
const SMALL_CLIENTS = arg('small-clients', 32);
const SMALL_SECONDS = arg('small-seconds', 5);
const onlyAt = argv.indexOf('--only');
const ONLY = onlyAt > 0 ? argv[onlyAt + 1] : undefined;
const WITHOUT_CACHE = argv.includes('--without-cache');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-many-'));
const children: ChildProcess[] = [];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s
/** CPU seconds (user + system, all threads) of a process and its descendants still alive */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return ticks / TICK;
}
/**
 * Nanoseconds a process's main thread (bitdrop's event loop, without its worker threads) spent on a CPU
 * and runnable but waiting for one (/proc/<pid>/task/<pid>/schedstat): the second says whether the loop
 * was held up by the cores being busy with other threads (its GC helpers, LevelDB's, the address pool's,
 * the clients) rather than by itself.
 */
function loopSched(pid: number): { run: number; wait: number } {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { run, wait };
  } catch { return { run: 0, wait: 0 }; }
}
/** idle and total jiffies of the whole machine (/proc/stat's cpu line; idle includes iowait) */
function machineTicks(): { idle: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3] + f[4], total: f.reduce((a, b) => a + b, 0) };
}
const childPids = (pid: number): number[] => {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
};
const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const p = path.join(dir, cmd);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}
function ensure(cmd: string, pkg: string): string {
  const found = which(cmd);
  if (found) return found;
  if (process.getuid?.() === 0) {
    execFileSync('apt-get', ['update', '-qq']);
    execFileSync('apt-get', ['install', '-y', '-qq', pkg], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return which(cmd)!;
  }
  throw new Error(`bench/many-clients needs ${cmd}: sudo apt-get install -y ${pkg}`);
}

function freePort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}
async function waitFor(pattern: RegExp, out: () => string, proc: ChildProcess, what: string, ms = 60_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(out());
    if (m) return m;
    if (proc.exitCode !== null) throw new Error(`${what} exited ${proc.exitCode}:\n${out()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start:\n${out()}`);
    await sleep(100);
  }
}
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { proc: ChildProcess; out: () => string } {
  // Each server in a process group of its own: nginx's workers outlive a master killed at the wrong moment
  // (one orphaned worker kept serving, and burning CPU, through a later run), so groups are killed whole.
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(proc);
  let text = '';
  proc.stdout!.on('data', (d) => { text += d; });
  proc.stderr!.on('data', (d) => { text += d; });
  return { proc, out: () => text };
}

interface Server {
  name: string;
  url: string;
  /** processes whose CPU time is the server's */
  pids: () => number[];
}

async function startNginx(www: string, dav: string): Promise<Server> {
  const nginx = ensure('nginx', 'nginx-light');
  const port = freePort();
  const conf = path.join(work, 'nginx.conf');
  fs.writeFileSync(conf, `daemon off; worker_processes auto; pid ${work}/nginx.pid; error_log ${work}/nginx.err;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  client_body_temp_path ${dav}/.tmp;
  server {
    listen 127.0.0.1:${port} backlog=1024; root ${www};
    location /dav/ { root ${dav}/..; dav_methods PUT; create_full_put_path on; client_max_body_size 1m; }
  }
}\n`);
  const { proc } = run(nginx, ['-c', conf, '-p', work]);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try { execFileSync('curl', ['-sf', '-o', '/dev/null', `${url}/payload.bin`, '-r', '0-0']); break; } catch { await sleep(100); }
  }
  return { name: 'nginx', url: `${url}/payload.bin`, pids: () => [proc.pid!, ...childPids(proc.pid!)] };
}

async function startOnionshare(file: string): Promise<Server> {
  const bin = which('onionshare-cli');
  if (!bin) throw new Error('bench/many-clients needs onionshare-cli: sudo apt-get install -y onionshare-cli');
  const home = path.join(work, 'onionshare-home');
  fs.mkdirSync(home);
  const { proc, out } = run(bin, ['--local-only', '--public', '--no-autostop-sharing', file], { ...process.env, HOME: home });
  const m = await waitFor(/Running on (http:\/\/127\.0\.0\.1:\d+)/, out, proc, 'onionshare-cli');
  return { name: 'onionshare', url: `${m[1]}/download`, pids: () => [proc.pid!] };
}

async function startBitdrop(name: string, dataDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Server & { pid: number; base: string; metrics: () => Promise<string>; stop: () => Promise<void> }> {
  const { proc, out } = run(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--tor', 'off', ...extra], { ...process.env, ...env });
  const m = await waitFor(/serving\s+(http:\/\/\S+?)\/?\s/, out, proc, 'bitdrop');
  await waitFor(/^ready\s/m, out, proc, 'bitdrop');
  const consoleUrl = /console\s+(http:\/\/\S+?)\/?\s/.exec(out())![1];
  const token = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    name, url: '', base: m[1], pid: proc.pid!, pids: () => [proc.pid!],
    metrics: async () => (await fetch(`${consoleUrl}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text(),
    stop: async () => { proc.kill('SIGTERM'); if (proc.exitCode === null) await new Promise((r) => proc.once('exit', r)); },
  };
}

/** Waits until a paid bitdrop's address pool holds `size` addresses (its worker is gone then); returns the seconds waited. */
async function poolFull(b: { metrics: () => Promise<string> }, size: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    // a keep-alive socket the console closed while wrk ran fails once: ask again
    const text = await b.metrics().catch(() => b.metrics());
    const n = Number(/^bitdrop_address_pool (\d+)$/m.exec(text)?.[1] ?? 0);
    if (n >= size) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > 600_000) throw new Error(`the address pool did not fill (${n} of ${size})`);
    await sleep(200);
  }
}

/** `n` curl processes download `url` at once; resolves with the wall time and the failures. */
async function parallelGet(url: string, n: number, size: number): Promise<{ seconds: number; failed: number }> {
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: n }, () => new Promise<boolean>((resolve) => {
    const c = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', url], { stdio: ['ignore', 'pipe', 'ignore'] });
    let o = '';
    c.stdout.on('data', (d) => { o += d; });
    c.on('close', (code) => resolve(code === 0 && o === `200 ${size}`));
  })));
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, failed: results.filter((ok) => !ok).length };
}

interface Measured { mibps: number; cpuPerGiB: number; failed: number }
async function measureDownloads(s: Server, n: number): Promise<Measured> {
  const c0 = cpuSeconds(s.pids());
  const r = await parallelGet(s.url, n, SIZE);
  const cpu = cpuSeconds(s.pids()) - c0;
  const gib = (n * SIZE) / 1024 ** 3;
  return { mibps: (n * SIZE) / MiB / r.seconds, cpuPerGiB: cpu / gib, failed: r.failed };
}

const fmt = (m: Measured) => `${m.mibps.toFixed(0).padStart(5)} MiB/s  ${m.cpuPerGiB.toFixed(2)} CPU-s/GiB${m.failed ? `  ${m.failed} FAILED` : ''}`;

async function downloads() {
  const src = path.join(work, 'payload.bin');
  const fd = fs.openSync(src, 'w');
  const block = Buffer.alloc(4 * MiB);
  for (let off = 0; off < SIZE; off += block.length) fs.writeSync(fd, crypto.randomFillSync(block), 0, Math.min(block.length, SIZE - off));
  fs.closeSync(fd);
  const www = path.join(work, 'www');
  const dav = path.join(work, 'dav');
  fs.mkdirSync(www);
  fs.mkdirSync(path.join(dav, '.tmp'), { recursive: true });
  fs.linkSync(src, path.join(www, 'payload.bin'));
  for (const p of [work, www, dav, path.join(dav, '.tmp')]) fs.chmodSync(p, 0o777);
  fs.chmodSync(src, 0o644);

  const nginx = await startNginx(www, dav);
  const onionshare = await startOnionshare(src);
  // bitdrop as it ships (the chunk cache at its default size); --without-cache adds one with it off.
  const bd = await startBitdrop('bitdrop', path.join(work, 'data-dl'), ['--free']);
  const up = execFileSync('curl', ['-sSf', '-H', 'Accept: application/json', '-T', src, `${bd.base}/payload.bin`]).toString();
  bd.url = JSON.parse(up).url;
  const servers: Server[] = [nginx, onionshare, bd];
  if (WITHOUT_CACHE) {
    const nc = await startBitdrop('bitdrop-nocache', path.join(work, 'data-dl-nocache'), ['--free'], { BITDROP_CHUNK_CACHE_MIB: '0' });
    nc.url = JSON.parse(execFileSync('curl', ['-sSf', '-H', 'Accept: application/json', '-T', src, `${nc.base}/payload.bin`]).toString()).url;
    servers.push(nc);
  }
  // Warm every server's path (page cache, JIT) once.
  for (const s of servers) await parallelGet(s.url, 2, SIZE);

  console.log(`\n== ${CLIENTS} parallel downloads of one ${SIZE / MiB} MiB file, ${ROUNDS} alternating rounds ==`);
  const all: Record<string, Measured[]> = Object.fromEntries(servers.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = servers.map((_, i) => servers[(i + r) % servers.length]);
    for (const s of order) {
      const m = await measureDownloads(s, CLIENTS);
      all[s.name].push(m);
      console.log(`round ${r + 1}  ${s.name.padEnd(15)} ${fmt(m)}`);
    }
    const b = all.bitdrop[r];
    const nc = all['bitdrop-nocache']?.[r];
    console.log(`round ${r + 1}  bitdrop/nginx ${(b.mibps / all.nginx[r].mibps).toFixed(2)}×   bitdrop/onionshare ${(b.mibps / all.onionshare[r].mibps).toFixed(2)}×` +
      (nc ? `   without the chunk cache: ${(nc.mibps / all.nginx[r].mibps).toFixed(2)}× nginx` : ''));
  }
  const ratio = (peer: string) => median(all.bitdrop.map((b, i) => b.mibps / all[peer][i].mibps));
  const cpu = (name: string) => median(all[name].map((m) => m.cpuPerGiB));
  console.log(`median of rounds: bitdrop/nginx ${ratio('nginx').toFixed(2)}× (goal ≥ 0.9×), bitdrop/onionshare ${ratio('onionshare').toFixed(2)}× (goal ≥ 2×)`);
  console.log(`server CPU per GiB sent (median): ${servers.map((s) => `${s.name} ${cpu(s.name).toFixed(2)} s`).join(', ')}`);
  console.log(`bitdrop peak RSS after the ${CLIENTS}-client rounds: ${peakRssMiB(bd.pid).toFixed(0)} MiB (goal ≤ 200 MiB)`);

  console.log(`\n== ${WIDE} parallel downloads, one round each ==`);
  const wide: Record<string, Measured> = {};
  for (const s of servers) {
    wide[s.name] = await measureDownloads(s, WIDE);
    console.log(`${s.name.padEnd(15)} ${fmt(wide[s.name])}`);
  }
  console.log(`${WIDE} clients: bitdrop/nginx ${(wide.bitdrop.mibps / wide.nginx.mibps).toFixed(2)}×, bitdrop/onionshare ${(wide.bitdrop.mibps / wide.onionshare.mibps).toFixed(2)}×, bitdrop failures ${wide.bitdrop.failed} (goal 0), peak RSS ${peakRssMiB(bd.pid).toFixed(0)} MiB`);
  await bd.stop();
  await stopChildren();
}

/** wrk: `clients` keep-alive connections PUT a small body for `seconds`, each to its own path */
function wrkPut(base: string, pathPrefix: string, seconds: number): { rps: number; requests: number; bad: number } {
  const wrk = ensure('wrk', 'wrk');
  const script = path.join(work, 'put.lua');
  fs.writeFileSync(script, `local n = 0
local body = "a small file of about thirty b\\n"
request = function()
  n = n + 1
  return wrk.format("PUT", "${pathPrefix}" .. n .. "-" .. math.random(1e9) .. ".txt", { ["Content-Type"] = "text/plain" }, body)
end\n`);
  const out = execFileSync(wrk, ['-t1', `-c${SMALL_CLIENTS}`, `-d${seconds}s`, '-s', script, base]).toString();
  const requests = Number(/(\d+) requests in/.exec(out)![1]);
  const bad = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), requests, bad };
}

async function uploads() {
  const www = path.join(work, 'www');
  const dav = path.join(work, 'dav');
  fs.mkdirSync(www, { recursive: true });
  fs.mkdirSync(path.join(dav, '.tmp'), { recursive: true });
  for (const p of [work, www, dav, path.join(dav, '.tmp')]) fs.chmodSync(p, 0o777);
  const nginx = await startNginx(www, dav);
  const base = nginx.url.replace(/\/payload\.bin$/, '');
  const free = await startBitdrop('bitdrop', path.join(work, 'data-up-free'), ['--free']);
  // enough addresses for the warm-up and every round at up to 7,500 uploads/s
  const POOL = (ROUNDS * SMALL_SECONDS + 1) * 7500;
  const prices = ['--storage-price', '1000', '--transfer-price', '1000'];
  const paid = await startBitdrop('bitdrop-paid', path.join(work, 'data-up-paid'), [...prices, '--address-pool', String(POOL)]);
  const inline = await startBitdrop('bitdrop-paid-inline', path.join(work, 'data-up-paid-inline'), [...prices, '--address-pool', '0']);
  const targets: { name: string; base: string; prefix: string; pids: () => number[]; main?: number }[] = [
    { name: 'nginx PUT', base, prefix: '/dav/', pids: nginx.pids },
    { name: 'bitdrop', base: free.base, prefix: '/', pids: free.pids, main: free.pid },
    { name: 'bitdrop paid', base: paid.base, prefix: '/', pids: paid.pids, main: paid.pid },
    { name: 'paid, no pool', base: inline.base, prefix: '/', pids: inline.pids, main: inline.pid },
  ];
  const c0 = cpuSeconds(paid.pids());
  const fillSeconds = await poolFull(paid, POOL);
  console.log(`\npaid bitdrop: an address pool of ${POOL} filled in ${fillSeconds.toFixed(1)} s (${(((cpuSeconds(paid.pids()) - c0) / POOL) * 1e3).toFixed(3)} CPU-ms each, worker thread)`);
  console.log(`== small uploads (~30 bytes), ${SMALL_CLIENTS} keep-alive clients (wrk), ${SMALL_SECONDS} s each, ${ROUNDS} alternating rounds ==`);
  const all: Record<string, number[]> = {};
  const cpuMs: Record<string, number[]> = {};
  // Warm each server up (JIT, LevelDB's first files) before anything is counted.
  for (const tg of targets) wrkPut(tg.base, tg.prefix, 1);
  for (let r = 0; r < ROUNDS; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length]);
    for (const tg of order) {
      // the paid pool refills after each of its turns: never while another server is measured
      await poolFull(paid, POOL);
      const c0 = cpuSeconds(tg.pids());
      const s0 = tg.main ? loopSched(tg.main) : undefined;
      const t0 = machineTicks();
      const started = process.hrtime.bigint();
      const w = wrkPut(tg.base, tg.prefix, SMALL_SECONDS);
      const wall = Number(process.hrtime.bigint() - started);
      const cpu = cpuSeconds(tg.pids()) - c0;
      const t1 = machineTicks();
      const idle = (100 * (t1.idle - t0.idle)) / (t1.total - t0.total);
      // bitdrop's event loop alone (its worker threads, e.g. the address pool's refill, are in the total),
      // and the share of the run it was runnable but waiting for a core
      let main = '';
      if (tg.main) {
        const s1 = loopSched(tg.main);
        main = ` (event loop ${((s1.run - s0!.run) / 1e6 / w.requests).toFixed(3)}; on a core ${((100 * (s1.run - s0!.run)) / wall).toFixed(0)}%, waiting for one ${((100 * (s1.wait - s0!.wait)) / wall).toFixed(0)}% of the run)`;
      }
      (all[tg.name] ??= []).push(w.rps);
      (cpuMs[tg.name] ??= []).push((cpu / w.requests) * 1e3);
      console.log(`round ${r + 1}  ${tg.name.padEnd(13)} ${w.rps.toFixed(0).padStart(6)} uploads/s  ${((cpu / w.requests) * 1e3).toFixed(3)} server CPU-ms each${main}  machine idle ${idle.toFixed(0)}%${w.bad ? `  ${w.bad} FAILED` : ''}`);
    }
  }
  const med = (n: string) => median(all[n]);
  const ratio = (n: string) => median(all[n].map((v, i) => v / all['nginx PUT'][i]));
  console.log(`median: nginx PUT ${med('nginx PUT').toFixed(0)}/s, bitdrop ${med('bitdrop').toFixed(0)}/s (${ratio('bitdrop').toFixed(2)}× nginx; goal ≥ 5,000/s), paid ${med('bitdrop paid').toFixed(0)}/s (${ratio('bitdrop paid').toFixed(2)}×; from the address pool: the burst rate), paid without a pool ${med('paid, no pool').toFixed(0)}/s (${ratio('paid, no pool').toFixed(2)}×; the sustained rate once a pool is dry)`);
  // What 5,000 uploads/s would take in CPU alone: the server's CPU time per upload (all its threads) times
  // 5,000, against the cores this machine has (the clients, wrk here, and the kernel's loopback need more).
  const cores = os.availableParallelism();
  const needed = (n: string) => (median(cpuMs[n]) * 5000) / 1e3;
  console.log(`CPU for 5,000 uploads/s at the measured CPU-ms each: bitdrop ${needed('bitdrop').toFixed(2)} cores, paid ${needed('bitdrop paid').toFixed(2)}, paid without a pool ${needed('paid, no pool').toFixed(2)} (this machine has ${cores}; the clients and the kernel need some too)`);
  await free.stop();
  await paid.stop();
  await inline.stop();
  await stopChildren();
}

const killGroup = (c: ChildProcess, signal: NodeJS.Signals) => {
  try { process.kill(-c.pid!, signal); } catch { /* already gone */ }
};
/** SIGTERM to every server's process group, then SIGKILL to whatever is left of it. */
async function stopChildren() {
  for (const c of children) killGroup(c, 'SIGTERM');
  await sleep(500);
  for (const c of children) killGroup(c, 'SIGKILL');
  children.length = 0;
}

async function main() {
  console.log(`bitdrop many-clients bench: ${os.availableParallelism()} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, in ${work}`);
  if (ONLY !== 'uploads') await downloads();
  if (ONLY !== 'downloads') await uploads();
  console.log(`load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

const cleanup = () => {
  for (const c of children) killGroup(c, 'SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});
main().then(() => {
  cleanup();
  // a left keep-alive socket (fetch) or child pipe must not keep the bench waiting once it has printed
  process.exit(0);
}, (err) => {
  console.error(`bench failed: ${err.message}`);
  cleanup();
  process.exit(1);
});
