// A real GlusterFS volume for tests and benches, on this machine: glusterd started by hand with its
// state, run directory and CLI socket in a folder of our own, bricks as plain directories (by the
// machine's hostname: glusterd refuses 127.0.0.1), the volume mounted with FUSE as often as asked.
// `remove()` undoes everything — unmounts, stops the volume, kills every process whose command line
// names our folder (glusterd, bricks, self-heal daemon, rebalance, FUSE clients), deletes the folder
// and the brick logs glusterd wrote under /var/log/glusterfs — and is safe to call after any failure.
//
// glusterd's port (24007) is machine-wide: bricks and mounts always ask it there. So one volume runs at
// a time on a machine; a lock folder makes other tests and benches wait for their turn.
//
// Needs root and glusterfs-server (scripts/test-setup installs it); fails loudly, never skips.

import { execFile, execFileSync } from 'child_process';
import crypto from 'crypto';
import dns from 'dns';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { promisify } from 'util';

const run = promisify(execFile);
// One machine-wide glusterd: the lock must be one path for every test run on the machine, so not under
// os.tmpdir() (npm test gives each run a TMPDIR of its own, scripts/tmp-guard). Removed after use.
const LOCK = '/tmp/bitdrop-glusterd.lock';
const GLUSTERD_PORT = 24007;
const BRICK_LOG_DIR = '/var/log/glusterfs/bricks';

export interface GlusterVolume {
  name: string;
  host: string;
  /** brick directories, in volume order */
  bricks: string[];
  /** FUSE mount points of the volume */
  mounts: string[];
  /** runs the gluster CLI against our glusterd; resolves with its stdout */
  gluster(...args: string[]): Promise<string>;
  /** pid of the brick process serving `brick` (undefined when it is down) */
  brickPid(brick: string): Promise<number | undefined>;
  /** new brick directories (not yet in the volume) */
  newBricks(n: number): string[];
  /** pid of the FUSE client process behind `mount` (killing it cuts that mount off the volume) */
  fuseClientPid(mount: string): number | undefined;
  /** files still to heal, summed over every brick; undefined while a brick is unreachable */
  healPending(): Promise<number | undefined>;
  /**
   * Cuts the network between a mount made with `cuttableMounts` and the bricks (and glusterd): its link
   * goes down, nothing is sent or answered, no connection is reset — as when a machine's cable is pulled.
   */
  cut(mount: string): Promise<void>;
  /** brings a cut mount's link back up */
  restore(mount: string): Promise<void>;
  remove(): Promise<void>;
}

