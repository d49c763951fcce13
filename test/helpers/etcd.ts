// A real 3-member etcd cluster (Debian's etcd-server 3.4) on loopback for tests and benches: members started
// by hand with their data in a folder of our own, on free ports; `remove()` kills them and deletes the folder
// and is safe to call after any failure. Members can be killed, stopped and started again (the drills).
// Fails loudly, never skips, when etcd is missing (scripts/test-setup installs it).

import { spawn, execFileSync, type ChildProcess } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  proc?: ChildProcess;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** every member's client URL (what --etcd takes, repeated) */
  endpoints: string[];
  /** the member that leads the raft group now (asks each live member) */
  leader(): Promise<EtcdMember | undefined>;
  kill(m: EtcdMember, signal?: NodeJS.Signals): Promise<void>;
  /** starts a member again with its data (after kill) */
  start(m: EtcdMember): Promise<void>;
  /** resolves once a member answers with a leader (the cluster has quorum) */
  healthy(timeoutMs?: number): Promise<void>;
  remove(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function status(url: string): Promise<{ leader: string; member: string } | undefined> {
  try {
    const res = await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
    if (!res.ok) return undefined;
    const j = await res.json() as { leader?: string; header?: { member_id?: string } };
    if (!j.leader || j.leader === '0') return undefined;
    return { leader: j.leader, member: j.header?.member_id ?? '' };
  } catch {
    return undefined;
  }
}

export async function createEtcd(opts: { members?: number } = {}): Promise<EtcdCluster> {
  try {
    execFileSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' });
  } catch {
    throw new Error('etcd is not installed: apt-get install etcd-server (scripts/test-setup does it as root)');
  }
  // Members' data on tmpfs when there is one: a member's WAL fsync on a disk that GlusterFS bricks and other
  // tests keep busy can stall it for seconds, which is etcd's own disk's business, not what these tests are
  // about (in production etcd wants a disk of its own). Election timing is raised for a loaded 2-core machine.
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'bitdrop-etcd-'));
  const n = opts.members ?? 3;
  const members: EtcdMember[] = [];
  for (let i = 0; i < n; i++) {
    members.push({ name: `m${i + 1}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}` });
  }
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const logs = new Map<string, string>();

  const start = async (m: EtcdMember) => {
    const log = fs.openSync(path.join(dir, `${m.name}.log`), 'a');
    m.proc = spawn('etcd', [
      '--name', m.name, '--data-dir', path.join(dir, m.name),
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initial, '--initial-cluster-token', path.basename(dir), '--initial-cluster-state', 'new',
      '--log-level', 'warn', '--logger', 'zap', '--heartbeat-interval', '200', '--election-timeout', '2000',
    ], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    logs.set(m.name, path.join(dir, `${m.name}.log`));
  };
  const kill = async (m: EtcdMember, signal: NodeJS.Signals = 'SIGKILL') => {
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
  };
  const leader = async () => {
    for (const m of members) {
      const s = await status(m.clientUrl);
      if (!s) continue;
      for (const o of members) {
        const so = await status(o.clientUrl);
        if (so && so.member === s.leader) return o;
      }
    }
    return undefined;
  };
  const healthy = async (timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of members) if (await status(m.clientUrl)) return;
      if (Date.now() > deadline) {
        const tail = [...logs.values()].map((f) => { try { return fs.readFileSync(f, 'utf8').slice(-1500); } catch { return ''; } }).join('\n');
        throw new Error(`etcd: no member has a leader after ${timeoutMs} ms\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const remove = async () => {
    for (const m of members) {
      if (m.proc && m.proc.exitCode === null && m.proc.signalCode === null) {
        try { m.proc.kill('SIGCONT'); } catch { /* gone */ }
        await kill(m, 'SIGKILL');
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const m of members) await start(m);
    await healthy();
  } catch (err) {
    await remove();
    throw err;
  }
  return { members, endpoints: members.map((m) => m.clientUrl), leader, kill, start, healthy, remove };
}
