// A private Tor network on 127.0.0.1: 3 directory authorities + 3 relays, no exits, so nothing can
// leave loopback. Settings and timings follow shared/notes/private-tor-network.md (first consensus
// with relays after ~20 s; allow 90-120 s in CI).
//
// Every tor runs in the foreground as our child with __OwningControllerProcess, so a crashed test
// run leaves no tor behind (they exit within tor's 15 s poll). Ports are picked free, so runs can
// overlap. Authority keys are made once (tor --list-fingerprint + tor-gencert, 3-10 s of CPU) and
// kept in node_modules/.cache (the usual home of tool caches, not /tmp: a test run leaves /tmp as it
// found it) for later networks.

import { ChildProcess, execFile, spawn } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { promisify } from 'util';
import { ControlPort } from '../../lib/tor/control';
import { findExecutable } from '../../lib/tor/process';

const run = promisify(execFile);
const AUTHORITIES = 3;
const RELAYS = 3;
const KEY_CACHE = path.join(cacheRoot(), 'bitdrop-tornet-authority-keys-v1');

/** <the project>/node_modules/.cache, found from here whether run from test/ or build/test/. */
function cacheRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'node_modules'))) {
      const cache = path.join(dir, 'node_modules', '.cache');
      fs.mkdirSync(cache, { recursive: true });
      return cache;
    }
    if (path.dirname(dir) === dir) return os.tmpdir();
  }
}

export interface TorClient {
  socksPort: number;
  /** waits until the client reports "Bootstrapped 100%" */
  bootstrapped(timeoutMs?: number): Promise<void>;
  /** SIGNAL NEWNYM: new circuits, and the client forgets cached onion descriptors (Tor Browser's "New Identity") */
  newnym(): Promise<void>;
  /** its control port as "HOST:PORT" (cookie authentication), for a controller such as names-proxy */
  controlArg(): string;
  stop(): Promise<void>;
}

export interface TorNetwork {
  /** the DirAuthority lines every member of this network (and every tor joining it) needs */
  dirAuthorityLines(): string[];
  /** a torrc fragment for a joining tor (e.g. bitdrop's --torrc-append): TestingTorNetwork 1 + DirAuthority lines + knobs */
  torrcAppendFile(): string;
  /** a client tor with a SocksPort (ExtendedErrors, so curl can tell "missing client authorization"); optionally a ClientOnionAuthDir */
  startClient(opts?: { clientOnionAuthDir?: string; extraTorrc?: string[] }): Promise<TorClient>;
  stop(): Promise<void>;
}

export function requireTorTools(): { tor: string; gencert: string } {
  const tor = findExecutable('tor');
  const gencert = findExecutable('tor-gencert');
  if (!tor || !gencert) throw new Error('tor (with tor-gencert) is not installed: apt-get install tor');
  return { tor, gencert };
}

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

interface AuthorityKeys {
  keysDir: string;
  rsaFingerprint: string;
  v3ident: string;
}

