// bench/failover: takeover times of a bitdrop deployment led through a lease in etcd (lib/lease), per failure
// kind: from the failure to the standby's first 201 on an upload. A 3-member etcd on loopback, two daemons
// (--standby, the defaults: lease 10 s, margin 3 s) on one data dir on this machine's disk; with --gluster, on a
// replica-3 GlusterFS volume mounted twice (each mount's client in a network namespace of its own), adding the
// SIGSTOP of the leader's FUSE client and a network cut of the leader's mount. An upload loop runs against the
// leader all along, so a failure catches it mid-write. Prints min/median/max of --runs runs per kind (goal:
// ≤ 15 s after any failure of the leader). --only kill,stop,term,fuse,cut picks kinds.
//
//   npm run build && node build/bench/failover.js [--runs 5] [--gluster] [--only KINDS]
// Needs etcd-server (and root + glusterfs-server with --gluster); scripts/test-setup installs them.

import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { createEtcd } from '../test/helpers/etcd';
import { createVolume, type GlusterVolume } from '../test/helpers/gluster';
import { startMember, put, whereStuck, UploadLoop, type Member } from '../test/helpers/failover';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 5);
const GLUSTER = process.argv.includes('--gluster');
const ONLY = (() => { const i = process.argv.indexOf('--only'); return i > 0 ? process.argv[i + 1].split(',') : undefined; })();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function waitStandby(m: Member) {
  const deadline = Date.now() + 60_000;
  while (!/^standby\s/m.test(m.output())) {
    if (!m.alive() || Date.now() > deadline) throw new Error(`${m.name} never stood by:\n${m.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const etcd = await createEtcd();
  let vol: GlusterVolume | undefined;
  const local = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-bench-failover-'));
  const members: Member[] = [];
  let stopLoop = async () => {};
  try {
    if (GLUSTER) vol = await createVolume({ replica: 3, mounts: 2, cuttableMounts: [0, 1], options: { 'network.ping-timeout': '10', 'features.locks-revocation-secs': '5' } });
    const dirs = vol ? vol.mounts.map((m) => path.join(m, 'bitdrop')) : [local, local];
    const args = (dir: string) => ['--free', '--data-dir', dir, ...etcd.endpoints.flatMap((e) => ['--etcd', e]), '--etcd-prefix', `/bench/${crypto.randomBytes(4).toString('hex')}`];
    const prefixArgs = args(dirs[0]).slice(-2);
    const start = (i: number) => {
      const m = startMember(`d${members.length}`, [...args(dirs[i]).slice(0, -2), ...prefixArgs]);
      members.push(m);
      return m;
    };
    let leader = start(0);
    let leaderSide = 0;
    await leader.serving();
    let standby = start(1);
    await waitStandby(standby);

    const kinds: Array<{ key?: string; name: string; fail: (m: Member) => void; after?: () => void }> = [
      { key: 'kill', name: 'kill -9 of the leader', fail: (m) => m.proc.kill('SIGKILL') },
      { key: 'stop', name: 'SIGSTOP of the leader', fail: (m) => m.proc.kill('SIGSTOP') },
      { key: 'term', name: 'clean stop (SIGTERM) of the leader', fail: (m) => m.proc.kill('SIGTERM') },
    ];
    let fuse: number | undefined;
    if (vol) {
      kinds.push({
        key: 'fuse',
        name: "SIGSTOP of the leader's FUSE client",
        fail: () => { fuse = vol!.fuseClientPid(vol!.mounts[leaderSide]); process.kill(fuse!, 'SIGSTOP'); },
        after: () => { if (fuse) process.kill(fuse, 'SIGCONT'); fuse = undefined; },
      });
      let cut: string | undefined;
      kinds.push({
        key: 'cut',
        name: "network cut of the leader's mount",
        fail: () => { cut = vol!.mounts[leaderSide]; void vol!.cut(cut); },
        after: () => { if (cut) void vol!.restore(cut); cut = undefined; },
      });
    }
    // uploads all the time, as in production: the failure catches the leader mid-write (chunk temp files,
    // its LevelDB log), which is what a new leader must never wait on
    const loop = new UploadLoop(() => members.filter((m) => m === leader));
    stopLoop = () => loop.stop();
    const results: Array<{ name: string; ms: number[] }> = [];
    for (const kind of kinds) {
      if (ONLY && !ONLY.includes(kind.key ?? '')) continue;
      const ms: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const at = Date.now();
        kind.fail(leader);
        const url = await standby.serving(120_000).catch((err) => {
          process.stdout.write(`STALL: ${whereStuck(standby.proc.pid!, vol ? path.dirname(vol.mounts[0]) : local)}\n`);
          kind.after?.(); // a stopped FUSE client would hold every process on its mount, and the clean-up
          throw err;
        });
        for (;;) {
          if ((await put(url, crypto.randomBytes(1000), 5000)).status === 201) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        ms.push(Date.now() - at);
        process.stdout.write(`${kind.name}: run ${run + 1}: ${sec(ms[ms.length - 1])}\n`);
        kind.after?.();
        const old = leader;
        try { old.proc.kill('SIGCONT'); } catch { /* gone */ }
        await Promise.race([old.exited(), new Promise((r) => setTimeout(r, 30_000))]);
        await old.stop();
        leader = standby;
        leaderSide = 1 - leaderSide;
        standby = start(1 - leaderSide);
        await waitStandby(standby);
      }
      results.push({ name: kind.name, ms });
    }
    process.stdout.write(`\ntakeover (failure → the standby's first 201), ${RUNS} runs each, lease 10 s, margin 3 s, ${vol ? 'GlusterFS replica 3 mounted twice' : 'one data dir on a local disk'}, 3-member etcd on loopback:\n`);
    for (const r of results) {
      process.stdout.write(`  ${r.name.padEnd(38)} min ${sec(Math.min(...r.ms))}  median ${sec(median(r.ms))}  max ${sec(Math.max(...r.ms))}   goal ≤ 15 s: ${Math.max(...r.ms) <= 15_000 ? 'met' : 'MISSED'}\n`);
    }
  } finally {
    await stopLoop();
    for (const m of members) await m.stop().catch(() => undefined);
    await vol?.remove();
    await etcd.remove();
    fs.rmSync(local, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
