// Group commit: writes that arrive together share one synced LevelDB batch, each still durable before its
// caller hears back; small files live inline in their manifest's batch. Through the Db directly, the store,
// and the daemon killed with -9 in the middle of a burst of small uploads.

import t from 'tap';
import http from 'http';
import path from 'path';
import crypto from 'crypto';
import { Readable } from 'stream';
import { startDaemon, tmpDir } from './helpers/daemon';
import { Db } from '../lib/store/db';
import { Store } from '../lib/store';
import { layout, PREFIX } from '../lib/store/layout';

const key = (i: number) => Buffer.from(`k${String(i).padStart(4, '0')}`);

t.test('Db: concurrent synced batches go down in fewer groups, each atomic, readable at once', async (t) => {
  const dir = tmpDir('bitdrop-test-', t);
  const db = await Db.open(path.join(dir, 'db'));
  const writes = Array.from({ length: 64 }, (_, i) =>
    db.batch([{ type: 'put', key: key(i), value: Buffer.from(`v${i}`) }, { type: 'put', key: key(1000 + i), value: Buffer.from(`w${i}`) }], { sync: true }));
  // Queued, not written yet: a read sees the queued value (a read-modify-write under a lock relies on it).
  t.equal((await db.get(key(63)))?.toString(), 'v63', 'a queued write is visible to get() before it is durable');
  await Promise.all(writes);
  t.equal(db.groupStats.writes, 64);
  t.ok(db.groupStats.groups < 64, `64 writes went down in ${db.groupStats.groups} groups (largest ${db.groupStats.largest})`);
  let whole = 0;
  for (let i = 0; i < 64; i++) {
    if ((await db.level.get(key(i)))?.toString() === `v${i}` && (await db.level.get(key(1000 + i)))?.toString() === `w${i}`) whole++;
  }
  t.equal(whole, 64, 'every batch is in LevelDB, both of its keys');
  // A later write to the same key wins, in queue order, also in the overlay.
  const a = db.put(key(1), Buffer.from('first'), { sync: true });
  const b = db.del(key(1), { sync: true });
  t.equal(await db.get(key(1)), undefined, 'the queued deletion is what get() sees');
  await Promise.all([a, b]);
  t.equal(await db.level.get(key(1)), undefined, 'and what LevelDB holds');
  // A failed group write stops all later writes, as LevelDB does after a failed log sync.
  await db.level.close();
  await t.rejects(db.put(key(2), Buffer.from('x'), { sync: true }), /database write failed/);
  await t.rejects(db.put(key(3), Buffer.from('y')), /no more writes until a restart/);
});

t.test('Db: within one group only the last op of each key goes to LevelDB, with the same result', async (t) => {
  const dir = tmpDir('bitdrop-test-', t);
  const db = await Db.open(path.join(dir, 'db'));
  await db.put(key(9), Buffer.from('old'), { sync: true });
  const before = { ...db.groupStats };
  // The first write goes alone; the next 40 queue behind its fsync and go down as one group. Each of them
  // rewrites one shared key (as every upload rewrites k[counters]) and writes one key of its own.
  const writes = Array.from({ length: 41 }, (_, i) => db.batch([
    { type: 'put', key: key(0), value: Buffer.from(`shared ${i}`) },
    { type: 'put', key: key(100 + i), value: Buffer.from(`own ${i}`) },
    ...(i === 20 ? [{ type: 'del' as const, key: key(9) }] : []),
    ...(i === 30 ? [{ type: 'put' as const, key: key(9), value: Buffer.from('new') }] : []),
  ], { sync: true }));
  await Promise.all(writes);
  const groups = db.groupStats.groups - before.groups;
  const ops = db.groupStats.ops - before.ops;
  t.ok(groups < 41, `41 writes in ${groups} groups`);
  t.ok(ops < 41 * 2 + 2, `LevelDB was given ${ops} ops for ${41 * 2 + 2} queued`);
  t.equal((await db.level.get(key(0)))?.toString(), 'shared 40', 'the shared key holds the last write');
  let own = 0;
  for (let i = 0; i < 41; i++) if ((await db.level.get(key(100 + i)))?.toString() === `own ${i}`) own++;
  t.equal(own, 41, 'every write\'s own key is there');
  t.equal((await db.level.get(key(9)))?.toString(), 'new', 'a put after a deletion of the same key wins');
  await db.close();
});

