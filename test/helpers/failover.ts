// What the failover drills share (test/lease.test.ts, test/gluster.test.ts, bench/failover.ts): daemons of one
// deployment (--etcd, one --etcd-prefix, one data dir or several mounts of it) under an upload loop that
// records every acknowledged upload and which daemon answered 201 when, so a drill can assert that no
// acknowledged upload is lost, no address is handed out twice, and no two daemons answered 201 at once.

import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import { spawn, type ChildProcess } from 'child_process';
import path from 'path';
import type { Test } from 'tap';
import type { EtcdCluster } from './etcd';

/** build/bin/bitdrop.js, from test/helpers (tests) or build/test/helpers (bench/failover.ts) */
const CLI = [path.resolve(__dirname, '..', '..', 'build', 'bin', 'bitdrop.js'), path.resolve(__dirname, '..', '..', 'bin', 'bitdrop.js')]
  .find((f) => fs.existsSync(f)) ?? path.resolve(__dirname, '..', '..', 'build', 'bin', 'bitdrop.js');

export interface Acked { id: string; sha256: string; daemon: string; at: number; address?: string }

/** One daemon process of the deployment, started with `--standby` (it leads at once when no one does). */
export interface Member {
  name: string;
  proc: ChildProcess;
  output(): string;
  /** its URL once it serves ('' before) */
  url(): string;
  /** resolves with its URL once it leads and serves */
  serving(timeoutMs?: number): Promise<string>;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  stop(): Promise<void>;
}

export function startMember(name: string, args: string[], env: Record<string, string> = {}): Member {
  const proc = spawn(process.execPath, [CLI, 'start', '--standby', '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--tor', 'off', ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const url = () => {
    const m = /serving\s+(http:\/\/\S+?)\/?\s/.exec(out);
    return m && /^ready\s/m.test(out) ? m[1] : '';
  };
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    name, proc, url, alive,
    output: () => out,
    exited: () => exit,
    serving: async (timeoutMs = 90_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const u = url();
        if (u) return u;
        if (!alive()) throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before it served:\n${out}`);
        if (Date.now() > deadline) throw new Error(`${name} did not serve in ${timeoutMs} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async () => {
      if (!alive()) return;
      try { proc.kill('SIGCONT'); } catch { /* gone */ }
      proc.kill('SIGKILL');
      await exit;
    },
  };
}

/** PUT of `body` as an upload; resolves with the file's id on 201, undefined on anything else. */
export function put(base: string, body: Buffer, timeoutMs = 20_000): Promise<{ status: number; id?: string }> {
  return new Promise((resolve) => {
    const req = http.request(`${base}/drill.bin`, { method: 'PUT', agent: false, headers: { 'content-length': body.length, accept: 'text/plain' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        const m = /\/([A-Za-z0-9_-]{22})\b/.exec(text);
        resolve({ status: res.statusCode ?? 0, id: res.statusCode === 201 && m ? m[1] : undefined });
      });
      res.on('error', () => resolve({ status: 0 }));
    });
    req.on('error', () => resolve({ status: 0 }));
    req.setTimeout(timeoutMs, () => req.destroy());
    req.end(body);
  });
}

export function get(url: string, timeoutMs = 20_000, json = false): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, headers: json ? { accept: 'application/json' } : {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', () => resolve({ status: 0, body: Buffer.alloc(0) }));
    });
    req.on('error', () => resolve({ status: 0, body: Buffer.alloc(0) }));
    req.setTimeout(timeoutMs, () => req.destroy());
  });
}

/**
 * Uploads to every daemon of the deployment in turn, all the time, until stopped; records each 201 with the
 * daemon and the time it came. `sizes` cycles (small inline files and multi-chunk ones).
 */
