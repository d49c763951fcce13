// The leader lease in etcd (lib/lease), on a real 3-member etcd on loopback and daemons sharing one data dir
// on this machine's disk (the GlusterFS drills are in test/gluster.test.ts): fenced writes, SIGSTOP of the
// primary (its watchdog kills it, the standby takes over), kill -9 of the etcd leader member (nothing
// happens), loss of etcd quorum (the leader fences, no one serves, nothing is lost; service resumes).

import t from 'tap';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { Db } from '../lib/store/db';
import { Store } from '../lib/store';
import { FencedError } from '../lib/lease';
import { takeTermDir } from '../lib/lease/term-dir';
import { Readable } from 'stream';
import { waitFor } from './helpers/tor-lone';
import { exec, CLI, tmpDir } from './helpers/daemon';
import { createEtcd, type EtcdCluster } from './helpers/etcd';
import { startMember, UploadLoop, missing, etcdLeaderKillDrill, quorumLossDrill, type Member } from './helpers/failover';

t.test('--standby without --etcd refuses to start, in one line', async (t) => {
  const dir = tmpDir('bitdrop-lease-', t);
  const res = await exec(process.execPath, [CLI, 'start', '--standby', '--free', '--tor', 'off', '--data-dir', dir]).then(() => ({ code: 0, stderr: '' }), (e) => e);
  t.equal(res.code, 2, 'exit status 2 (a configuration error)');
  t.match(res.stderr, /^bitdrop: --standby needs --etcd: without a leader lease in etcd two daemons could serve the same data dir at once \(docs\/scale-out.md\)\n$/, 'one line saying why');
});

