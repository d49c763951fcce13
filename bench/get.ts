// `bitdrop get` against curl, in one run, printing ratios:
//   1. loopback (no tor): curl vs bitdrop get -j 1 / -j 4, and what age costs: `bitdrop upload --encrypt`
//      vs `bitdrop upload`, and `bitdrop get URL#key` vs `bitdrop get URL` (goal: ≤ 10 % of the time);
//   2. `bitdrop get -j 4` killed with kill -9 at random points (--kills, default 5), then finished: the
//      bytes must be identical;
//   3. with --tor: a private Tor network on loopback (test/helpers/tor-network.ts), the daemon's onion,
//      a client tor: `curl --socks5-hostname` (one stream) vs `bitdrop get -j 4` (four circuits)
//      (goal: ≥ 2.5×). With --delay-ms N the bench first re-runs itself in a network namespace of its own
//      (`unshare -n`, lo up, `tc qdisc add dev lo root netem delay Nms`): every packet between the tors
//      (all on that namespace's loopback) waits N ms, so each hop's round trip is 2N ms, as on the real
//      network. Where the kernel has no sch_netem it says so and runs without.
//
//   npx tsc -p . && node build/bench/get.js [--mib 256] [--kills 5] [--tor] [--delay-ms 25]

import { ChildProcess, execFile, spawn, spawnSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import readline from 'readline';
import { freePorts, startTorNetwork, type TorNetwork } from '../test/helpers/tor-network';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MIB = arg('mib', 256);
const KILLS = arg('kills', 5);
const TOR = process.argv.includes('--tor');
const DELAY = arg('delay-ms', 0);
const CLI = path.resolve(__dirname, '..', 'bin', 'bitdrop.js'); // build/bench → build/bin

function timed(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => execFile(cmd, args, { cwd: opts.cwd, maxBuffer: 1 << 24 }, (err, _out, stderr) =>
    (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(Number(process.hrtime.bigint() - t0) / 1e9))));
}
const node = (args: string[], opts: { cwd?: string } = {}) => timed(process.execPath, [CLI, ...args], opts);
const run = (args: string[]) => new Promise<string>((resolve, reject) => execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 24 },
  (err, out, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(out))));

