// Download throughput through an onion service: bitdrop against nginx serving the same bytes.
//
// Both are published on one private Tor network on loopback (test/helpers/tor-network.ts), by the
// same hs tor — the one the bitdrop daemon manages: bitdrop's own onion, plus a second ADD_ONION that
// points at nginx. So the two paths differ only in the HTTP server; the ratio is what bitdrop costs.
// One client tor downloads from each in alternation; the median of the rounds is compared.
//
//   npx tsc -p . && node build/bench/onion.js [--mib 50] [--rounds 3]

import { ChildProcess, execFile, spawn } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import readline from 'readline';
import { ControlPort, parseControlAddress } from '../lib/tor/control';
import { freePorts, startTorNetwork } from '../test/helpers/tor-network';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MIB = arg('mib', 50);
const ROUNDS = arg('rounds', 3);
const NGINX = '/usr/sbin/nginx';
const DAEMON = path.resolve(__dirname, '..', 'bin', 'bitdrop.js'); // build/bench → build/bin

interface Fetch {
  ok: boolean;
  seconds: number;
  bytes: number;
  error: string;
}

function curl(args: string[], maxSeconds = 300): Promise<Fetch> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-f', '--max-time', String(maxSeconds), '-o', '/dev/null', '-w', '%{time_total} %{size_download}', ...args], (err, stdout, stderr) => {
      const [seconds, bytes] = stdout.trim().split(' ').map(Number);
      resolve({ ok: !err, seconds, bytes, error: stderr.trim() });
    });
  });
}

const mbps = (f: Fetch) => f.bytes / 1e6 / f.seconds;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function startNginx(dir: string, port: number, root: string): ChildProcess {
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  // A minimal static server on loopback; nothing read from /etc/nginx.
  fs.writeFileSync(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  default_type application/octet-stream;
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`);
  return spawn(NGINX, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
}

async function main() {
  if (!fs.existsSync(DAEMON)) throw new Error(`${DAEMON} is missing: build first (npx tsc -p .)`);
  if (!fs.existsSync(NGINX)) throw new Error(`${NGINX} is missing: apt-get install nginx-light`);
  const began = Date.now();
  const at = () => `${((Date.now() - began) / 1000).toFixed(0)} s`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-bench-onion-'));
  const children: ChildProcess[] = [];
  const network = await startTorNetwork();
  let control: ControlPort | undefined;
  try {
    const file = path.join(dir, 'www', 'bench.bin');
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, crypto.randomBytes(MIB * 1024 * 1024));
    const [nginxPort, bitdropPort] = await freePorts(2);
    children.push(startNginx(path.join(dir, 'nginx'), nginxPort, path.dirname(file)));

    const dataDir = path.join(dir, 'bitdrop');
    const daemon = spawn(process.execPath, [DAEMON, 'start', '--data-dir', dataDir, '--listen', `127.0.0.1:${bitdropPort}`, '--tor', 'managed', '--torrc-append', network.torrcAppendFile(), '--console', '127.0.0.1:0', '--free'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(daemon);
    const bitdropOnion = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: daemon.stdout! }).on('line', (line) => {
        const m = /http:\/\/[a-z2-7]{56}\.onion/.exec(line);
        if (m) resolve(m[0]);
      });
      daemon.once('exit', (code) => reject(new Error(`bitdrop exited (${code}) before printing its onion`)));
    });

    // The same bytes into bitdrop, over loopback; its answer names the download path.
    const upload = await new Promise<string>((resolve, reject) =>
      execFile('curl', ['-sS', '-f', '-T', file, `http://127.0.0.1:${bitdropPort}/bench.bin`], (err, stdout, stderr) => (err ? reject(new Error(`upload: ${stderr}`)) : resolve(stdout))),
    );
    const bitdropPath = new URL(/https?:\/\/\S+/.exec(upload)?.[0] ?? `http://x/bench.bin`).pathname;

    // nginx's onion: a second ADD_ONION on the daemon's tor, owned by this control connection.
    const portFile = fs.readFileSync(path.join(dataDir, 'tor', 'control-port'), 'utf8');
    control = await ControlPort.connect(parseControlAddress(/PORT=(\S+)/.exec(portFile)![1]));
    await control.authenticate();
    const nginx = await control.addOnion({ key: 'NEW:ED25519-V3', ports: [{ virtualPort: 80, target: `127.0.0.1:${nginxPort}` }] });
    const nginxOnion = `http://${nginx.serviceId}.onion`;

    const client = await network.startClient();
    const socks = ['--socks5-hostname', `127.0.0.1:${client.socksPort}`];
    const targets = { bitdrop: `${bitdropOnion}${bitdropPath}`, nginx: `${nginxOnion}/bench.bin` };
    for (const [name, url] of Object.entries(targets)) {
      await until(`${name}'s onion`, async () => (await curl([...socks, '-r', '0-0', url], 30)).ok, 180_000);
    }
    console.log(`${at()}: both onions reachable; downloading ${MIB} MiB ${ROUNDS}× each`);

    const loopback = {
      bitdrop: await curl([`http://127.0.0.1:${bitdropPort}${bitdropPath}`]),
      nginx: await curl([`http://127.0.0.1:${nginxPort}/bench.bin`]),
    };
    const runs: Record<'bitdrop' | 'nginx', number[]> = { bitdrop: [], nginx: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate who goes first, so a slow moment of the shared machine hits both.
      const order = round % 2 ? (['nginx', 'bitdrop'] as const) : (['bitdrop', 'nginx'] as const);
      for (const name of order) {
        const f = await curl([...socks, targets[name]]);
        if (!f.ok || f.bytes !== MIB * 1024 * 1024) throw new Error(`${name} download failed: ${f.error || `${f.bytes} bytes`}`);
        runs[name].push(mbps(f));
      }
    }

    const b = median(runs.bitdrop);
    const n = median(runs.nginx);
    const row = (label: string, x: number, y: number) =>
      console.log(`${label.padEnd(22)}${x.toFixed(1).padStart(9)} MB/s${y.toFixed(1).padStart(9)} MB/s${(x / y).toFixed(2).padStart(9)}`);
    console.log(`\ndownload of ${MIB} MiB, private Tor network on loopback (3 authorities + 3 relays, one hs tor for both)`);
    console.log(`${''.padEnd(22)}${'bitdrop'.padStart(14)}${'nginx'.padStart(14)}${'ratio'.padStart(9)}`);
    row('through the onion', b, n);
    row('loopback, no tor', mbps(loopback.bitdrop), mbps(loopback.nginx));
    console.log(`onion runs (MB/s): bitdrop ${runs.bitdrop.map((x) => x.toFixed(1)).join(' ')}; nginx ${runs.nginx.map((x) => x.toFixed(1)).join(' ')}`);
    console.log(`total ${at()}`);
  } finally {
    control?.close();
    for (const child of children) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await network.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench/onion: ${(err as Error).message}`);
  process.exit(1);
});
