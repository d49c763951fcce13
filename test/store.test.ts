// The content-addressed store: dedup, refcounts, crash safety — through the daemon and directly.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { spawn } from 'child_process';
import crypto from 'crypto';
import { PassThrough, Readable } from 'stream';
import { startDaemon, curl, curlStatus, sha256File, randomFile, tmpDir, chunkFiles, CLI } from './helpers/daemon';
import { Store } from '../lib/store';
import { layout, PREFIX } from '../lib/store/layout';
import { FileBlobs } from '../lib/store/blobs';
import { sharedPageAligned } from '../lib/store/hashers';

const CHUNK = 4 * 1024 * 1024;

t.test('dedup: the same bytes twice store their chunks once; deleting one keeps the other whole', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const work = tmpDir();
  const file = randomFile(work, 3 * CHUNK + 10, 'same.bin');
  const a = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/`));
  const afterFirst = chunkFiles(d.dataDir).length;
  t.equal(afterFirst, 4, 'four chunks for 3 chunks + 10 bytes');
  const b = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/copy.bin`));
  t.not(a.id, b.id, 'two files, two ids');
  t.equal(chunkFiles(d.dataDir).length, afterFirst, 'no new chunk for identical bytes');
  await curl('-f', '-X', 'DELETE', '-H', `X-Delete-Token: ${a.deleteToken}`, `${d.url}/${a.id}`);
  t.equal(chunkFiles(d.dataDir).length, afterFirst, 'chunks still used by the copy stay');
  const out = path.join(work, 'copy.out');
  await curl('-f', '-o', out, b.url);
  t.equal(await sha256File(out), await sha256File(file), 'the copy is whole');
  await curl('-f', '-X', 'DELETE', '-H', `X-Delete-Token: ${b.deleteToken}`, `${d.url}/${b.id}`);
  t.equal(chunkFiles(d.dataDir).length, 0, 'the last deletion frees every chunk');
});

