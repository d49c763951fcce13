// bitdrop on a real GlusterFS replica-3 volume on loopback, mounted twice (two "machines"): a primary on
// one mount, a hot standby on the other. The operator's story, with its faults:
//   kill -9 of the primary during uploads and downloads → the standby takes over the same onion and
//   every acknowledged file; the old primary comes back as the standby; a brick dies under 64
//   downloads → none fails, and the brick heals when it returns; the volume grows to 2 × 3 and
//   rebalances while uploads go on → every file intact.

import t, { type Test } from 'tap';
import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import path from 'path';
import { spawn } from 'child_process';
import { createVolume, type GlusterVolume } from './helpers/gluster';
import { createEtcd } from './helpers/etcd';
import { startDaemon, startStandby, randomFile, sha256File, tmpDir, CLI, exec, type Daemon, type Standby } from './helpers/daemon';
import { startLoneTor, waitFor } from './helpers/tor-lone';
import { openDevnet } from './helpers/devnet';
import { devnetPay } from '../lib/devnet/wallet';

interface Stored { id: string; url: string; sha256: string; size: number; address?: string }

/** A file's JSON view (state, address, amount due). */
async function view(base: string, id: string): Promise<{ state: string; address: string; amountDue: number }> {
  const res = await fetch(`${base}/${id}`, { headers: { Accept: 'application/json' } });
  return (await res.json()) as { state: string; address: string; amountDue: number };
}

/** Uploads with curl; resolves with the file's URL on 201, or undefined when no answer came (a killed daemon). */
async function upload(base: string, file: string): Promise<string | undefined> {
  try {
    const { stdout } = await exec('curl', ['-sS', '--max-time', '60', '-w', '\n%{http_code}', '-T', file, `${base}/`]);
    const lines = stdout.trim().split('\n');
    return lines[lines.length - 1] === '201' ? lines[0] : undefined;
  } catch {
    return undefined;
  }
}

/** Downloads through Node's http; resolves with the SHA-256 and status, rejects on a broken transfer. */
function download(url: string): Promise<{ status: number; sha256: string; bytes: number; firstByteAt: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const h = crypto.createHash('sha256');
      let bytes = 0;
      let firstByteAt = 0;
      res.on('data', (d: Buffer) => { if (!firstByteAt) firstByteAt = Date.now(); h.update(d); bytes += d.length; });
      res.on('end', () => (res.complete ? resolve({ status: res.statusCode!, sha256: h.digest('hex'), bytes, firstByteAt }) : reject(new Error('transfer cut'))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error('download timed out')));
  });
}

/** The daemon's open files under `dir` (a standby must hold none: no lock, no database). */
function openFilesUnder(pid: number, dir: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** TCP ports a process listens on (a standby listens on none). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set(fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try { return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]; } catch { return undefined; }
  }).filter(Boolean));
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1].split(':')[1], 16));
    }
  }
  return ports;
}

async function verifyAll(t: Test, base: string, files: Stored[], what: string) {
  let intact = 0;
  for (const f of files) {
    const got = await download(`${base}/${f.id}`);
    if (got.status === 200 && got.sha256 === f.sha256) intact++;
    else t.fail(`${what}: ${f.id} came back ${got.status}, ${got.bytes} bytes, sha256 ${got.sha256.slice(0, 12)}…`);
  }
  t.equal(intact, files.length, `${what}: all ${files.length} acknowledged files byte-identical`);
}

/** The detached onions a tor publishes (GETINFO onions/detached), on a control connection of our own. */
async function onionsOn(tor: { connect(): Promise<{ getInfo(k: string): Promise<string>; close(): void }> }): Promise<string[]> {
  const control = await tor.connect();
  try {
    return (await control.getInfo('onions/detached')).split('\n').map((s) => s.trim()).filter(Boolean);
  } finally {
    control.close();
  }
}

const idOf = (url: string) => new URL(url).pathname.split('/')[1];

