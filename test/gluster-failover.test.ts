// The failover drills of issue 25 on the real thing: a GlusterFS replica-3 volume on loopback mounted twice
// (two "machines"), a 3-member etcd, and two daemons of one deployment (--etcd, --standby) with payments,
// under an upload loop and a payment loop. Every drill asserts: 0 acknowledged uploads lost, 0 payment
// addresses handed out twice, never two daemons answering 201 at once.
//   rolling restart of the bricks, one at a time (the operation that once split the brain): nobody takes over
//   SIGSTOP of the primary: its watchdog kills it; the standby takes over within the lease TTL + margin
//   SIGSTOP of the primary's FUSE client: it fences itself and hands the lease over; it dies once resumed
//   a network cut of the primary's mount (its FUSE client in a network namespace of the test's own, the link
//   taken down) and its return: it fences itself, the standby takes over, nothing of it lands afterwards
//   kill -9 of the etcd leader member: the primary keeps its lease and serves on
//   loss of etcd quorum: the leader fences itself, no one serves, nothing is lost; service resumes with quorum

import t, { type Test } from 'tap';
import fs from 'fs';
import path from 'path';
import { createVolume, type GlusterVolume } from './helpers/gluster';
import { createEtcd } from './helpers/etcd';
import { tmpDir } from './helpers/daemon';
import { waitFor } from './helpers/tor-lone';
import { openDevnet } from './helpers/devnet';
import { devnetPay } from '../lib/devnet/wallet';
import { startMember, UploadLoop, missing, duplicateAddresses, get, whereStuck, etcdLeaderKillDrill, quorumLossDrill, type Member, type Acked } from './helpers/failover';

const view = async (base: string, id: string) =>
  JSON.parse((await get(`${base}/${id}`, 20_000, true)).body.toString() || '{}') as { state?: string; address?: string; amountDue?: number };

