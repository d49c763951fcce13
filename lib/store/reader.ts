// Sends bytes [start, end] of a file chunk by chunk, with positioned reads straight into the buffers that
// go to the socket, reads running ahead of it (one, or two whole chunks for a lone download), and no stream
// layer in between.

import type { BlobHandle } from './blobs';
import { youngCollector } from './gc';

export interface Segment {
  hash: Buffer;
  /** first and last byte (inclusive) within the chunk */
  from: number;
  to: number;
  /** small enough to be stored inline in LevelDB (b[sha256]) rather than as a chunk file */
  inline: boolean;
  /** the whole chunk's length */
  size: number;
}

/** where sendSegments finds each segment's chunk */
export interface ChunkSource {
  open(seg: Segment): Promise<BlobHandle>;
}

/**
 * Read buffers kept for reuse. A fresh buffer for every read cost more than the read itself on this VM
 * (each new page is a fault into the hypervisor): downloads at 0.6–1.3 GB/s, moving with the allocator's
 * mood. Reused buffers keep their pages (BENCHMARKS.md).
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private kept = 0;
  // Past the pool (many downloads at once), buffers become garbage when their write completes: a
  // young-generation collection every 16 MiB of new ones keeps them from piling up (256 downloads
  // otherwise peaked 20–40 MiB higher).
  private readonly made = youngCollector(16 * 1024 * 1024);

  constructor(private readonly maxBytes: number) {}

  /** A buffer of at least `size` bytes: the smallest kept one that fits, else a new one. */
  take(size: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].length >= size && (best < 0 || this.free[i].length < this.free[best].length)) best = i;
    }
    if (best < 0) {
      this.made(size);
      return Buffer.allocUnsafeSlow(size);
    }
    const [buf] = this.free.splice(best, 1);
    this.kept -= buf.length;
    return buf;
  }

  /** Only once nothing else holds `buf`: a socket write has completed. */
  give(buf: Buffer) {
    if (this.kept + buf.length > this.maxBytes) return;
    this.free.push(buf);
    this.kept += buf.length;
  }
}

/**
 * Whole chunks held in memory while downloads send them, shared by every download of the same chunk. With
 * many downloads at once, each one reading its own small slices (the shared read budget split N ways) was
 * dominated by thread-pool round trips: every positioned read is a hand-off to a libuv thread and back, two
 * context switches, 64 KiB at a time with 64 clients (`perf`: finish_task_switch was a third of the
 * daemon's CPU; BENCHMARKS.md). A cached chunk is read once with one call and written to each socket in
 * large slices. Entries in use are pinned, unused ones are evicted oldest first, and when every buffer is
 * pinned a download falls back to pooled slice reads.
 *
 * The cache owns a fixed set of buffers of one chunk each, made on first need and reused for ever: an
 * evicted chunk's buffer is the next chunk's. Its memory is therefore exactly its budget. (It used to let
 * evicted buffers go to the garbage collector; with 64 downloads churning through a 64 MiB file, dead
 * 4 MiB buffers piled up until V8's external-memory trigger, and peak RSS rose 30–60 MiB above the budget.)
 */
export class ChunkCache {
  /** `settled`: its read has ended (only then may its buffer be handed out again); `failed`: and failed */
  private readonly entries = new Map<string, { data: Promise<Buffer>; buf: Buffer; users: number; settled: boolean; failed: boolean }>();
  /** buffers of evicted chunks, waiting for the next read */
  private readonly spare: Buffer[] = [];
  private made = 0;
  private readonly maxBuffers: number;

  /** `maxBytes` of buffers of `chunkSize` bytes each */
  constructor(maxBytes: number, private readonly chunkSize: number) {
    this.maxBuffers = Math.floor(maxBytes / chunkSize);
  }

  /** buffers made so far (their bytes are the cache's whole memory) */
  get buffers() { return this.made; }

  /** Buffers nobody holds: spare, not made yet, or of a cached chunk no download is sending. */
  idle(): number {
    let n = this.spare.length + this.maxBuffers - this.made;
    for (const e of this.entries.values()) if (e.users === 0 && e.settled) n++;
    return n;
  }

  /** The whole chunk, pinned until `release`; undefined when every buffer is pinned. */
  acquire(seg: Segment, source: ChunkSource): { data: Promise<Buffer>; release: () => void } | undefined {
    if (seg.size > this.chunkSize) return undefined;
    const key = seg.hash.toString('latin1');
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key); // re-insert: Map order is the eviction order
      this.entries.set(key, e);
    } else {
      const buf = this.freeBuffer();
      if (!buf) return undefined;
      const data = readWhole(seg, source, buf.subarray(0, seg.size));
      const entry = { data, buf, users: 0, settled: false, failed: false };
      e = entry;
      this.entries.set(key, entry);
      data.then(() => { entry.settled = true; }, () => {
        // A failed read is not kept; its buffer is free again once its last user let go.
        entry.settled = entry.failed = true;
        if (this.entries.get(key) === entry) this.entries.delete(key);
        if (entry.users === 0) this.spare.push(entry.buf);
      });
    }
    const entry = e;
    entry.users++;
    let released = false;
    return {
      data: entry.data,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.users === 0 && entry.failed) this.spare.push(entry.buf);
      },
    };
  }

  /** a spare buffer, a new one within the budget, or the buffer of the oldest chunk nobody sends */
  private freeBuffer(): Buffer | undefined {
    const spare = this.spare.pop();
    if (spare) return spare;
    if (this.made < this.maxBuffers) {
      this.made++;
      return Buffer.allocUnsafeSlow(this.chunkSize);
    }
    for (const [k, old] of this.entries) {
      // A read still running writes into its buffer: never hand that buffer out again before it ends.
      if (old.users === 0 && old.settled) {
        this.entries.delete(k);
        return old.buf;
      }
    }
    return undefined;
  }
}