t.test('store: small files are inline, deduplicated, and deleted with their batch', async (t) => {
  const dir = tmpDir('bitdrop-test-', t);
  const store = await Store.open({ dir });
  t.teardown(() => store.close());
  // Commits group only behind a write in progress. On a fast disk the first fsync can end before the next
  // commit is queued (one CI run saw 48 commits in 49 groups), so the first LevelDB write after the open
  // takes 200 ms here, as a slow fsync would: the commits that arrive meanwhile must share the next one.
  type Chained = { write: (...args: unknown[]) => Promise<void> };
  const level = store.db.level as unknown as { batch: () => Chained };
  const chained = level.batch.bind(level);
  let slowed = false;
  level.batch = () => {
    const b = chained();
    const write = b.write.bind(b);
    b.write = async (...args: unknown[]) => {
      if (!slowed) {
        slowed = true;
        await new Promise((r) => setTimeout(r, 200));
      }
      return write(...args);
    };
    return b;
  };
  const bodies = Array.from({ length: 48 }, (_, i) => Buffer.from(`small file ${i % 24}\n`));
  const ups = await Promise.all(bodies.map((b, i) => store.ingest(Readable.from([b]), { name: `s${i}`, type: 'text/plain', maxBytes: 1e6 })));
  t.equal(store.stats().files, 48);
  t.equal(store.stats().chunks, 24, '24 distinct contents, each stored once');
  t.ok(store.db.groupStats.groups < 48, `48 commits in ${store.db.groupStats.groups} groups`);
  let chunkFiles = 0;
  for await (const _ of store.blobs.list()) chunkFiles++;
  t.equal(chunkFiles, 0, 'no chunk file for small files');
  let back = 0;
  for (let i = 0; i < 48; i++) if (Buffer.concat(await store.read(ups[i].manifest).toArray()).equals(bodies[i])) back++;
  t.equal(back, 48, 'every file reads back');
  for (let i = 0; i < 24; i++) await store.delete(ups[i].manifest.id);
  t.ok(Buffer.concat(await store.read(ups[30].manifest).toArray()).equals(bodies[30]), 'a twin survives its twin\'s deletion');
  for (let i = 24; i < 48; i++) await store.delete(ups[i].manifest.id);
  let inline = 0;
  for await (const _ of store.db.keys(layout.range(PREFIX.blob))) inline++;
  t.equal(inline, 0, 'the last deletion removed every inline payload');
  t.equal(store.stats().chunks, 0);
});

t.test('kill -9 in a burst of small uploads from 16 clients: every 201 reads back after the restart', async (t) => {
  const dataDir = tmpDir('bitdrop-test-', t);
  let d = await startDaemon({ dataDir });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(() => agent.destroy());
  const acked: { id: string; body: Buffer }[] = [];
  let running = true;
  const put = (body: Buffer) => new Promise<string | undefined>((resolve) => {
    const req = http.request(`${d.url}/s.txt`, { method: 'PUT', agent, headers: { 'Content-Length': body.length, Accept: 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve(res.statusCode === 201 ? JSON.parse(text).id : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
  const client = async () => {
    while (running) {
      const body = crypto.randomBytes(24 + crypto.randomInt(200));
      const id = await put(body);
      if (id) acked.push({ id, body });
      else if (!running) return;
    }
  };
  const clients = Array.from({ length: 16 }, client);
  const deadline = Date.now() + 20_000;
  while (acked.length < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await d.kill9();
  running = false;
  await Promise.all(clients);
  t.ok(acked.length >= 300, `${acked.length} uploads were answered 201 before the kill`);
  d = await startDaemon({ dataDir });
  t.teardown(() => d.stop());
  const get = (id: string) => new Promise<Buffer | undefined>((resolve) => {
    http.get(`${d.url}/${id}`, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(parts) : undefined));
    }).on('error', () => resolve(undefined));
  });
  let intact = 0;
  for (const a of acked) if ((await get(a.id))?.equals(a.body)) intact++;
  t.equal(intact, acked.length, 'every upload answered 201 is there, byte for byte');
});