t.test('fenced writes: a write after the fence closes fails, and is never acknowledged', async (t) => {
  const dir = tmpDir('bitdrop-lease-', t);
  let open = true;
  const db = await Db.open(path.join(dir, 'db'), { fence: () => { if (!open) throw new FencedError('test'); } });
  await db.put(Buffer.from('a'), Buffer.from('1'), { sync: true });
  open = false;
  await t.rejects(db.put(Buffer.from('b'), Buffer.from('2')), { code: 'FENCED', status: 503 }, 'a batch queued after the fence is refused');
  open = true;
  await t.rejects(db.put(Buffer.from('c'), Buffer.from('3')), { code: 'FENCED' }, 'and a fenced database stays fenced');
  t.same(await db.get(Buffer.from('b')), undefined, 'nothing of the refused batch landed');
  await db.close();

  // A term opens the store under db.t<term>; a lower term than the one stored never opens it.
  const data = tmpDir('bitdrop-lease-', t);
  const s7 = await Store.open({ dir: data, lease: { term: 7, fence: () => undefined } });
  t.equal(fs.readlinkSync(path.join(data, 'db')), 'db.t7', 'term 7 opened db.t7, db points at it');
  // A stale holder of the old directory (not closed: a stopped process) does not keep term 9 out.
  const s9 = await Store.open({ dir: data, lease: { term: 9, fence: () => undefined } });
  t.ok(fs.existsSync(path.join(data, 'db.t7', 'CURRENT')), 'the old term\'s directory is left as it was (its daemon may still be stuck in it)');
  t.equal(fs.readlinkSync(path.join(data, 'db')), 'db.t9', 'term 9 took it over');
  t.same(await s9.db.get(Buffer.from('k' + 'counters')) !== undefined, true, 'term 9 reads what term 7 wrote');
  await s9.close();
  await s7.close().catch(() => undefined);
  await t.rejects(Store.open({ dir: data, lease: { term: 8, fence: () => undefined } }), /opened by leader term 9, not below this daemon's term 8/, 'term 8 after term 9 is refused');
  t.ok(fs.existsSync(path.join(data, 'db.t9', 'CURRENT')), 'term 8 changed nothing');
  const before = fs.readdirSync(path.join(data, 'db.t9')).sort();
  await t.rejects(Store.open({ dir: data }), /is run with a leader lease in etcd \(term 9\): start it with --etcd/, 'a daemon without a lease never opens it');
  t.same(fs.readdirSync(path.join(data, 'db.t9')).sort(), before, 'not even to look (opening LevelDB would recover its log and delete files)');
});

t.test("each term writes only files of its own: chunk temp files and header chains; earlier terms' are left, then cleared two back", async (t) => {
  const data = tmpDir('bitdrop-lease-', t);
  // an earlier term (3) that left a temp file behind, and the one before it (1)
  const tmp = path.join(data, 'chunks', 'tmp');
  fs.mkdirSync(path.join(tmp, 't1'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 't3'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 't1', 'aa'), 'x');
  fs.writeFileSync(path.join(tmp, 't3', 'bb'), 'x');
  const s5 = await Store.open({ dir: data, lease: { term: 5, fence: () => undefined } });
  t.same(fs.readdirSync(path.join(tmp, 't3')), ['bb'], "opening term 5 touches nothing of term 3's (its daemon may be stopped mid-write)");
  const r = await s5.ingest(Readable.from([crypto.randomBytes(300_000)]), { name: 'f', type: 'x/y', maxBytes: 1e9 });
  t.ok(r.manifest.id, 'an upload of term 5 is stored');
  t.same(fs.readdirSync(path.join(tmp, 't5')), [], 'through its own temp dir, tmp/t5, left empty');
  t.equal(await s5.clearEarlierTerms(), 1, "the background clearing removes term 1's leftover");
  t.same(fs.readdirSync(tmp).sort(), ['t3', 't5'], "term 1's dir is gone; the last term's (3) stays");
  await s5.close();

  const chain = path.join(data, 'chain');
  fs.mkdirSync(path.join(chain, 'regtest.t3'), { recursive: true });
  fs.writeFileSync(path.join(chain, 'regtest.t3', 'headers'), 'term 3');
  fs.mkdirSync(path.join(chain, 'regtest.t1'));
  const dir = await takeTermDir(chain, 'regtest', 5);
  t.equal(dir, path.join(chain, 'regtest.t5'), "term 5's header chain lives in regtest.t5");
  t.equal(fs.readFileSync(path.join(dir, 'headers'), 'utf8'), 'term 3', "seeded with a copy of the last term's headers");
  fs.writeFileSync(path.join(dir, 'headers'), 'term 5');
  t.equal(fs.readFileSync(path.join(chain, 'regtest.t3', 'headers'), 'utf8'), 'term 3', "the last term's file is never written");
  await waitFor('term 1 removed', () => !fs.existsSync(path.join(chain, 'regtest.t1')), 10_000);
  t.pass('the chain dir two terms back is removed in the background');
});

t.test('a deployment on one data dir with a 3-member etcd', async (t) => {
  const etcd: EtcdCluster = await createEtcd();
  t.teardown(() => etcd.remove());
  const dataDir = tmpDir('bitdrop-lease-data-', t);
  const members: Member[] = [];
  t.teardown(async () => { for (const m of members) await m.stop(); });
  const etcdArgs = ['--data-dir', dataDir, '--free', ...etcd.endpoints.flatMap((e) => ['--etcd', e]), '--etcd-prefix', `/bitdrop/test-${crypto.randomBytes(4).toString('hex')}`];
  const start = (name: string) => {
    const m = startMember(name, etcdArgs);
    members.push(m);
    return m;
  };
  const leader = () => members.find((m) => m.alive() && m.url());

  const a = start('a');
  await a.serving();
  t.match(a.output(), /^lease\s+leading \/bitdrop\/test-\w+ in term \d+ \(lease 10 s, renewed every 2 s, fencing 3 s before it could run out\)/m, 'the first daemon leads and says its term');
  const b = start('b');
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (/^standby\s/m.test(b.output())) { clearInterval(timer); resolve(); }
      if (!b.alive()) { clearInterval(timer); reject(new Error(b.output())); }
    }, 50);
  });
  t.match(b.output(), new RegExp(`standby\\s+${dataDir} is in use by bitdrop pid ${a.proc.pid} on \\S+ \\(leader of /bitdrop/test-\\w+ in etcd\\); serving nothing until its lease is gone`), 'the second waits, naming the leader');
  t.notMatch(b.output(), /^serving\s/m, 'and serves nothing');

  const loop = new UploadLoop(() => members);
  t.teardown(() => loop.stop());
  await loop.more(10);

  await t.test('kill -9 of the etcd leader member: the primary keeps its lease and keeps serving', async (t) => {
    await etcdLeaderKillDrill(t, { etcd, loop, primary: a, standby: b });
  });

  let current = a;
  let standby = b;
  await t.test('SIGSTOP of the primary: its watchdog kills it, the standby takes over within TTL + margin', async (t) => {
    await loop.more(5);
    const frozenAt = Date.now();
    current.proc.kill('SIGSTOP');
    const url = await standby.serving(60_000);
    const takeoverMs = Date.now() - frozenAt;
    const ex = await current.exited();
    t.equal(ex.signal, 'SIGKILL', 'the frozen primary was killed (by its watchdog)');
    t.match(current.output(), /FATAL\s+watchdog: the leader lease was not renewed \d+ ms past its fencing deadline/, 'the watchdog says why');
    t.match(standby.output(), /standby\s+.* is free: taking over/, 'the standby takes over');
    t.ok(takeoverMs < 30_000, `served ${takeoverMs} ms after SIGSTOP (lease 10 s + margin 3 s + start)`);
    t.comment(`takeover after SIGSTOP of the primary: ${takeoverMs} ms`);
    await loop.more(5);
    t.same(await missing(url, loop.acked), [], `all ${loop.acked.length} acknowledged uploads are there`);
    t.same(loop.overlaps(), [], 'never two daemons answering 201 at once');
    const next = start('c');
    current = standby;
    standby = next;
    await new Promise((r) => setTimeout(r, 200));
  });

  await t.test('loss of etcd quorum: the leader fences, no one serves, nothing is lost; service resumes with quorum', async (t) => {
    const url = await quorumLossDrill(t, { etcd, loop, primary: current, standby });
    await loop.stop();
    t.same(await missing(url, loop.acked), [], `all ${loop.acked.length} acknowledged uploads are there`);
    t.same(loop.overlaps(), [], 'never two daemons answering 201 at once');
  });
});