export class UploadLoop {
  readonly acked: Acked[] = [];
  attempts = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly members: () => Member[], sizes = [3000, 70_000, 300_000]) {
    this.done = (async () => {
      for (let i = 0; !this.stopped; i++) {
        let any = false;
        for (const m of this.members()) {
          const base = m.url();
          if (!base || !m.alive()) continue;
          any = true;
          const body = crypto.randomBytes(sizes[i % sizes.length]);
          this.attempts++;
          const res = await put(base, body, 10_000);
          if (res.id) this.acked.push({ id: res.id, sha256: crypto.createHash('sha256').update(body).digest('hex'), daemon: m.name, at: Date.now() });
        }
        if (!any) await new Promise((r) => setTimeout(r, 50));
      }
    })();
  }

  /** resolves once `n` more uploads were acknowledged (by anyone) */
  async more(n: number, timeoutMs = 90_000): Promise<void> {
    const want = this.acked.length + n;
    const deadline = Date.now() + timeoutMs;
    while (this.acked.length < want) {
      if (Date.now() > deadline) throw new Error(`only ${this.acked.length - want + n} of ${n} more uploads acknowledged in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** pairs of 201s from two different daemons less than `windowMs` apart (two leaders at once) */
  overlaps(windowMs = 1000): string[] {
    const out: string[] = [];
    const sorted = [...this.acked].sort((a, b) => a.at - b.at);
    for (let i = 1; i < sorted.length; i++) {
      const a = sorted[i - 1];
      const b = sorted[i];
      if (a.daemon !== b.daemon && b.at - a.at < windowMs) {
        // a handover can be this quick; two leaders show as the two names interleaving
        const later = sorted.slice(i + 1).find((x) => x.daemon === a.daemon && x.at - b.at < windowMs);
        if (later) out.push(`${a.daemon}@${a.at} ${b.daemon}@${b.at} ${later.daemon}@${later.at}`);
      }
    }
    return out;
  }
}

/**
 * Every acknowledged upload, fetched from `base`: the ones missing or different. An upload not paid yet
 * (402 in paid mode) is checked through its JSON view (its manifest's SHA-256); the others byte by byte.
 */
export async function missing(base: string, acked: Acked[]): Promise<string[]> {
  const bad: string[] = [];
  for (const a of acked) {
    const res = await get(`${base}/${a.id}`);
    if (res.status === 402) {
      const v = await get(`${base}/${a.id}`, 20_000, true);
      const sha = (JSON.parse(v.body.toString() || '{}') as { sha256?: string }).sha256;
      if (sha !== a.sha256) bad.push(`${a.id} (${a.daemon}): 402, view ${v.status} sha256 ${sha}`);
    } else if (res.status !== 200 || crypto.createHash('sha256').update(res.body).digest('hex') !== a.sha256) {
      bad.push(`${a.id} (${a.daemon}): ${res.status}`);
    }
  }
  return bad;
}

/** Where a process waits (each thread's syscall and the files it has open under `dir`): for a drill's failure. */
export function whereStuck(pid: number, dir: string): string {
  const out: string[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      let sys = '';
      let wchan = '';
      try { sys = fs.readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').trim(); } catch { /* gone */ }
      try { wchan = fs.readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8').trim(); } catch { /* gone */ }
      if (!/^running/.test(sys)) out.push(`thread ${tid}: ${wchan} syscall ${sys.split(' ').slice(0, 3).join(' ')}`);
    }
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith(dir)) out.push(`fd ${fd} → ${target}`);
      } catch { /* closed */ }
    }
  } catch (err) {
    out.push(String(err));
  }
  return out.join('\n');
}

/** The payment address of every acknowledged upload (paid mode): addresses given more than once. */
export async function duplicateAddresses(base: string, acked: Acked[]): Promise<string[]> {
  const seen = new Map<string, string>();
  const dup: string[] = [];
  for (const a of acked) {
    const res = await get(`${base}/${a.id}`, 20_000, true);
    const address = (JSON.parse(res.body.toString() || '{}') as { address?: string }).address;
    if (!address) { dup.push(`${a.id}: no address (${res.status})`); continue; }
    a.address = address;
    if (seen.has(address)) dup.push(`${address}: ${seen.get(address)} and ${a.id}`);
    seen.set(address, a.id);
  }
  return dup;
}

/** The etcd drills, the same on a local data dir (test/lease) and on GlusterFS (test/gluster-failover). */
export interface EtcdDrill {
  etcd: EtcdCluster;
  loop: UploadLoop;
  /** the daemon leading now, and the one standing by */
  primary: Member;
  standby: Member;
}

/** kill -9 of the etcd leader member: the primary keeps its lease and serves on; the member comes back. */
export async function etcdLeaderKillDrill(t: Test, d: EtcdDrill): Promise<void> {
  await d.loop.more(3);
  const m = await d.etcd.leader();
  t.ok(m, 'etcd has a leader');
  const before = d.loop.acked.length;
  const fatals = () => (d.primary.output().match(/^FATAL/gm) ?? []).length;
  const fatalBefore = fatals();
  await d.etcd.kill(m!);
  await d.loop.more(10, 60_000);
  t.ok(d.primary.alive() && d.primary.url(), 'the primary still serves');
  t.equal(fatals(), fatalBefore, 'and never fenced');
  t.ok(d.loop.acked.slice(before).every((x) => x.daemon === d.primary.name), 'every upload since was answered by the primary alone');
  await d.etcd.start(m!);
  await d.etcd.healthy();
}

/**
 * Loss of etcd quorum (2 of 3 members killed): the leader fences itself and exits 75, no upload is
 * acknowledged past its fencing deadline or while there is no quorum, the standby does not take over; quorum
 * comes back and the standby serves. Resolves with the standby's URL.
 */
export async function quorumLossDrill(t: Test, d: EtcdDrill): Promise<string> {
  await d.loop.more(5);
  const lost = d.etcd.members.slice(0, 2);
  const cutAt = Date.now();
  for (const m of lost) await d.etcd.kill(m);
  const ex = await d.primary.exited();
  const fencedMs = Date.now() - cutAt;
  t.equal(ex.code, 75, `the leader fenced itself and exited (75) ${fencedMs} ms after quorum was lost`);
  // the renewal loop or the fence timer, whichever notices first at the deadline, says why
  t.match(d.primary.output(), /FATAL\s+the leader lease (could not be renewed for 7 s|was not renewed in time)/, 'saying why');
  const ackedAtFence = d.loop.acked.length;
  const lastAck = Math.max(...d.loop.acked.map((x) => x.at));
  t.ok(lastAck <= cutAt + 7000 + 1000, 'no upload acknowledged past the fencing deadline');
  // no one serves while etcd has no quorum
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(d.loop.acked.length, ackedAtFence, 'no upload acknowledged without quorum');
  t.equal(d.standby.url(), '', 'the standby does not take over without quorum');
  const res = await put(d.primary.url() || 'http://127.0.0.1:1', Buffer.from('x'), 2000);
  t.not(res.status, 201, 'the fenced leader answers nothing');
  for (const m of lost) await d.etcd.start(m);
  await d.etcd.healthy();
  const url = await d.standby.serving(90_000);
  t.comment(`the leader fenced ${fencedMs} ms after quorum was lost; service resumed ${Date.now() - cutAt} ms after (quorum came back after ~3 s)`);
  await d.loop.more(5);
  return url;
}
