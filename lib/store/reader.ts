// Sends bytes [start, end] of a file chunk by chunk, with positioned reads straight into the buffers that
// go to the socket, one read ahead of it, and no stream layer in between.

import type { BlobHandle } from './blobs';

export interface Segment {
  hash: Buffer;
  /** first and last byte (inclusive) within the chunk */
  from: number;
  to: number;
  /** small enough to be stored inline in LevelDB (b[sha256]) rather than as a chunk file */
  inline: boolean;
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

  constructor(private readonly maxBytes: number) {}

  /** A buffer of at least `size` bytes: the smallest kept one that fits, else a new one. */
  take(size: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].length >= size && (best < 0 || this.free[i].length < this.free[best].length)) best = i;
    }
    if (best < 0) return Buffer.allocUnsafeSlow(size);
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
  pool: BufferPool, onBytes?: (n: number) => void): Promise<void> {
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
      if (!next) break;
      if (out.destroyed) return;
      pending = readNext();
      pending.catch(() => {}); // awaited on the next turn; a client gone meanwhile must not leave it unhandled
      if (!out.write(next.bytes, (err) => { if (!err) pool.give(next.owned); })) {
        await new Promise<void>((resolve) => {
          const done = () => { out.off('drain', done); out.off('close', done); resolve(); };
          out.once('drain', done);
          out.once('close', done);
        });
      }
    }
    out.end();
  } finally {
    await pending.catch(() => null);
    await handle?.close();
  }
}