function sha(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(4 << 20);
  for (let n; (n = fs.readSync(fd, buf)) > 0;) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

function startDaemon(dataDir: string, extra: string[]): { proc: ChildProcess; url: Promise<string>; onion: Promise<string> } {
  const proc = spawn(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--console', '127.0.0.1:0', '--free', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let resolveUrl: (u: string) => void, resolveOnion: (u: string) => void;
  const url = new Promise<string>((r) => { resolveUrl = r; });
  const onion = new Promise<string>((r) => { resolveOnion = r; });
  for (const s of [proc.stdout!, proc.stderr!]) readline.createInterface({ input: s }).on('line', (line) => {
    const m = /serving\s+(http:\/\/\S+?)\/?(\s|$)/.exec(line);
    if (m) resolveUrl(m[1]);
    const o = /http:\/\/[a-z2-7]{56}\.onion/.exec(line);
    if (o) resolveOnion(o[0]);
  });
  return { proc, url, onion };
}

const mbps = (seconds: number) => (MIB * 1.048576 / seconds).toFixed(1);

async function main() {
  if (DELAY && !process.env.BITDROP_BENCH_NETNS) {
    const script = `ip link set lo up && if tc qdisc add dev lo root netem delay ${DELAY}ms; then export BITDROP_BENCH_NETEM=1; ` +
      `else echo "bench/get: netem is unavailable here (no sch_netem in this kernel): running without added latency"; fi; exec "$0" "$@"`;
    const r = spawnSync('unshare', ['-n', 'sh', '-c', script, process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, BITDROP_BENCH_NETNS: '1' } });
    process.exit(r.status ?? 1);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-bench-get-'));
  const procs: ChildProcess[] = [];
  let network: TorNetwork | undefined;
  try {
    const file = path.join(root, 'payload.bin');
    const fd = fs.openSync(file, 'w');
    const block = crypto.randomBytes(4 << 20);
    for (let i = 0; i < MIB / 4; i++) { block.writeUInt32BE(i, 0); fs.writeSync(fd, block); }
    fs.closeSync(fd);
    const want = sha(file);
    console.log(`bench/get: ${MIB} MiB, node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);

    // 1. loopback
    const d = startDaemon(path.join(root, 'data'), ['--listen', '127.0.0.1:0', '--tor', 'off', '--max-upload-bytes', String((MIB + 64) * 1048576)]);
    procs.push(d.proc);
    const base = await d.url;
    const upPlain = await node(['upload', file, '--url', `${base}/`]);
    const upEncT0 = process.hrtime.bigint();
    const encOut = await run(['upload', '--encrypt', file, '--url', `${base}/`]);
    const upEnc = Number(process.hrtime.bigint() - upEncT0) / 1e9;
    const link = encOut.split('\n')[0];
    const plainUrl = (await run(['upload', file, '--url', `${base}/`])).split('\n')[0];
    const out = path.join(root, 'out');
    const curlS = await timed('curl', ['-sSf', '-o', out, plainUrl]);
    fs.rmSync(out);
    const j1 = await node(['get', plainUrl, '-j', '1', '-o', out, '--no-progress']);
    fs.rmSync(out);
    const j4 = await node(['get', plainUrl, '-j', '4', '-o', out, '--no-progress']);
    fs.rmSync(out);
    const dec = await node(['get', link, '-j', '4', '-o', out, '--no-progress']);
    if (sha(out) !== want) throw new Error('the decrypted download differs');
    fs.rmSync(out);
    console.log(`loopback download: curl ${curlS.toFixed(2)} s (${mbps(curlS)} MB/s); bitdrop get -j 1 ${j1.toFixed(2)} s (${(curlS / j1).toFixed(2)}× curl); -j 4 ${j4.toFixed(2)} s (${(curlS / j4).toFixed(2)}× curl)`);
    console.log(`age upload:   bitdrop upload ${upPlain.toFixed(2)} s, --encrypt ${upEnc.toFixed(2)} s: encryption costs ${((upEnc / upPlain - 1) * 100).toFixed(0)} % (goal ≤ 10 %)`);
    console.log(`age download: bitdrop get -j 4 ${j4.toFixed(2)} s, with #key ${dec.toFixed(2)} s: decryption costs ${((dec / j4 - 1) * 100).toFixed(0)} % (goal ≤ 10 %)`);

    // 2. kill -9 at random points
    const kdir = path.join(root, 'kills');
    fs.mkdirSync(kdir);
    const size = fs.statSync(file).size;
    const partJson = () => fs.readdirSync(kdir).find((n) => n.endsWith('.bitdrop-part.json'));
    const have = () => {
      const f = partJson();
      try { return f ? (JSON.parse(fs.readFileSync(path.join(kdir, f), 'utf8')).done as [number, number][]).reduce((n, [a, b]) => n + b - a, 0) : 0; } catch { return 0; }
    };
    let kills = 0;
    for (let i = 0; i < KILLS; i++) {
      const at = have() + Math.random() * (size - have()) * 0.5;
      const g = spawn(process.execPath, [CLI, 'get', plainUrl, '-j', '4', '--no-progress', '--limit-rate', String(64 << 20)], { cwd: kdir, stdio: 'ignore' });
      while (have() < at && g.exitCode === null) await new Promise((r) => setTimeout(r, 5));
      if (g.exitCode === null) { g.kill('SIGKILL'); kills++; }
      await new Promise((r) => (g.exitCode !== null || g.signalCode !== null ? r(null) : g.once('exit', r)));
    }
    await node(['get', plainUrl, '-j', '4', '--no-progress'], { cwd: kdir });
    const same = sha(path.join(kdir, 'payload.bin')) === want;
    console.log(`kill -9: ${kills} random kills of bitdrop get -j 4, then a last run: ${same ? 'byte-identical' : 'DIFFERENT'}`);
    if (!same) process.exitCode = 1;
    d.proc.kill('SIGTERM');

    // 3. through a private Tor network
    if (TOR) {
      network = await startTorNetwork();
      const [port] = await freePorts(1);
      const hs = startDaemon(path.join(root, 'hsdata'), ['--listen', `127.0.0.1:${port}`, '--tor', 'managed', '--torrc-append', network.torrcAppendFile(),
        '--max-upload-bytes', String((MIB + 64) * 1048576)]);
      procs.push(hs.proc);
      const onion = await hs.onion;
      const client = await network.startClient();
      await client.bootstrapped();
      const socks = `127.0.0.1:${client.socksPort}`;
      const fileUrl = (await run(['upload', file, '--url', `${await hs.url}/`])).split('\n')[0].replace(/^http:\/\/[^/]+/, onion);
      for (let i = 0; ; i++) {
        try { await timed('curl', ['-sSf', '--max-time', '20', '--socks5-hostname', socks, '-o', '/dev/null', `${onion}/`]); break; } catch (err) {
          if (i > 60) throw err;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
      const viaCurl = await timed('curl', ['-sSf', '--socks5-hostname', socks, '-o', out, fileUrl]);
      fs.rmSync(out);
      const viaGet = await node(['get', fileUrl, '-j', '4', '--socks', socks, '-o', out, '--no-progress']);
      console.log(`tor${process.env.BITDROP_BENCH_NETEM ? ` (netem ${DELAY} ms on lo)` : ' (loopback, no added latency)'}: curl --socks5-hostname ${viaCurl.toFixed(1)} s (${mbps(viaCurl)} MB/s); ` +
        `bitdrop get -j 4 ${viaGet.toFixed(1)} s (${mbps(viaGet)} MB/s): ${(viaCurl / viaGet).toFixed(2)}× (goal ≥ 2.5× with latency)`);
    }
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('exit', r)))));
    await network?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