function requireGluster(): void {
  for (const cmd of ['glusterd', 'gluster', 'mount.glusterfs']) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${cmd} is not installed: apt-get install glusterfs-server (scripts/test-setup does it as root)`);
    }
  }
  if (process.getuid?.() !== 0) throw new Error('GlusterFS tests need root (glusterd, bricks and FUSE mounts)');
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** One volume per machine at a time: a lock folder holding its owner's pid (taken over when the owner died). */
async function lockMachine(timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      fs.writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return () => fs.rmSync(LOCK, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = 0;
    try { owner = Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8')) || 0; } catch { /* being made or removed */ }
    if (owner && !alive(owner)) fs.rmSync(LOCK, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`another GlusterFS test (pid ${owner}) has held ${LOCK} for ${timeoutMs / 1000} s`);
    else await new Promise((r) => setTimeout(r, 500));
  }
}

function portInUse(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** Processes whose command line names `marker` (ours: every gluster process we made names our folder). */
function processesNaming(marker: string): { pid: number; args: string[] }[] {
  const out: { pid: number; args: string[] }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a.includes(marker))) out.push({ pid: Number(entry), args });
    } catch { /* gone */ }
  }
  return out;
}

export interface GlusterOptions {
  replica?: number;
  arbiter?: number;
  /** how many FUSE mounts of the volume (default 2) */
  mounts?: number;
  /** volume options set before start, e.g. { 'network.ping-timeout': '5' } */
  options?: Record<string, string>;
  /**
   * Indexes of mounts whose FUSE client runs in a network namespace of its own (`cut()` then cuts it off).
   * The bricks listen on the hostname's loopback address; the namespace reaches it over a veth pair: its own
   * loopback left without addresses, a route to that one address through the veth, and route_localnet on
   * both ends so that the kernel lets loopback addresses cross a real link. The mount itself stays in this
   * mount namespace (nsenter --net), where the daemons see it.
   */
  cuttableMounts?: number[];
}

/** A network namespace with a veth pair to this one; the mount's client runs in it. */
interface CutNet { ns: string; hostIf: string; nsIf: string }

async function makeCutNet(hostAddress: string, made: (net: CutNet) => void): Promise<CutNet> {
  const tag = crypto.randomBytes(4).toString('hex');
  const net: CutNet = { ns: `bitdrop-${tag}`, hostIf: `bd${tag}h`, nsIf: `bd${tag}n` };
  made(net); // known to remove() before anything of it exists, so that a failure half-way leaves nothing
  // a /30 in 10.213.0.0/16; one volume at a time runs on a machine (the lock), so a clash is a leftover's
  const base = 4 * crypto.randomInt(0, 16384);
  const a = `10.213.${base >> 8}.${(base & 255) + 1}`;
  const b = `10.213.${base >> 8}.${(base & 255) + 2}`;
  const ip = (...args: string[]) => run('ip', args);
  const inNs = (...args: string[]) => run('ip', ['netns', 'exec', net.ns, ...args]);
  await ip('netns', 'add', net.ns);
  await ip('link', 'add', net.hostIf, 'type', 'veth', 'peer', 'name', net.nsIf);
  await ip('link', 'set', net.nsIf, 'netns', net.ns);
  await ip('addr', 'add', `${a}/30`, 'dev', net.hostIf);
  await ip('link', 'set', net.hostIf, 'up');
  // (through /proc rather than sysctl(8): procps is not on every test machine)
  fs.writeFileSync(`/proc/sys/net/ipv4/conf/${net.hostIf}/route_localnet`, '1');
  await ip('-n', net.ns, 'addr', 'add', `${b}/30`, 'dev', net.nsIf);
  await ip('-n', net.ns, 'link', 'set', net.nsIf, 'up');
  // /proc/sys/net shows the network namespace of the process that opens it
  await inNs('sh', '-c', `echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && echo 1 > /proc/sys/net/ipv4/conf/${net.nsIf}/route_localnet`);
  // the namespace's loopback keeps no address: the hostname's loopback address is reached through the veth
  await ip('-n', net.ns, 'addr', 'flush', 'dev', 'lo');
  await ip('-n', net.ns, 'route', 'add', `${hostAddress}/32`, 'via', a, 'dev', net.nsIf, 'src', b);
  return net;
}

/** Creates, starts and mounts a volume. Call remove() in t.teardown before anything can fail. */
export async function createVolume(opts: GlusterOptions = {}): Promise<GlusterVolume> {
  requireGluster();
  const unlock = await lockMachine(600_000);
  const host = os.hostname();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-gluster-'));
  const name = `bd${crypto.randomBytes(4).toString('hex')}`;
  const sock = path.join(dir, 'glusterd.socket');
  const bricks: string[] = [];
  const mounts: string[] = [];
  const cutNets = new Map<string, CutNet>();
  let brickCount = 0;
  let removed = false;

  const gluster = async (...args: string[]) => {
    try {
      return (await run('gluster', ['--mode=script', `--glusterd-sock=${sock}`, ...args], { timeout: 120_000 })).stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`gluster ${args.join(' ')}: ${(e.stdout || e.stderr || e.message).trim()}`);
    }
  };
  const newBricks = (n: number) => Array.from({ length: n }, () => {
    const b = path.join(dir, `brick${++brickCount}`);
    fs.mkdirSync(b);
    return b;
  });

  const remove = async () => {
    if (removed) return;
    removed = true;
    for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
    await gluster('volume', 'stop', name, 'force').catch(() => undefined);
    await gluster('volume', 'delete', name).catch(() => undefined);
    const ours = processesNaming(dir);
    for (const p of ours) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    const deadline = Date.now() + 10_000;
    while (ours.some((p) => alive(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // brick sockets and logs live where glusterd puts them, outside our folder
    for (const p of ours) {
      const s = p.args[p.args.indexOf('-S') + 1];
      if (p.args.includes('-S') && s?.startsWith('/var/run/gluster/')) fs.rmSync(s, { force: true });
    }
    for (const b of bricks) fs.rmSync(path.join(BRICK_LOG_DIR, `${b.slice(1).replace(/\//g, '-')}.log`), { force: true });
    // deleting the namespace deletes its end of the veth pair, and with it ours
    for (const n of cutNets.values()) {
      await run('ip', ['netns', 'del', n.ns]).catch(() => undefined);
      await run('ip', ['link', 'del', n.hostIf]).catch(() => undefined);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    unlock();
  };

  try {
    // glusterd refuses 127.0.0.1 for bricks, so they are named by the hostname, which must resolve
    await dns.promises.lookup(host).catch(() => {
      throw new Error(`this machine's hostname "${host}" does not resolve; GlusterFS bricks are named by it (add "127.0.1.1 ${host}" to /etc/hosts)`);
    });
    if (await portInUse(GLUSTERD_PORT, host)) {
      throw new Error(`a glusterd already listens on ${host}:${GLUSTERD_PORT}; these tests start their own (stop it first)`);
    }
    const state = path.join(dir, 'state');
    const runDir = path.join(dir, 'run');
    fs.mkdirSync(state);
    fs.mkdirSync(runDir);
    fs.writeFileSync(path.join(dir, 'glusterd.vol'), [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${state}`,
      `    option run-directory ${runDir}`,
      `    option glusterd-sockfile ${sock}`,
      '    option transport-type socket',
      `    option transport.socket.listen-port ${GLUSTERD_PORT}`,
      // the hostname resolves to loopback here: nothing of the test volume is reachable from outside
      `    option transport.socket.bind-address ${host}`,
      '    option ping-timeout 0',
      '    option event-threads 1',
      'end-volume',
      '',
    ].join('\n'));
    await run('glusterd', ['-f', path.join(dir, 'glusterd.vol'), '-p', path.join(dir, 'glusterd.pid'),
      '-l', path.join(dir, 'glusterd.log'), '--log-level=WARNING']);
    const deadline = Date.now() + 20_000;
    for (;;) {
      try { await gluster('volume', 'list'); break; } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const replica = opts.replica ?? 3;
    bricks.push(...newBricks(replica));
    const shape = opts.arbiter ? ['replica', String(replica), 'arbiter', String(opts.arbiter)] : replica > 1 ? ['replica', String(replica)] : [];
    await gluster('volume', 'create', name, ...shape, ...bricks.map((b) => `${host}:${b}`), 'force');
    for (const [k, v] of Object.entries(opts.options ?? {})) await gluster('volume', 'set', name, k, v);
    await gluster('volume', 'start', name);
    for (let i = 0; i < (opts.mounts ?? 2); i++) {
      const m = path.join(dir, `mount${i + 1}`);
      fs.mkdirSync(m);
      if (opts.cuttableMounts?.includes(i)) {
        const n = await makeCutNet((await dns.promises.lookup(host, { family: 4 })).address, (net) => cutNets.set(m, net));
        await run('nsenter', [`--net=/var/run/netns/${n.ns}`, 'mount', '-t', 'glusterfs', `${host}:/${name}`, m]);
      } else {
        await run('mount', ['-t', 'glusterfs', `${host}:/${name}`, m]);
      }
      mounts.push(m);
    }
  } catch (err) {
    await remove();
    throw err;
  }

  return {
    name,
    host,
    bricks,
    mounts,
    gluster,
    newBricks: (n) => {
      const made = newBricks(n);
      bricks.push(...made);
      return made;
    },
    async brickPid(brick) {
      const xml = await gluster('volume', 'status', name, `${host}:${brick}`, '--xml');
      const m = /<status>1<\/status>[\s\S]*?<pid>(\d+)<\/pid>/.exec(xml);
      return m ? Number(m[1]) : undefined;
    },
    fuseClientPid(mount) {
      return processesNaming(mount).find((p) => p.args.includes('--process-name') && p.args.includes('fuse') && p.args.includes(mount))?.pid;
    },
    async healPending() {
      // (heal info runs glfsheal, which asks glusterd on its default socket, not ours)
      const out = await gluster('volume', 'heal', name, 'statistics', 'heal-count');
      const counts = [...out.matchAll(/Number of entries: (\S+)/g)].map((m) => Number(m[1]));
      if (counts.length === 0 || counts.some((n) => !Number.isFinite(n))) return undefined;
      return counts.reduce((a, b) => a + b, 0);
    },
    async cut(mount) {
      const n = cutNets.get(mount);
      if (!n) throw new Error(`${mount} was not made cuttable (createVolume's cuttableMounts)`);
      await run('ip', ['link', 'set', n.hostIf, 'down']);
    },
    async restore(mount) {
      const n = cutNets.get(mount);
      if (!n) throw new Error(`${mount} was not made cuttable (createVolume's cuttableMounts)`);
      await run('ip', ['link', 'set', n.hostIf, 'up']);
    },
    remove,
  };
}
