// Streams bytes [start, end] of a file chunk by chunk with positioned reads straight into the buffers that
// go to the socket: one stream layer, one buffer per read, no read-ahead beyond what the consumer takes.

import { Readable } from 'stream';
import type { BlobHandle, BlobStore } from './blobs';

export interface Segment {
  hash: Buffer;
  /** first and last byte (inclusive) within the chunk */
  from: number;
  to: number;
}

export class RangeReader extends Readable {
  private index = 0;
  private position = -1;
  private handle?: BlobHandle;

  constructor(
    private readonly blobs: BlobStore,
    private readonly segments: Segment[],
    private readonly bufferSize: () => number,
    private readonly onBytes?: (n: number) => void,
  ) {
    // Two reads ahead of the socket: disk reads of the next buffers overlap the send of this one
    // (1.07 → 1.34 GB/s for a lone 512 MiB download; the read budget keeps many downloads small).
    super({ highWaterMark: 2 * bufferSize() });
  }

  override _read(): void {
    this.next().catch((err) => this.destroy(err));
  }

  private async next(): Promise<void> {
    const seg = this.segments[this.index];
    if (!seg) {
      this.push(null);
      return;
    }
    if (!this.handle) {
      this.handle = await this.blobs.open(seg.hash);
      this.position = seg.from;
    }
    const length = Math.min(this.bufferSize(), seg.to - this.position + 1);
    const buf = Buffer.allocUnsafe(length);
    const n = await this.handle.read(buf, this.position);
    if (n <= 0) throw Object.assign(new Error(`chunk ${seg.hash.toString('hex')} is shorter than its manifest says`), { code: 'EIO' });
    this.position += n;
    if (this.position > seg.to) {
      await this.handle.close();
      this.handle = undefined;
      this.index++;
    }
    this.onBytes?.(n);
    this.push(n === length ? buf : buf.subarray(0, n));
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    const h = this.handle;
    this.handle = undefined;
    if (!h) return cb(err);
    h.close().then(() => cb(err), () => cb(err));
  }
}