t.test('a replica-3 volume, a primary and a hot standby on two mounts', async (t) => {
  const started = Date.now();
  // 10 s, as docs/scale-out.md advises: a primary cut off from the volume fences itself after 5 s
  const vol: GlusterVolume = await createVolume({ replica: 3, mounts: 2, options: { 'network.ping-timeout': '10' } });
  t.teardown(() => vol.remove());
  const work = tmpDir('bitdrop-gluster-files-');
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  const torA = await startLoneTor();
  t.teardown(() => torA.stop());
  const torB = await startLoneTor();
  t.teardown(() => torB.stop());
  // Every daemon of the deployment leads through a lease in a 3-member etcd (lib/lease).
  const etcd = await createEtcd();
  t.teardown(() => etcd.remove());
  const etcdArgs = [...etcd.endpoints.flatMap((e) => ['--etcd', e]), '--etcd-prefix', `/bitdrop/${vol.name}`];
  const dirA = path.join(vol.mounts[0], 'bitdrop');
  const dirB = path.join(vol.mounts[1], 'bitdrop');
  const daemons: Array<Daemon | Standby> = [];
  t.teardown(async () => { for (const d of daemons) await d.kill9().catch(() => undefined); });
  // The Electrum server outlives the daemons, as a real one would: an external devnet.
  const devnetDir = tmpDir('bitdrop-gluster-devnet-');
  t.teardown(() => fs.rmSync(devnetDir, { recursive: true, force: true }));
  const devnet = await openDevnet(t, { dir: devnetDir });
  const torArgs = (tor: { controlArg: string }) => ['--tor', 'attach', '--tor-control', tor.controlArg,
    '--network', 'regtest', '--xpub', devnet.xpub, '--electrum', devnet.electrumUrl, ...etcdArgs];
  /** Pays a file from the devnet's faucet (enough for many downloads) and waits until `base` says it is active. */
  const pay = async (base: string, f: Stored) => {
    const v = await view(base, f.id);
    await devnetPay(devnetDir, v.address, v.amountDue + 10_000);
    devnet.mine(1);
    await waitFor(`${f.id} active`, async () => (await view(base, f.id)).state === 'active', 30_000, 200);
  };

  const primary = await startDaemon({ dataDir: dirA, args: torArgs(torA), paid: true });
  daemons.push(primary);
  t.match(primary.output(), /^volume\s+GlusterFS volume \S+:\/bd\w+ at .* \(replica 3, ping-timeout 10 s\)/m, 'the primary names the volume it stores on');
  t.notMatch(primary.output(), /WARNING\s+GlusterFS volume/, 'replica 3 has quorum: no warning');
  const onion = await waitFor('the primary onion', () => fs.readFileSync(path.join(dirA, 'tor', 'hostname'), 'utf8').trim());
  const serviceId = onion.replace(/\.onion$/, '');
  t.ok((await onionsOn(torA)).includes(serviceId), 'the primary publishes its onion on its tor');

  const standby = await startStandby({ dataDir: dirB, args: torArgs(torB), paid: true });
  daemons.push(standby);
  t.match(standby.output(), new RegExp(`standby\\s+${dirB} is in use by bitdrop pid ${primary.proc.pid}`), 'the standby says who holds the data dir');
  t.same(openFilesUnder(standby.proc.pid!, vol.mounts[1]), [], 'the standby holds no file of the data dir (no lock, no database)');
  t.same(listeningPorts(standby.proc.pid!), [], 'the standby listens on nothing');
  t.notMatch(standby.output(), /^serving\s/m, 'the standby serves nothing');
  t.same(await onionsOn(torB), [], 'the standby publishes no onion while it waits');

  // A second daemon without --standby never opens the store beside the primary.
  const intruder = spawn(process.execPath, [CLI, 'start', '--free', '--data-dir', dirB, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--tor', 'off', ...etcdArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let intruderOut = '';
  intruder.stdout!.on('data', (d) => { intruderOut += d; });
  intruder.stderr!.on('data', (d) => { intruderOut += d; });
  const intruderCode = await new Promise<number | null>((r) => intruder.once('exit', r));
  t.not(intruderCode, 0, 'a second daemon on the same data dir (other mount) refuses to start');
  t.notMatch(intruderOut, /^serving\s/m, 'and serves nothing');
  t.match(intruderOut, /another bitdrop \(pid \d+ on \S+\) leads \/bitdrop\/\w+ in etcd; stop it first, or wait with --standby/, 'saying who leads');
  // Nor does one without the lease: the store knows it is run with one.
  const loner = await exec(process.execPath, [CLI, 'start', '--free', '--data-dir', dirB, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--tor', 'off'])
    .then(() => ({ code: 0, stderr: '' }), (e) => e as { code: number; stderr: string });
  t.not(loner.code, 0, 'a daemon without --etcd on the data dir refuses to start');

  // Files acknowledged before the fault.
  const sizes = [1, 4096, 300_000, 4 * 1024 * 1024, 9 * 1024 * 1024 + 7, 16 * 1024 * 1024];
  const stored: Stored[] = [];
  for (const [i, size] of sizes.entries()) {
    const file = randomFile(work, size, `before-${i}.bin`);
    const url = await upload(primary.url, file);
    t.ok(url, `upload of ${size} bytes acknowledged`);
    const f: Stored = { id: idOf(url!), url: url!, sha256: await sha256File(file), size };
    f.address = (await view(primary.url, f.id)).address;
    await pay(primary.url, f);
    stored.push(f);
  }

  let primaryUrl = '';
  let current: Daemon | undefined;

  await t.test('kill -9 of the primary during uploads and downloads: the standby takes over', async (t) => {
    let stop = false;
    const during: Stored[] = [];
    let attempted = 0;
    const uploader = (async () => {
      for (let i = 0; !stop; i++) {
        const file = randomFile(work, 2 * 1024 * 1024 + i * 4099, `during-${i}.bin`);
        attempted++;
        const url = await upload(primary.url, file);
        if (url) during.push({ id: idOf(url), url, sha256: await sha256File(file), size: fs.statSync(file).size });
      }
    })();
    const downloaders = [0, 1, 2].map(async (k) => {
      for (let i = k; !stop; i++) await download(`${primary.url}/${stored[i % stored.length].id}`).catch(() => undefined);
    });
    await waitFor('uploads under way', () => during.length >= 3, 60_000).catch((err) => {
      t.comment(`the primary said: ${primary.output().split('\n').filter((l) => /lease|FATAL|error|WARN/i.test(l)).join(' | ').slice(-3000)}`);
      throw err;
    });
    const killedAt = Date.now();
    await primary.kill9();
    stop = true;
    await Promise.all([uploader, ...downloaders]);

    const url = await standby.served(60_000);
    const first = await download(`${url}/${stored[3].id}`);
    const takeoverMs = first.firstByteAt - killedAt;
    t.equal(first.status, 200, 'the standby serves');
    t.ok(takeoverMs <= 30_000, `first byte served ${takeoverMs} ms after kill -9 (≤ 30 s)`);
    t.comment(`takeover: ${takeoverMs} ms from kill -9 of the primary to the standby's first served byte`);
    t.match(standby.output(), /standby\s+.* is free: taking over/, 'the standby says it takes over');

    const detached = await onionsOn(torB);
    t.ok(detached.includes(serviceId), `the standby's own tor publishes the same onion (${serviceId.slice(0, 8)}…)`);
    t.match(standby.output(), new RegExp(`onion\\s+http://${serviceId}\\.onion`), 'and announces it');

    // Files acknowledged during the fault were not paid yet: paying them now also shows the standby's
    // watcher resumed.
    for (const f of during) await pay(url, f);
    await verifyAll(t, url, [...stored, ...during], 'after the takeover');
    const status = JSON.parse((await exec(process.execPath, [CLI, 'status', '--json', '--data-dir', dirB])).stdout);
    const acked = stored.length + during.length;
    t.ok(status.files >= acked && status.files <= acked + (attempted - during.length),
      `${status.files} files stored: the ${acked} acknowledged, none doubled (at most the ${attempted - during.length} unacknowledged ones besides)`);
    stored.push(...during);

    // The ledger came through: every acknowledged file keeps its own address and its payments, none is
    // doubled, and the standby's watcher sees a payment made after the takeover.
    const views = await Promise.all(stored.map((f) => view(url, f.id)));
    t.same(views.slice(0, sizes.length).map((v) => v.address), stored.slice(0, sizes.length).map((f) => f.address), 'paid files keep their addresses');
    t.ok(views.slice(0, sizes.length).every((v) => v.state === 'active'), 'and stay active: no payment lost');
    t.equal(new Set(views.map((v) => v.address)).size, stored.length, `${stored.length} acknowledged files, ${stored.length} distinct payment addresses`);
    t.ok(views.every((v) => v.state === 'active'), 'payments made after the takeover activate files uploaded before it (the watcher resumed)');

    // The old primary comes back: as the standby.
    const back = await startStandby({ dataDir: dirA, args: torArgs(torA), paid: true });
    daemons.push(back);
    t.match(back.output(), new RegExp(`standby\\s+${dirA} is in use by bitdrop pid ${standby.proc.pid}`), 'the old primary comes back as the standby');
    t.same(openFilesUnder(back.proc.pid!, vol.mounts[0]), [], 'and holds nothing of the data dir');
    t.equal((await download(`${url}/${stored[0].id}`)).sha256, stored[0].sha256, 'the new primary keeps serving');

    // A graceful stop of the new primary hands over too.
    await standby.stop();
    const backUrl = await back.served(60_000);
    await verifyAll(t, backUrl, stored.slice(0, 3), 'after handing back');
    await back.stop();

    // The storage faults below run a free box on the same data dir: every file downloadable, unpaid or not.
    const free = await startDaemon({ dataDir: dirA, args: etcdArgs });
    daemons.push(free);
    primaryUrl = free.url;
    current = free;
  });

  await t.test('a brick dies under 64 downloads: none fails, and it heals when it returns', async (t) => {
    const brick = vol.bricks[1];
    const pid = await vol.brickPid(brick);
    t.ok(pid, 'the brick process runs');
    let killed = false;
    const results = await Promise.all(Array.from({ length: 64 }, async (_, i) => {
      const f = stored[i % stored.length];
      if (i === 16) {
        process.kill(pid!, 'SIGKILL');
        killed = true;
      }
      try {
        const got = await download(`${primaryUrl}/${f.id}`);
        return got.status === 200 && got.sha256 === f.sha256 ? 'ok' : 'corrupt';
      } catch {
        return 'failed';
      }
    }));
    t.ok(killed, 'a brick was killed while downloads ran');
    t.equal(results.filter((r) => r === 'failed').length, 0, '0 of 64 downloads failed');
    t.equal(results.filter((r) => r === 'corrupt').length, 0, '0 of 64 downloads corrupted');
    t.equal(await vol.brickPid(brick), undefined, 'the brick is down');

    // Written while the brick is down: the files it must heal.
    for (let i = 0; i < 3; i++) {
      const file = randomFile(work, 5 * 1024 * 1024 + i, `degraded-${i}.bin`);
      const url = await upload(primaryUrl, file);
      t.ok(url, 'uploads succeed with one brick down');
      stored.push({ id: idOf(url!), url: url!, sha256: await sha256File(file), size: fs.statSync(file).size });
    }
    t.ok((await waitFor('entries to heal', () => vol.healPending().then((n) => n === undefined || n > 0), 30_000)), 'the volume knows what the dead brick missed');

    await bringBrickBack(t, vol, brick);
    const returned = Date.now();
    // What must heal is the files' data: every chunk file (name and size) back on the returned brick. The
    // self-heal daemon heals on the brick's return; when it misses that, it crawls only every
    // cluster.heal-timeout (600 s by default), so ask for an index heal (`gluster volume heal VOL`) every few
    // seconds, and a full crawl after 30 s, as an operator would. The volume-wide count of entries to heal is
    // reported, not asserted: it also counts the LevelDB files the running daemon keeps writing, and in one
    // quiet CI run in three it had not reached 0 after 120 s while every chunk had healed.
    const chunksOn = (b: string) => {
      const root = path.join(b, 'bitdrop', 'chunks');
      return fs.readdirSync(root).filter((d) => /^[0-9a-f]{2}$/.test(d))
        .flatMap((d) => fs.readdirSync(path.join(root, d)).map((f) => `${f}:${fs.statSync(path.join(root, d, f)).size}`)).sort();
    };
    // A full crawl after 30 s and again every minute: one CI run in four had not healed every chunk 120 s
    // after the brick's return with a single full crawl at 30 s (GlusterFS's own pace; the wait is long, the
    // check is exact).
    let lastHeal = 0;
    let fullCrawls = 0;
    try {
      await waitFor('the brick to heal every chunk', async () => {
        if (JSON.stringify(chunksOn(brick)) === JSON.stringify(chunksOn(vol.bricks[0]))) return true;
        if (Date.now() - lastHeal > 3000) {
          lastHeal = Date.now();
          const fullCrawl = Date.now() - returned > 30_000 + fullCrawls * 60_000;
          if (fullCrawl) fullCrawls++;
          await vol.gluster('volume', 'heal', vol.name, ...(fullCrawl ? ['full'] : [])).catch(() => undefined);
        }
        return false;
      }, Number(process.env.GLUSTER_HEAL_WAIT_MS ?? 300_000), 250);
    } catch (err) {
      // Say what did not heal, for whoever reads the failure.
      const on = new Set(chunksOn(brick));
      const want = new Set(chunksOn(vol.bricks[0]));
      t.comment(`missing on the returned brick: ${[...want].filter((c) => !on.has(c)).join(' ') || 'none'}`);
      t.comment(`only on the returned brick: ${[...on].filter((c) => !want.has(c)).join(' ') || 'none'}`);
      t.comment(`entries to heal volume-wide: ${await vol.healPending()}`);
      for (const args of [['volume', 'heal', vol.name], ['volume', 'status', vol.name]]) {
        const out = await vol.gluster(...args).then((o) => String(o), (e) => `failed: ${(e as Error).message}`);
        t.comment(`gluster ${args.join(' ')}: ${out.replace(/\s+/g, ' ')}`);
      }
      throw err;
    }
    const healMs = Date.now() - returned;
    t.comment(`heal: ${healMs} ms from the brick's return to every chunk healed${fullCrawls ? ` (after ${fullCrawls} full crawl${fullCrawls > 1 ? 's' : ''})` : ''}; entries still to heal volume-wide: ${await vol.healPending()}`);
    t.same(chunksOn(brick), chunksOn(vol.bricks[0]), 'the returned brick holds every chunk again, at its full size');
    await verifyAll(t, primaryUrl, stored, 'after the heal');
  });

  await t.test('add-brick to 2 × 3 and rebalance while uploads go on: every file intact', async (t) => {
    let stop = false;
    const during: Stored[] = [];
    let refused = 0;
    const uploader = (async () => {
      for (let i = 0; !stop; i++) {
        const file = randomFile(work, 1024 * 1024 + i * 8191, `grow-${i}.bin`);
        const url = await upload(primaryUrl, file);
        if (!url) refused++;
        if (url) during.push({ id: idOf(url), url, sha256: await sha256File(file), size: fs.statSync(file).size });
      }
    })();
    try {
      const added = vol.newBricks(3);
      await vol.gluster('volume', 'add-brick', vol.name, ...added.map((b) => `${vol.host}:${b}`), 'force');
      t.match(await vol.gluster('volume', 'info', vol.name), /Number of Bricks: 2 x 3 = 6/, 'the volume is 2 × 3');
      await vol.gluster('volume', 'rebalance', vol.name, 'start');
      await waitFor('the rebalance', async () => {
        const s = await vol.gluster('volume', 'rebalance', vol.name, 'status');
        if (/failed/.test(s)) throw new Error(s);
        return /completed/.test(s);
      }, 180_000, 500);
      await waitFor('uploads after the rebalance', () => during.length >= 4, 60_000);
    } finally {
      stop = true;
      await uploader;
    }
    t.equal(refused, 0, `all ${during.length} uploads during the expansion acknowledged`);
    const newBrickFiles = vol.bricks.slice(3).flatMap((b) => {
      const root = path.join(b, 'bitdrop', 'chunks');
      return fs.existsSync(root) ? fs.readdirSync(root).flatMap((d) => (/^[0-9a-f]{2}$/.test(d) ? fs.readdirSync(path.join(root, d)) : [])) : [];
    });
    t.ok(newBrickFiles.length > 0, `the new bricks hold ${newBrickFiles.length} chunk files`);
    stored.push(...during);
    await verifyAll(t, primaryUrl, stored, 'after the expansion').catch((err) => {
      t.comment(`the daemon said:\n${current?.output().slice(-3000)}`);
      throw err;
    });
  });

  await t.test('the primary loses its volume: it stops, and the standby takes over', async (t) => {
    t.ok(current!.proc.exitCode === null && current!.proc.signalCode === null, 'the primary still runs');
    t.comment(`the primary's lines: ${current!.output().split('\n').filter((l) => /lease|FATAL|standby/.test(l)).join(' | ')}`);
    const next = await startStandby({ dataDir: dirB, args: etcdArgs });
    daemons.push(next);
    const fuse = vol.fuseClientPid(vol.mounts[0]);
    t.ok(fuse, "the primary's mount has a FUSE client");
    const cutAt = Date.now();
    process.kill(fuse!, 'SIGKILL');
    const code = await new Promise<number | null>((resolve) => {
      if (current!.proc.exitCode !== null) resolve(current!.proc.exitCode);
      else current!.proc.once('exit', resolve);
    });
    const fencedMs = Date.now() - cutAt;
    t.equal(code, 75, `the cut-off primary stopped by itself after ${fencedMs} ms (5 s without its volume, with a lease)`);
    t.match(current!.output(), /FATAL\s+the data dir's volume has been unreachable for \d+ s .*: stopping, so that a standby can take over/, 'and said why');
    const url = await next.served(60_000);
    await verifyAll(t, url, stored.slice(0, 12), 'on the standby');
  });

  t.comment(`gluster fault tests: ${Math.round((Date.now() - started) / 1000)} s`);
});

t.test('a replica-2 volume without an arbiter: the daemon warns at start', async (t) => {
  const vol = await createVolume({ replica: 2, mounts: 1 });
  t.teardown(() => vol.remove());
  const d = await startDaemon({ dataDir: path.join(vol.mounts[0], 'bitdrop') });
  t.teardown(() => d.stop());
  t.match(d.output(), /WARNING\s+GlusterFS volume \S+ has no quorum \(.*replica 2.*\): a split brain could lose acknowledged files/, 'warns that replica 2 has no quorum');
});

/**
 * `volume start force` brings a killed brick back, except when glusterd finds the brick's pid file naming a
 * live process: after a kill -9 the file stays, and on a machine that just spawned hundreds of processes
 * (64 curls and more) the old pid can already belong to someone else. glusterd then takes the brick for
 * running and leaves it down (seen in CI: the brick offline in `volume status`, nothing healed in 300 s).
 * So wait for the brick to be online, and if it is not, remove its stale pid file and start it again.
 */
async function bringBrickBack(t: Test, vol: GlusterVolume, brick: string) {
  for (let attempt = 1; attempt <= 3; attempt++) {
    await vol.gluster('volume', 'start', vol.name, 'force');
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (await vol.brickPid(brick)) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    const stale = pidFilesOf(path.dirname(brick), path.basename(brick));
    t.comment(`the brick did not come back (attempt ${attempt}); its pid files: ${stale.map((f) => `${f} → ${fs.readFileSync(f, 'utf8').trim()}`).join(', ') || 'none'}`);
    for (const f of stale) fs.rmSync(f, { force: true });
  }
  throw new Error(`brick ${brick} stayed down after three starts`);
}

/** pid files under `root` whose name mentions `brickName` */
function pidFilesOf(root: string, brickName: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[] = [];
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 6 && !/^brick\d+$/.test(e.name) && !/^mount\d+$/.test(e.name)) walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.pid') && e.name.includes(brickName)) found.push(p);
    }
  };
  walk(root, 0);
  return found;
}