/** Authority keys: from the cache, or made in parallel and published to it with one rename. */
async function authorityKeys(tor: string, gencert: string): Promise<AuthorityKeys[]> {
  if (!fs.existsSync(path.join(KEY_CACHE, `a${AUTHORITIES - 1}`, 'keys', 'authority_certificate'))) {
    const staging = fs.mkdtempSync(`${KEY_CACHE}-staging-`);
    await Promise.all(
      Array.from({ length: AUTHORITIES }, async (_, i) => {
        const dir = path.join(staging, `a${i}`);
        const keys = path.join(dir, 'keys');
        fs.mkdirSync(keys, { recursive: true, mode: 0o700 });
        await run(tor, ['--ignore-missing-torrc', '-f', path.join(dir, 'none'), '--DataDirectory', dir, '--ORPort', '1', '--list-fingerprint', '--quiet']);
        const child = execFile(gencert, [
          '--create-identity-key', '--passphrase-fd', '0', '-m', '12',
          '-i', path.join(keys, 'authority_identity_key'),
          '-s', path.join(keys, 'authority_signing_key'),
          '-c', path.join(keys, 'authority_certificate'),
        ]);
        child.stdin!.end('\n');
        await new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tor-gencert exited with ${code}`)))));
      }),
    );
    try {
      fs.renameSync(staging, KEY_CACHE);
    } catch {
      fs.rmSync(staging, { recursive: true, force: true }); // another run published its keys first
    }
  }
  return Array.from({ length: AUTHORITIES }, (_, i) => {
    const dir = path.join(KEY_CACHE, `a${i}`);
    const rsaFingerprint = fs.readFileSync(path.join(dir, 'fingerprint'), 'utf8').trim().split(/\s+/).slice(1).join('');
    const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(fs.readFileSync(path.join(dir, 'keys', 'authority_certificate'), 'utf8'))![1];
    return { keysDir: path.join(dir, 'keys'), rsaFingerprint, v3ident };
  });
}

/** What every node shares; a joining tor (hs, client) gets the same block (the measured fast variant). */
function commonBlock(dirAuthorities: string[]): string[] {
  return [
    'TestingTorNetwork 1',
    'SafeLogging 0',
    'LogTimeGranularity 1',
    'GeoIPFile ""',
    'GeoIPv6File ""',
    'ShutdownWaitLength 0',
    'AssumeReachable 1',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    'ClientUseIPv6 0',
    ...dirAuthorities,
  ];
}

class Node {
  child?: ChildProcess;
  constructor(readonly name: string, readonly dir: string, private tor: string) {}

  async start(torrc: string[]): Promise<void> {
    fs.writeFileSync(path.join(this.dir, 'torrc'), torrc.join('\n') + '\n');
    const child = spawn(this.tor, ['-f', path.join(this.dir, 'torrc'), '--defaults-torrc', '/dev/null'], { stdio: 'ignore' });
    this.child = child;
    await new Promise((r) => setTimeout(r, 300));
    if (child.exitCode !== null) throw new Error(`tor node ${this.name} exited at once: ${this.logTail()}`);
  }

  logTail(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'notice.log'), 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}

export async function startTorNetwork(): Promise<TorNetwork> {
  const { tor, gencert } = requireTorTools();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-tornet-'));
  const keys = await authorityKeys(tor, gencert);
  const ports = await freePorts(AUTHORITIES * 2 + RELAYS);
  const orPort = (i: number) => ports[i];
  const dirPort = (i: number) => ports[AUTHORITIES + RELAYS + i];

  const dirAuthorities = keys.map(
    (k, i) => `DirAuthority a${i} orport=${orPort(i)} no-v2 v3ident=${k.v3ident} 127.0.0.1:${dirPort(i)} ${k.rsaFingerprint}`,
  );
  const common = commonBlock(dirAuthorities);
  const nodes: Node[] = [];
  const newDir = (name: string) => {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { mode: 0o700 });
    return dir;
  };
  const base = (name: string, dir: string) => [
    `DataDirectory ${dir}`,
    `Nickname ${name}`,
    `Log notice file ${path.join(dir, 'notice.log')}`,
    `__OwningControllerProcess ${process.pid}`,
    ...common,
  ];
  const relay = (i: number) => ['SocksPort 0', `ORPort 127.0.0.1:${orPort(i)}`, 'Address 127.0.0.1', 'ExitRelay 0', 'ExitPolicy reject *:*'];

  try {
    for (let i = 0; i < AUTHORITIES + RELAYS; i++) {
      const authority = i < AUTHORITIES;
      const name = authority ? `a${i}` : `r${i - AUTHORITIES}`;
      const dir = newDir(name);
      if (authority) fs.cpSync(keys[i].keysDir, path.join(dir, 'keys'), { recursive: true });
      const torrc = [...base(name, dir), ...relay(i)];
      if (authority) {
        torrc.push(
          `DirPort 127.0.0.1:${dirPort(i)}`,
          'AuthoritativeDirectory 1',
          'V3AuthoritativeDirectory 1',
          `ContactInfo ${name}@test.invalid`,
          'TestingV3AuthInitialVotingInterval 10',
          'TestingV3AuthInitialVoteDelay 2',
          'TestingV3AuthInitialDistDelay 2',
          'V3AuthVotingInterval 10',
          'V3AuthVoteDelay 2',
          'V3AuthDistDelay 2',
        );
      }
      const node = new Node(name, dir, tor);
      nodes.push(node);
      await node.start(torrc);
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }

  const appendFile = path.join(root, 'join.torrc');
  fs.writeFileSync(appendFile, ['# join the private test network', ...common].join('\n') + '\n');
  let clients = 0;

  return {
    dirAuthorityLines: () => [...dirAuthorities],
    torrcAppendFile: () => appendFile,
    async startClient(opts = {}) {
      const name = `c${clients++}`;
      const dir = newDir(name);
      const [socksPort] = await freePorts(1);
      const node = new Node(name, dir, tor);
      nodes.push(node);
      await node.start([
        ...base(name, dir),
        `SocksPort 127.0.0.1:${socksPort} ExtendedErrors`,
        'ControlPort 127.0.0.1:auto',
        `ControlPortWriteToFile ${path.join(dir, 'control-port')}`,
        'CookieAuthentication 1',
        ...(opts.clientOnionAuthDir ? [`ClientOnionAuthDir ${opts.clientOnionAuthDir}`] : []),
        ...(opts.extraTorrc ?? []),
      ]);
      const withControl = async <T>(fn: (control: ControlPort) => Promise<T>): Promise<T> => {
        const m = /PORT=(.+):(\d+)/.exec(fs.readFileSync(path.join(dir, 'control-port'), 'utf8'))!;
        const control = await ControlPort.connect({ host: m[1], port: Number(m[2]) });
        try {
          await control.authenticate();
          return await fn(control);
        } finally {
          control.close();
        }
      };
      return {
        socksPort,
        newnym: () => withControl(async (c) => void (await c.command('SIGNAL NEWNYM'))),
        controlArg: () => {
          const m = /PORT=(.+):(\d+)/.exec(fs.readFileSync(path.join(dir, 'control-port'), 'utf8'))!;
          return `${m[1]}:${m[2]}`;
        },
        async bootstrapped(timeoutMs = 120_000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            try {
              if ((await withControl((c) => c.bootstrapProgress())) === 100) return;
            } catch {
              // not up yet
            }
            if (Date.now() > deadline) throw new Error(`client ${name} did not bootstrap within ${timeoutMs / 1000} s: ${node.logTail()}`);
            await new Promise((r) => setTimeout(r, 500));
          }
        },
        stop: () => node.stop(),
      };
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