t.test('kill -9 mid-upload: after a restart no partial file and no orphaned chunk', async (t) => {
  const dataDir = tmpDir();
  const work = tmpDir();
  const keep = randomFile(work, CHUNK + 1, 'keep.bin');
  const big = randomFile(work, 40 * CHUNK, 'big.bin');
  let d = await startDaemon({ dataDir });
  const kept = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', keep, `${d.url}/`));
  const keptChunks = chunkFiles(dataDir).length;
  // A slow upload: several chunks reach the disk, the manifest never does.
  const up = spawn('curl', ['-sS', '--limit-rate', '8M', '-T', big, `${d.url}/`], { stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  while (chunkFiles(dataDir).length < keptChunks + 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.ok(chunkFiles(dataDir).length >= keptChunks + 3, 'chunks of the unfinished upload were on disk');
  await d.kill9();
  up.kill();
  d = await startDaemon({ dataDir });
  t.teardown(() => d.stop());
  const status = JSON.parse((await import('child_process')).execFileSync(process.execPath, [CLI, 'status', '--data-dir', dataDir, '--json']).toString());
  t.equal(status.files, 1, 'only the finished file exists');
  t.equal(chunkFiles(dataDir).length, keptChunks, 'the orphaned chunks were removed at start');
  // (a start lists the temp files before it writes any and removes them in the background)
  const tmpLeft = () => fs.readdirSync(path.join(dataDir, 'chunks', 'tmp')).length;
  for (const until = Date.now() + 10_000; tmpLeft() > 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
  t.equal(tmpLeft(), 0, 'no temp files');
  const out = path.join(work, 'keep.out');
  await curl('-f', '-o', out, `${d.url}/${kept.id}`);
  t.equal(await sha256File(out), await sha256File(keep), 'the finished file is intact');
});

t.test('a client that disconnects mid-upload leaves nothing behind', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const work = tmpDir();
  const big = randomFile(work, 20 * CHUNK, 'big.bin');
  const up = spawn('curl', ['-sS', '--limit-rate', '8M', '-T', big, `${d.url}/`], { stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  while (chunkFiles(d.dataDir).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  up.kill('SIGKILL');
  const gone = Date.now() + 10_000;
  while (chunkFiles(d.dataDir).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
  t.equal(chunkFiles(d.dataDir).length, 0, 'the aborted upload freed its chunks without a restart');
  const r = await curlStatus('-H', 'Accept: application/json', '-H', `X-Admin-Token: ${fs.readFileSync(path.join(d.dataDir, 'admin-token'), 'utf8').trim()}`, `${d.consoleUrl}/status`);
  t.equal(JSON.parse(r.body).files, 0);
});

for (const backend of ['file', 'level'] as const) {
  t.test(`store (${backend} backend): refcounts, orphan sweep, reads across chunks`, async (t) => {
    const dir = tmpDir();
    let store = await Store.open({ dir, backend, chunkSize: 1024 });
    const bytes = Buffer.alloc(4096 + 5);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 251;
    const a = await store.ingest(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), { name: 'a', type: 'x/y', maxBytes: 1e9 });
    t.equal(a.manifest.chunks.length, 5);
    const b = await store.ingest(Readable.from([bytes]), { name: 'b', type: 'x/y', maxBytes: 1e9 });
    t.same(b.manifest.chunks, a.manifest.chunks, 'same chunk hashes');
    t.equal(store.stats().chunks, 5, 'stored once');
    const part = Buffer.concat(await store.read(a.manifest, 1020, 2050).toArray());
    t.ok(part.equals(bytes.subarray(1020, 2051)), 'a read across chunk boundaries');
    await t.rejects(store.ingest(Readable.from([bytes]), { name: 'c', type: 'x/y', maxBytes: 100 }), { status: 413 });
    t.equal(store.stats().files, 2, 'the refused upload left no file');
    // An orphan: a payload nobody references (as after a crash before the manifest commit).
    await store.blobs.put(Buffer.alloc(32, 9), [Buffer.from('orphan')]);
    await store.blobs.flush();
    await store.close();
    store = await Store.open({ dir, backend, chunkSize: 1024 });
    t.equal(await store.blobs.has(Buffer.alloc(32, 9)), true, 'opening does not walk the payloads');
    t.equal(await store.removeOrphans({ slice: 2 }), 1, 'the background sweep finds the one orphan');
    t.equal(await store.blobs.has(Buffer.alloc(32, 9)), false, 'the orphan is gone after the sweep');
    t.equal(await store.blobs.has(Buffer.from(a.manifest.chunks[0], 'hex')), true, 'referenced chunks stay');
    t.equal(store.stats().files, 2, 'files survive a reopen');
    await store.delete(a.manifest.id);
    const whole = Buffer.concat(await store.read(b.manifest).toArray());
    t.ok(whole.equals(bytes), 'b is whole after a is deleted');
    await store.delete(b.manifest.id);
    t.equal(store.stats().chunks, 0);
    let left = 0;
    for await (const _ of store.blobs.list()) left++;
    t.equal(left, 0, 'no payload is left');
    await store.close();
  });
}

t.test('layout: every key prefix is its own', async (t) => {
  const letters = Object.values(PREFIX);
  t.equal(new Set(letters).size, letters.length, `no two kinds of key share a prefix (${letters.join(' ')})`);
});

t.test('counters: persisted with every change, counted once for a store from before them', async (t) => {
  const dir = tmpDir('bitdrop-test-', t);
  let store = await Store.open({ dir, chunkSize: 1024 });
  const a = await store.ingest(Readable.from([crypto.randomBytes(3000)]), { name: 'a', type: 'x/y', maxBytes: 1e9 });
  await store.ingest(Readable.from([crypto.randomBytes(10)]), { name: 'b', type: 'x/y', maxBytes: 1e9 });
  await store.delete(a.manifest.id);
  const expected = { files: 1, bytes: 10, chunks: 1, chunkBytes: 10 };
  t.match(store.stats(), expected, 'counted as the changes commit');
  await store.write([{ type: 'count', name: 'widgets', by: 3 }]);
  await store.close();
  store = await Store.open({ dir, chunkSize: 1024 });
  t.match(store.stats(), expected, 'read back from k[counters] after a reopen');
  t.equal(store.counters().widgets, 3, 'a count op of a plain batch');
  // An older store has no k[counters]: the next open counts once and writes them.
  await store.db.del(layout.counters());
  await store.close();
  store = await Store.open({ dir, chunkSize: 1024 });
  t.teardown(() => store.close());
  t.match(store.stats(), expected, 'counted once when missing');
  t.ok(await store.db.get(layout.counters()), 'and persisted');
});

t.test('hashing threads: concurrent uploads get the right chunk and file hashes and read back whole', async (t) => {
  const dir = tmpDir();
  // 64 KiB chunks: each upload is several slots, so the uploads interleave in the hashing threads.
  const store = await Store.open({ dir, chunkSize: 64 * 1024 });
  t.teardown(() => store.close());
  const sizes = [0, 1, 1000, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 300_000, 1_000_003, 2 * 1024 * 1024];
  const files = sizes.map((n) => crypto.randomBytes(n));
  // Pieces of odd sizes, as sockets deliver them.
  const pieces = (b: Buffer) => Array.from({ length: Math.ceil(b.length / 7001) }, (_, i) => b.subarray(i * 7001, (i + 1) * 7001));
  const results = await Promise.all(files.map((b, i) => store.ingest(Readable.from(pieces(b)), { name: `f${i}`, type: 'x/y', maxBytes: 1e9 })));
  for (const [i, r] of results.entries()) {
    const b = files[i];
    t.equal(r.manifest.sha256, crypto.createHash('sha256').update(b).digest('hex'), `${b.length} bytes: file hash`);
    const expected = Array.from({ length: Math.ceil(b.length / (64 * 1024)) }, (_, k) =>
      crypto.createHash('sha256').update(b.subarray(k * 64 * 1024, (k + 1) * 64 * 1024)).digest('hex'));
    t.same(r.manifest.chunks, expected, `${b.length} bytes: chunk hashes`);
    t.ok(Buffer.concat(await store.read(r.manifest).toArray()).equals(b), `${b.length} bytes: read back whole`);
  }
});

t.test('uploads stalled mid-chunk hold no slot another upload needs', async (t) => {
  const dir = tmpDir();
  const chunk = 64 * 1024;
  const store = await Store.open({ dir, chunkSize: chunk });
  t.teardown(() => store.close());
  // Ten uploads (more than the 4 slots hashed and written at once; within the 16 slots in use at once, past
  // which stalled uploads are cut: test/uploads-hostile.test.ts) each send a chunk and a half, then stall.
  const stalled = Array.from({ length: 10 }, () => {
    const s = new PassThrough();
    s.write(crypto.randomBytes(chunk + chunk / 2));
    const done = store.ingest(s, { name: 'slow', type: 'x/y', maxBytes: 1e9 }).then(() => 'stored', (err: Error) => err.message);
    return { s, done };
  });
  const bytes = crypto.randomBytes(10 * chunk + 3);
  const r = await store.ingest(Readable.from([bytes]), { name: 'fast', type: 'x/y', maxBytes: 1e9 });
  t.equal(r.manifest.sha256, crypto.createHash('sha256').update(bytes).digest('hex'), 'a 10-chunk upload completes meanwhile');
  for (const { s } of stalled) s.destroy(new Error('client went away'));
  t.same(new Set(await Promise.all(stalled.map((x) => x.done))), new Set(['client went away']), 'the stalled uploads fail when their clients go');
  t.equal(store.stats().files, 1, 'only the complete upload is stored');
});

t.test('chunk files: page-aligned chunks (O_DIRECT) and misaligned ones (buffered fallback) read back whole', async (t) => {
  const blobs = new FileBlobs(path.join(tmpDir(), 'chunks'));
  const size = 4 * 1024 * 1024;
  const aligned = Buffer.from(sharedPageAligned(size), 0, size);
  const misaligned = Buffer.from(new SharedArrayBuffer(size + 16)).subarray(16);
  for (const [name, buf, tag] of [['aligned', aligned, 1], ['misaligned', misaligned, 2]] as const) {
    crypto.randomFillSync(buf);
    const hash = Buffer.alloc(32, tag);
    await blobs.put(hash, [buf]);
    await blobs.flush();
    const h = await blobs.open(hash);
    const back = Buffer.alloc(size);
    t.equal(await h.read(back, 0), size, `${name}: every byte read`);
    await h.close();
    t.ok(back.equals(buf), `${name}: the same bytes`);
  }
});
