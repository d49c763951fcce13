// The downloads' shared chunk cache (lib/store/reader.ts#ChunkCache): its memory is its budget, a reused
// buffer never serves another chunk's bytes, and with every buffer pinned downloads still get their bytes.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import crypto from 'crypto';
import { PassThrough } from 'stream';
import { BufferPool, ChunkCache, sendSegments, type ChunkSource, type Segment } from '../lib/store/reader';
import { spawnSync } from 'child_process';
import { tmpDir, CLI } from './helpers/daemon';

const CHUNK = 256 * 1024;

/** `n` chunk files of random bytes in a fresh folder, and a source reading them with real file handles */
function chunkFolder(n: number, lastSize = CHUNK) {
  const dir = tmpDir();
  const chunks = Array.from({ length: n }, (_, i) => {
    const data = crypto.randomBytes(i === n - 1 ? lastSize : CHUNK);
    const hash = crypto.createHash('sha256').update(data).digest();
    fs.writeFileSync(path.join(dir, hash.toString('hex')), data);
    return { hash, data };
  });
  let reads = 0;
  let opens = 0;
  const source: ChunkSource = {
    async open(seg: Segment) {
      opens++;
      const fh = await fs.promises.open(path.join(dir, seg.hash.toString('hex')), 'r');
      return {
        read: async (buf: Buffer, position: number) => {
          reads++;
          // A little delay, so that reads and sends overlap as they do on a busy daemon.
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          return (await fh.read(buf, 0, buf.length, position)).bytesRead;
        },
        close: () => fh.close(),
      };
    },
  };
  const segments = (from = 0, to = chunks.length - 1): Segment[] => chunks.slice(from, to + 1)
    .map((c) => ({ hash: c.hash, from: 0, to: c.data.length - 1, inline: false, size: c.data.length }));
  return { chunks, source, segments, reads: () => reads, opens: () => opens };
}

/** A socket-like target that takes bytes at its own pace and keeps them; `stopAfter` bytes, then it is destroyed. */
function slowTarget(delayMs: number, stopAfter = Infinity) {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  const got: Buffer[] = [];
  let n = 0;
  out.on('data', (b: Buffer) => {
    got.push(Buffer.from(b));
    n += b.length;
    if (n >= stopAfter) out.destroy();
    else if (delayMs) { out.pause(); setTimeout(() => out.resume(), delayMs); }
  });
  const ended = new Promise<void>((resolve) => { out.on('end', resolve); out.on('close', resolve); });
  return { out, bytes: () => Buffer.concat(got), ended };
}

t.test('the cache makes at most its budget of buffers, and every download gets exactly its bytes', async (t) => {
  const f = chunkFolder(12, 1000);
  const cache = new ChunkCache(3 * CHUNK, CHUNK);
  const pool = new BufferPool(CHUNK);
  // 24 downloads at different paces over different ranges of 12 chunks: the cache churns all the time.
  const runs = Array.from({ length: 24 }, (_, i) => {
    const from = i % 5;
    const target = slowTarget(i % 3 === 0 ? 2 : 0);
    const sent = sendSegments(f.source, f.segments(from), () => 64 * 1024, target.out, pool, undefined, cache);
    const expected = Buffer.concat(f.chunks.slice(from).map((c) => c.data));
    return { sent, target, expected };
  });
  await Promise.all(runs.map((r) => r.sent));
  await Promise.all(runs.map((r) => r.target.ended));
  for (const [i, r] of runs.entries()) t.ok(r.target.bytes().equals(r.expected), `download ${i} received its own bytes, whole`);
  t.ok(cache.buffers <= 3, `buffers made: ${cache.buffers} (budget: 3)`);
  t.ok(cache.buffers > 0, 'the cache was used');
});