t.test('failover drills on a replica-3 volume with a 3-member etcd', async (t) => {
  const started = Date.now();
  // docs/scale-out.md: a client that is stopped but alive keeps its locks (AFR's eager locks on the files it
  // wrote) for ever; revoking locks held 5 s under contention lets the next leader delete the old log.
  const vol: GlusterVolume = await createVolume({ replica: 3, mounts: 2, cuttableMounts: [0, 1], options: { 'network.ping-timeout': '10', 'features.locks-revocation-secs': '5' } });
  t.teardown(() => vol.remove());
  const etcd = await createEtcd();
  t.teardown(() => etcd.remove());
  const devnetDir = tmpDir('bitdrop-failover-devnet-', t);
  const devnet = await openDevnet(t, { dir: devnetDir });
  const members: Member[] = [];
  t.teardown(async () => { for (const m of members) await m.stop(); });
  const args = (mount: string) => ['--data-dir', path.join(mount, 'bitdrop'), '--network', 'regtest', '--xpub', devnet.xpub, '--electrum', devnet.electrumUrl,
    ...etcd.endpoints.flatMap((e) => ['--etcd', e]), '--etcd-prefix', `/bitdrop/${vol.name}`];
  const mountOf = new Map<Member, string>();
  const start = (name: string, mount: string) => {
    const m = startMember(name, args(mount));
    members.push(m);
    mountOf.set(m, mount);
    return m;
  };
  const leader = () => members.find((m) => m.alive() && m.url() && !/^FATAL/m.test(m.output()));

  let primary = start('a1', vol.mounts[0]);
  await primary.serving();
  let standby = start('b1', vol.mounts[1]);
  await waitFor('the standby line', () => /^standby\s/m.test(standby.output()), 60_000);

  const loop = new UploadLoop(() => members);
  // Payments run beside the uploads: an acknowledged upload is paid every second and a block mined.
  const paid: Acked[] = [];
  let paying = true;
  const payer = (async () => {
    while (paying) {
      await new Promise((r) => setTimeout(r, 1000));
      const l = leader();
      // the newest acknowledged upload, as people pay the address they were just given: an address thousands of
      // uploads old is beyond the watch budget (500 hot subscriptions) after a takeover and is found by the cold
      // sweep, paced over a day — not lost, but not credited within this test
      const next = [...loop.acked].reverse().find((a) => !paid.includes(a));
      if (!l || !next) continue;
      const v = await view(l.url(), next.id).catch(() => undefined);
      if (!v?.address || v.amountDue === undefined) continue;
      try {
        await devnetPay(devnetDir, v.address, v.amountDue + 1000);
        devnet.mine(1);
        paid.push(next);
      } catch { /* the devnet's wallet is busy: next time */ }
    }
  })();
  t.teardown(async () => { paying = false; await payer; await loop.stop(); });
  await loop.more(10);

  const check = async (t: Test, what: string) => {
    const l = leader();
    t.ok(l, `${what}: one daemon serves`);
    t.same(await missing(l!.url(), loop.acked), [], `${what}: all ${loop.acked.length} acknowledged uploads are there, byte-identical`);
    t.same(await duplicateAddresses(l!.url(), loop.acked), [], `${what}: ${loop.acked.length} uploads, ${loop.acked.length} distinct payment addresses`);
    t.same(loop.overlaps(), [], `${what}: never two daemons answering 201 at once`);
  };

  await t.test('rolling restart of the bricks under uploads and payments: no takeover, nothing lost', async (t) => {
    const acks = loop.acked.length;
    for (const brick of vol.bricks.slice(0, 3)) {
      const pid = await vol.brickPid(brick);
      t.ok(pid, `brick ${path.basename(brick)} runs`);
      process.kill(pid!, 'SIGTERM');
      await waitFor(`brick ${path.basename(brick)} down`, async () => (await vol.brickPid(brick)) === undefined, 30_000, 200);
      await loop.more(5);
      await vol.gluster('volume', 'start', vol.name, 'force');
      await waitFor(`brick ${path.basename(brick)} back`, async () => (await vol.brickPid(brick)) !== undefined, 60_000, 500);
      // the operator's drill: the next brick only once this one has healed
      let lastHeal = 0;
      await waitFor('the heal', async () => {
        if ((await vol.healPending()) === 0) return true;
        if (Date.now() - lastHeal > 3000) { lastHeal = Date.now(); await vol.gluster('volume', 'heal', vol.name).catch(() => undefined); }
        return false;
      }, 120_000, 500).catch(() => t.comment(`brick ${path.basename(brick)}: heal not finished after 120 s; going on`));
      await loop.more(3);
    }
    t.ok(loop.acked.length > acks + 20, `${loop.acked.length - acks} uploads acknowledged during the rolling restart`);
    t.equal(standby.url(), '', 'the standby never took over');
    t.notMatch(primary.output(), /FATAL/, 'the primary never fenced');
    t.ok(loop.acked.every((a) => a.daemon === primary.name), 'every upload was answered by the primary');
    await check(t, 'after the rolling restart');
  });

  await t.test('SIGSTOP of the primary: its watchdog kills it, the standby takes over', async (t) => {
    await loop.more(3);
    const at = Date.now();
    primary.proc.kill('SIGSTOP');
    await standby.serving(60_000);
    const takeoverMs = Date.now() - at;
    t.equal((await primary.exited()).signal, 'SIGKILL', 'the frozen primary was killed by its watchdog');
    t.ok(takeoverMs < 30_000, `the standby served ${takeoverMs} ms after the SIGSTOP`);
    t.comment(`takeover after SIGSTOP of the primary (GlusterFS): ${takeoverMs} ms`);
    await loop.more(5);
    await check(t, 'after SIGSTOP of the primary');
    const old = primary;
    primary = standby;
    standby = start('a2', mountOf.get(old)!);
    await waitFor('the standby line', () => /^standby\s/m.test(standby.output()), 60_000);
  });

  // Once failed 2 of 5 runs: the new leader removed the stopped client's chunk temp file at start-up; the unlink
  // waited on that client's entry lock, holding the directory's lock on its own mount, and its start-up walk of
  // the data dir blocked its event loop behind it until its watchdog killed it. Each term now writes and reads
  // only its own temp dir and database dir (lib/store/blobs.ts#prepare).
  await t.test("SIGSTOP of the primary's FUSE client: it fences itself, the standby takes over", async (t) => {
    await loop.more(3);
    const fuse = vol.fuseClientPid(mountOf.get(primary)!);
    t.ok(fuse, "the primary's mount has a FUSE client");
    const at = Date.now();
    process.kill(fuse!, 'SIGSTOP');
    try {
      await standby.serving(60_000).catch((err) => {
        t.comment(`the standby waits here:\n${whereStuck(standby.proc.pid!, path.dirname(vol.mounts[0]))}`);
        throw err;
      });
      const takeoverMs = Date.now() - at;
      t.ok(takeoverMs < 30_000, `the standby served ${takeoverMs} ms after the SIGSTOP of the FUSE client`);
      t.comment(`takeover after SIGSTOP of the primary's FUSE client: ${takeoverMs} ms`);
      // the volume watch fences it, or — when a call on the hung mount blocks its event loop — its watchdog kills it
      t.match(primary.output(), /FATAL\s+(the data dir's volume has been unreachable for \d+ s|watchdog: the leader lease was not renewed)/, 'the primary fenced itself, or its watchdog killed it');
      t.comment(`the old primary: ${/^FATAL.*$/m.exec(primary.output())?.[0] ?? '(no FATAL line)'}\n${whereStuck(primary.proc.pid!, path.dirname(vol.mounts[0]))}`);
      await loop.more(5);
    } finally {
      process.kill(fuse!, 'SIGCONT');
    }
    const ex = await primary.exited();
    t.ok(ex.code === 75 || ex.signal === 'SIGKILL', `the old primary ended once its mount answered again (${ex.code ?? ex.signal})`);
    await loop.more(5);
    await check(t, "after SIGSTOP of the primary's FUSE client");
    const old = primary;
    primary = standby;
    standby = start('a3', mountOf.get(old)!);
    await waitFor('the standby line', () => /^standby\s/m.test(standby.output()), 60_000);
  });

  await t.test("network cut of the primary's mount, and its return: it fences itself, the standby takes over", async (t) => {
    await loop.more(3);
    const mount = mountOf.get(primary)!;
    const at = Date.now();
    await vol.cut(mount);
    let acksAtRestore = 0;
    try {
      await standby.serving(60_000).catch((err) => {
        t.comment(`the standby waits here:\n${whereStuck(standby.proc.pid!, path.dirname(vol.mounts[0]))}`);
        throw err;
      });
      const takeoverMs = Date.now() - at;
      t.ok(takeoverMs < 30_000, `the standby served ${takeoverMs} ms after the cut`);
      t.comment(`takeover after a network cut of the primary's mount: ${takeoverMs} ms`);
      t.match(primary.output(), /FATAL\s+(the data dir's volume has been unreachable for \d+ s|watchdog: the leader lease was not renewed)/, 'the primary fenced itself, or its watchdog killed it');
      t.comment(`the old primary: ${/^FATAL.*$/m.exec(primary.output())?.[0] ?? '(no FATAL line)'}\n${whereStuck(primary.proc.pid!, path.dirname(vol.mounts[0]))}`);
      await loop.more(5);
    } finally {
      acksAtRestore = loop.acked.length;
      await vol.restore(mount);
    }
    const ex = await primary.exited();
    t.ok(ex.code === 75 || ex.signal === 'SIGKILL', `the old primary ended (${ex.code ?? ex.signal})`);
    t.notOk(primary.url() && primary.alive(), 'the old primary serves nothing once its mount is back');
    await loop.more(5);
    t.ok(loop.acked.slice(acksAtRestore).every((a) => a.daemon === standby.name), 'after the return every upload is answered by the new primary');
    const firstNew = loop.acked.find((a) => a.daemon === standby.name)!.at;
    t.same(loop.acked.filter((a) => a.daemon === primary.name && a.at >= firstNew).map((a) => a.id), [], 'nothing acknowledged by the old primary once the new one served');
    await check(t, "after a network cut of the primary's mount and its return");
    // the old primary's machine comes back as a standby, on its mount that answers again
    const old = primary;
    primary = standby;
    standby = start('a4', mountOf.get(old)!);
    await waitFor('the old machine stands by again', () => /^standby\s/m.test(standby.output()), 120_000);
    t.equal(standby.url(), '', 'it serves nothing while the new primary leads');
  });

  await t.test('kill -9 of the etcd leader member: the primary keeps its lease and keeps serving', async (t) => {
    await etcdLeaderKillDrill(t, { etcd, loop, primary, standby });
    await check(t, 'after kill -9 of the etcd leader member');
  });

  await t.test('loss of etcd quorum: the leader fences, no one serves, nothing is lost; service resumes with quorum', async (t) => {
    await quorumLossDrill(t, { etcd, loop, primary, standby });
    await check(t, 'after the loss of etcd quorum and its return');
    primary = standby;
  });

  paying = false;
  await payer;
  await loop.stop();
  // Every payment made during the drills counts on the last leader.
  const l = leader();
  t.ok(l, 'a daemon serves after the last drill');
  if (!l) return;
  await waitFor('paid uploads active', async () => {
    for (const p of paid) if ((await view(l.url(), p.id)).state !== 'active') return false;
    return true;
  }, 60_000, 500).catch(() => undefined);
  const states = await Promise.all(paid.map(async (p) => (await view(l.url(), p.id)).state));
  if (states.some((s) => s !== 'active')) t.comment(`a paid upload's view: ${(await get(`${l.url()}/${paid[0].id}`, 20_000, true)).body.toString().slice(0, 600)}`);
  t.ok(paid.length >= 5, `${paid.length} uploads paid during the drills`);
  t.same(states.filter((s) => s !== 'active'), [], 'every one of them active on the last leader: no payment lost');
  t.comment(`${loop.acked.length} uploads acknowledged of ${loop.attempts} attempted; failover drills: ${Math.round((Date.now() - started) / 1000)} s`);
  fs.rmSync(devnetDir, { recursive: true, force: true });
});