async function readWhole(seg: Segment, source: ChunkSource, buf: Buffer): Promise<Buffer> {
  const handle = await source.open(seg);
  try {
    let off = 0;
    while (off < seg.size) {
      const n = await handle.read(off === 0 ? buf : buf.subarray(off), off);
      if (n <= 0) throw Object.assign(new Error(`chunk ${seg.hash.toString('hex')} is shorter than its manifest says`), { code: 'EIO' });
      off += n;
    }
    return buf;
  } finally {
    await handle.close();
  }
}

/** idle cache buffers needed before a download reads a second chunk ahead (that one, and two for others) */
const SECOND_AHEAD_IDLE = 3;

/** bytes handed to the socket per write from a cached chunk: libuv writes it out without JS in between */
const CACHED_WRITE = 1024 * 1024;

export interface SendTarget {
  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean;
  end(): void;
  readonly destroyed: boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Writes bytes [from, to] of each segment to `out` (an HTTP response) without a stream in between: each
 * buffer goes to the socket with a callback, and returns to the pool when the kernel has taken it. The
 * next read runs while the socket sends the last one. Resolves when all is written or `out` closed.
 */
export async function sendSegments(chunks: ChunkSource, segments: Segment[], bufferSize: () => number, out: SendTarget,
  pool: BufferPool, onBytes?: (n: number) => void, cache?: ChunkCache): Promise<void> {
  const waitDrain = () => new Promise<void>((resolve) => {
    const done = () => { out.off('drain', done); out.off('close', done); resolve(); };
    out.once('drain', done);
    out.once('close', done);
  });
  let i = 0;
  while (i < segments.length) {
    // Large parts of chunk files go through the shared cache; small ranges and a full cache use slice reads.
    const seg = segments[i];
    const pinned = cache && !seg.inline && seg.to - seg.from + 1 >= seg.size / 2 ? cache.acquire(seg, chunks) : undefined;
    if (!pinned) {
      let j = i + 1;
      while (j < segments.length && !(cache && !segments[j].inline && segments[j].to - segments[j].from + 1 >= segments[j].size / 2)) j++;
      if (!(await sendSlices(chunks, segments.slice(i, j), bufferSize, out, pool, onBytes, waitDrain))) return;
      i = j;
      continue;
    }
    // Read the next chunk while this one is sent (a lone download would otherwise stall between chunks),
    // and the one after it too while the cache has buffers to spare: a lone 1 GiB download made a median
    // of 2,237 MB/s against 1,990 (10 alternating pairs, faster in 8). Many downloads keep the buffers
    // busy, and then each reads one ahead.
    const ahead: { release: () => void }[] = [];
    for (let k = 1; k <= 2; k++) {
      const later = segments[i + k];
      if (!cache || !later || later.inline || (k === 2 && cache.idle() < SECOND_AHEAD_IDLE)) break;
      const got = cache.acquire(later, chunks);
      if (!got) break;
      got.data.catch(() => {});
      ahead.push(got);
    }
    let outstanding = 0;
    let finished = false;
    const settle = () => { if (finished && outstanding === 0) pinned.release(); };
    try {
      const data = await pinned.data;
      for (let pos = seg.from; pos <= seg.to;) {
        if (out.destroyed) return;
        const n = Math.min(CACHED_WRITE, seg.to - pos + 1);
        outstanding++;
        onBytes?.(n);
        const more = out.write(data.subarray(pos, pos + n), () => { outstanding--; settle(); });
        pos += n;
        if (!more) await waitDrain();
      }
    } finally {
      finished = true;
      // A socket destroyed mid-write may never call back: its pin goes with it.
      if (out.destroyed) outstanding = 0;
      settle();
      for (const a of ahead) a.release();
    }
    i++;
  }
  if (!out.destroyed) out.end();
}

/** Slice reads into pooled buffers, one read ahead of the socket; false when `out` closed. */
async function sendSlices(chunks: ChunkSource, segments: Segment[], bufferSize: () => number, out: SendTarget,
  pool: BufferPool, onBytes: ((n: number) => void) | undefined, waitDrain: () => Promise<void>): Promise<boolean> {
  let index = 0;
  let handle: BlobHandle | undefined;
  let position = 0;
  const readNext = async (): Promise<{ owned: Buffer; bytes: Buffer } | null> => {
    const seg = segments[index];
    if (!seg) return null;
    if (!handle) {
      handle = await chunks.open(seg);
      position = seg.from;
    }
    const length = Math.min(bufferSize(), seg.to - position + 1);
    const owned = pool.take(length);
    const buf = owned.length === length ? owned : owned.subarray(0, length);
    const n = await handle.read(buf, position);
    if (n <= 0) throw Object.assign(new Error(`chunk ${seg.hash.toString('hex')} is shorter than its manifest says`), { code: 'EIO' });
    position += n;
    if (position > seg.to) {
      const h = handle;
      handle = undefined;
      index++;
      await h.close();
    }
    onBytes?.(n);
    return { owned, bytes: n === length ? buf : buf.subarray(0, n) };
  };
  let pending = readNext();
  try {
    for (;;) {
      const next = await pending;
      if (!next) return true;
      if (out.destroyed) return false;
      pending = readNext();
      pending.catch(() => {}); // awaited on the next turn; a client gone meanwhile must not leave it unhandled
      if (!out.write(next.bytes, (err) => { if (!err) pool.give(next.owned); })) await waitDrain();
    }
  } finally {
    await pending.catch(() => null);
    await handle?.close();
  }
}