t.test('downloads that vanish mid-chunk release their pins; the buffers serve the next downloads', async (t) => {
  const f = chunkFolder(6);
  const cache = new ChunkCache(2 * CHUNK, CHUNK);
  const pool = new BufferPool(CHUNK);
  const gone = Array.from({ length: 8 }, (_, i) => {
    const target = slowTarget(1, CHUNK / 2 + i * 1000);
    return sendSegments(f.source, f.segments(), () => 64 * 1024, target.out, pool, undefined, cache).then(() => target.ended);
  });
  await Promise.all(gone);
  const whole = Buffer.concat(f.chunks.map((c) => c.data));
  const after = Array.from({ length: 4 }, () => {
    const target = slowTarget(0);
    return sendSegments(f.source, f.segments(), () => 64 * 1024, target.out, pool, undefined, cache).then(() => target.ended).then(() => target.bytes());
  });
  for (const got of await Promise.all(after)) t.ok(got.equals(whole), 'a later download is whole');
  t.ok(cache.buffers <= 2, `buffers made: ${cache.buffers} (budget: 2)`);
});

t.test('with every buffer pinned, a download falls back to slice reads and still gets its bytes', async (t) => {
  const f = chunkFolder(4);
  const cache = new ChunkCache(1 * CHUNK, CHUNK);
  const pool = new BufferPool(CHUNK);
  // A download whose client reads nothing yet pins the only buffer on chunk 0.
  const stuck = slowTarget(0);
  stuck.out.pause();
  const stuckSent = sendSegments(f.source, f.segments(0, 0), () => 64 * 1024, stuck.out, pool, undefined, cache);
  while (cache.buffers === 0 || f.reads() === 0) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  const readsBefore = f.reads();
  const fast = slowTarget(0);
  await sendSegments(f.source, f.segments(1, 3), () => 64 * 1024, fast.out, pool, undefined, cache);
  await fast.ended;
  t.ok(fast.bytes().equals(Buffer.concat(f.chunks.slice(1).map((c) => c.data))), 'the other download is whole');
  t.equal(f.reads() - readsBefore, 3 * (CHUNK / (64 * 1024)), 'it read 64 KiB slices, past the pinned cache');
  stuck.out.resume();
  await stuckSent;
  await stuck.ended;
  t.ok(stuck.bytes().equals(f.chunks[0].data), 'the held-up download is whole once its client reads');
  t.equal(cache.buffers, 1, 'one buffer made, no more');
});

t.test('a chunk larger than the buffers is not cached', async (t) => {
  const f = chunkFolder(1);
  const cache = new ChunkCache(4 * CHUNK, CHUNK / 2);
  const target = slowTarget(0);
  await sendSegments(f.source, f.segments(), () => 64 * 1024, target.out, new BufferPool(CHUNK), undefined, cache);
  await target.ended;
  t.ok(target.bytes().equals(f.chunks[0].data), 'sent whole through slice reads');
  t.equal(cache.buffers, 0, 'no buffer made');
});

t.test('a bad BITDROP_CHUNK_CACHE_MIB stops the start with one readable line', async (t) => {
  const dataDir = tmpDir();
  const r = spawnSync(process.execPath, [CLI, 'start', '--free', '--tor', 'off', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, BITDROP_CHUNK_CACHE_MIB: '12MiB' }, encoding: 'utf8', timeout: 60_000,
  });
  t.not(r.status, 0, `exit status ${r.status}`);
  t.match(r.stderr, /BITDROP_CHUNK_CACHE_MIB must be a whole number of MiB \(0 turns the chunk cache off\), not "12MiB"/);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a lone download reads two chunks ahead while the cache has idle buffers, one when it has not', async (t) => {
  // The client goes away half-way through the first chunk's bytes. A chunk goes to the socket in one write,
  // so the sender is on the second chunk by then: chunks 0 and 1, and what it read ahead of chunk 1.
  for (const [buffers, opened, ahead] of [[6, 4, 'two'], [3, 3, 'one']] as const) {
    const f = chunkFolder(6);
    const cache = new ChunkCache(buffers * CHUNK, CHUNK);
    const target = slowTarget(2, CHUNK / 2);
    await sendSegments(f.source, f.segments(), () => 64 * 1024, target.out, new BufferPool(CHUNK), undefined, cache);
    await target.ended;
    t.equal(f.opens(), opened, `a cache of ${buffers} buffers: ${f.opens()} chunks read, ${ahead} ahead of the one being sent`);
    t.ok(cache.buffers <= buffers, 'within its budget');
  }
});
