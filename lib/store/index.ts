// The content-addressed store: files are split into fixed-size chunks named by their SHA-256; a manifest
// lists a file's chunks. Identical chunks are stored once and refcounted. Every change that must be atomic
// (a manifest with its refcounts, a deletion with its refcounts) is one synced LevelDB batch, and payloads
// are durable before the batch that references them, so a crash never exposes a partial file. Payloads
// that no manifest references (an upload killed half-way) are removed at the next start.

import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { Readable } from 'stream';
import { ClassicLevel } from 'classic-level';
import { UserError } from '../errors';
import { layout, PREFIX, SCHEMA_VERSION } from './layout';
import { BlobBackend, BlobStore, FileBlobs, LevelBlobs } from './blobs';
import { Mutex } from './mutex';
import { RangeReader, type Segment } from './reader';

export type { BlobBackend } from './blobs';
export type BatchOp =
  | { type: 'put'; key: Buffer; value: Buffer }
  | { type: 'del'; key: Buffer };
export type Db = ClassicLevel<Buffer, Buffer>;

export interface FileManifest {
  id: string;
  name: string;
  type: string;
  size: number;
  /** hex SHA-256 of the whole file */
  sha256: string;
  chunkSize: number;
  /** hex SHA-256 of each chunk, in order */
  chunks: string[];
  /** ms since the epoch */
  created: number;
  /** hex SHA-256 of the delete token; the token itself is only ever given to the uploader */
  deleteTokenHash: string;
}

export interface IngestOptions {
  name: string;
  type: string;
  maxBytes: number;
  /** more writes to commit in the same atomic batch as the manifest (ledger account, indexes) */
  extraOps?: (manifest: FileManifest) => BatchOp[] | Promise<BatchOp[]>;
  /** called once the whole body is received and hashed, before the commit; may throw to refuse */
  beforeCommit?: (manifest: FileManifest) => void | Promise<void>;
  /** a fixed id (tests); otherwise 128 random bits */
  id?: string;
}

export interface StoreOptions {
  dir: string;
  backend?: BlobBackend;
  chunkSize?: number;
  /** LevelDB write buffer; 64 MiB measured ~5× faster than the default for chunk-sized values */
  writeBufferSize?: number;
}

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
const WRITES_IN_FLIGHT = 2;
/** bytes of read buffers shared by all downloads in flight */
const READ_BUDGET = 8 * 1024 * 1024;
const MAX_READ = 1024 * 1024;

/** 128 random bits, URL-safe. Not derived from content, so nobody can probe whether some bytes are stored. */
export const newId = () => crypto.randomBytes(16).toString('base64url');
export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
export const hashToken = (token: string) => crypto.createHash('sha256').update(token).digest('hex');

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const refValue = (count: number, size: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(count, 0);
  b.writeUInt32BE(size, 4);
  return b;
};

export class Store {
  readonly chunkSize: number;
  private readonly commitLock = new Mutex();
  /** chunks held by uploads in flight: never deleted under them */
  private readonly pins = new Map<string, number>();
  private activeReads = 0;
  private counts = { files: 0, bytes: 0, chunks: 0, chunkBytes: 0 };

  private constructor(readonly db: Db, readonly blobs: BlobStore, chunkSize: number, readonly backend: BlobBackend) {
    this.chunkSize = chunkSize;
  }

  static async open(opts: StoreOptions): Promise<Store> {
    fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    const db: Db = new ClassicLevel<Buffer, Buffer>(path.join(opts.dir, 'db'), {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      writeBufferSize: opts.writeBufferSize ?? 64 * 1024 * 1024,
    });
    await db.open();
    const backend = opts.backend ?? 'file';
    const blobs = backend === 'file' ? new FileBlobs(path.join(opts.dir, 'chunks')) : new LevelBlobs(db);
    const store = new Store(db, blobs, opts.chunkSize ?? DEFAULT_CHUNK_SIZE, backend);
    await store.checkVersion();
    await store.removeOrphans();
    await store.recount();
    return store;
  }

  private async checkVersion() {
    const v = await this.db.get(layout.version());
    if (v === undefined) {
      await this.db.put(layout.version(), json({ version: SCHEMA_VERSION }), { sync: true });
    } else if (JSON.parse(v.toString()).version !== SCHEMA_VERSION) {
      throw new Error(`database schema ${v.toString()} is not ${SCHEMA_VERSION}; this bitdrop cannot read it`);
    }
  }

  /** Payloads with no refcount entry were written by an upload that never committed. */
  async removeOrphans(): Promise<number> {
    let removed = 0;
    for await (const hash of this.blobs.list()) {
      if ((await this.db.get(layout.chunkRef(hash))) === undefined) {
        await this.blobs.del(hash);
        removed++;
      }
    }
    return removed;
  }

  private async recount() {
    const c = { files: 0, bytes: 0, chunks: 0, chunkBytes: 0 };
    for await (const value of this.db.values(layout.range(PREFIX.file))) {
      c.files++;
      c.bytes += (JSON.parse(value.toString()) as FileManifest).size;
    }
    for await (const value of this.db.values(layout.range(PREFIX.chunkRef))) {
      c.chunks++;
      c.chunkBytes += value.readUInt32BE(4);
    }
    this.counts = c;
  }

  stats() {
    return { ...this.counts, backend: this.backend, chunkSize: this.chunkSize };
  }

  async get(id: string): Promise<FileManifest | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    const v = await this.db.get(layout.file(id));
    return v === undefined ? undefined : (JSON.parse(v.toString()) as FileManifest);
  }

  async *manifests(): AsyncIterable<FileManifest> {
    for await (const v of this.db.values(layout.range(PREFIX.file))) yield JSON.parse(v.toString());
  }

  /**
   * Reads a whole upload from `source`, stores its chunks, and commits its manifest. Returns the manifest
   * and the delete token. Throws UserError 413 past `maxBytes` (nothing is kept).
   */
  async ingest(source: AsyncIterable<Buffer>, opts: IngestOptions): Promise<{ manifest: FileManifest; deleteToken: string }> {
    const whole = crypto.createHash('sha256');
    const chunks: string[] = [];
    const pinned: string[] = [];
    let size = 0;
    // A chunk is the list of received pieces (views, never copies) and its running hash; the file is
    // written with one writev. Copying into a chunk buffer cost a fifth of upload time (BENCHMARKS.md).
    let pieces: Buffer[] = [];
    let chunkHash = crypto.createHash('sha256');
    let fill = 0;
    // Up to WRITES_IN_FLIGHT chunk writes (each ends in its own fdatasync) run in libuv's thread pool
    // while the next chunk is received: disk and network overlap, memory stays bounded.
    const writes = new Set<Promise<void>>();
    let failed: unknown;
    const settleAll = () => Promise.all(writes);
    const flushChunk = async () => {
      const data = pieces;
      const hash = chunkHash.digest();
      pieces = [];
      chunkHash = crypto.createHash('sha256');
      fill = 0;
      const hex = hash.toString('hex');
      chunks.push(hex);
      this.pin(hex);
      pinned.push(hex);
      while (writes.size >= WRITES_IN_FLIGHT) await Promise.race(writes);
      if (failed) throw failed;
      const w: Promise<void> = this.storeChunk(hash, data).then(
        () => { writes.delete(w); },
        (err) => { writes.delete(w); failed ??= err; },
      );
      writes.add(w);
    };
    try {
      for await (const piece of source) {
        size += piece.length;
        if (size > opts.maxBytes) throw tooLarge(opts.maxBytes);
        whole.update(piece);
        let off = 0;
        while (off < piece.length) {
          const n = Math.min(piece.length - off, this.chunkSize - fill);
          const part = n === piece.length ? piece : piece.subarray(off, off + n);
          pieces.push(part);
          chunkHash.update(part);
          fill += n;
          off += n;
          if (fill === this.chunkSize) await flushChunk();
        }
      }
      if (fill > 0) await flushChunk();
      await settleAll();
      if (failed) throw failed;
      const deleteToken = crypto.randomBytes(16).toString('base64url');
      const manifest: FileManifest = {
        id: opts.id ?? newId(),
        name: opts.name,
        type: opts.type,
        size,
        sha256: whole.digest('hex'),
        chunkSize: this.chunkSize,
        chunks,
        created: Date.now(),
        deleteTokenHash: hashToken(deleteToken),
      };
      await opts.beforeCommit?.(manifest);
      await this.commit(manifest, opts.extraOps ? await opts.extraOps(manifest) : []);
      return { manifest, deleteToken };
    } catch (err) {
      await settleAll();
      throw translateIoError(err);
    } finally {
      await this.unpin(pinned);
    }
  }

  private async storeChunk(hash: Buffer, data: Buffer[]) {
    // A refcount entry means the payload is already durable: identical chunks are written once.
    if ((await this.db.get(layout.chunkRef(hash))) !== undefined) return;
    await this.blobs.put(hash, data);
  }

  private async commit(manifest: FileManifest, extra: BatchOp[]) {
    await this.blobs.flush();
    await this.commitLock.run(async () => {
      const ops: BatchOp[] = [{ type: 'put', key: layout.file(manifest.id), value: json(manifest) }];
      const sizes = chunkSizes(manifest);
      let newChunks = 0;
      let newChunkBytes = 0;
      for (const [hex, size] of sizes) {
        const hash = Buffer.from(hex, 'hex');
        const cur = await this.db.get(layout.chunkRef(hash));
        const count = cur === undefined ? 0 : cur.readUInt32BE(0);
        if (count === 0) { newChunks++; newChunkBytes += size; }
        ops.push({ type: 'put', key: layout.chunkRef(hash), value: refValue(count + 1, size) });
      }
      await this.db.batch([...ops, ...extra], { sync: true });
      this.counts.files++;
      this.counts.bytes += manifest.size;
      this.counts.chunks += newChunks;
      this.counts.chunkBytes += newChunkBytes;
    });
  }

  /** Removes a file and frees the chunks no other file uses. `extraOps` join the same atomic batch. */
  async delete(id: string, extraOps: BatchOp[] = []): Promise<FileManifest | undefined> {
    return this.commitLock.run(async () => {
      const manifest = await this.get(id);
      if (!manifest) return undefined;
      const ops: BatchOp[] = [{ type: 'del', key: layout.file(id) }];
      const freed: Buffer[] = [];
      let freedBytes = 0;
      for (const [hex, size] of chunkSizes(manifest)) {
        const hash = Buffer.from(hex, 'hex');
        const cur = await this.db.get(layout.chunkRef(hash));
        const count = cur === undefined ? 0 : cur.readUInt32BE(0);
        if (count <= 1) {
          ops.push({ type: 'del', key: layout.chunkRef(hash) });
          freed.push(hash);
          freedBytes += size;
        } else {
          ops.push({ type: 'put', key: layout.chunkRef(hash), value: refValue(count - 1, size) });
        }
      }
      await this.db.batch([...ops, ...extraOps], { sync: true });
      this.counts.files--;
      this.counts.bytes -= manifest.size;
      this.counts.chunks -= freed.length;
      this.counts.chunkBytes -= freedBytes;
      // After the batch: a crash here leaves orphans, which the next start removes.
      for (const hash of freed) if (!this.pins.has(hash.toString('hex'))) await this.blobs.del(hash);
      return manifest;
    });
  }

  /** Bytes [start, end] (inclusive) of a file, streamed chunk by chunk. */
  read(manifest: FileManifest, start = 0, end = manifest.size - 1, onBytes?: (n: number) => void): Readable {
    const cs = manifest.chunkSize;
    const segments: Segment[] = [];
    for (let i = Math.floor(start / cs); i < manifest.chunks.length && i * cs <= end; i++) {
      segments.push({
        hash: Buffer.from(manifest.chunks[i], 'hex'),
        from: Math.max(start - i * cs, 0),
        to: Math.min(end - i * cs, Math.min(cs, manifest.size - i * cs) - 1),
      });
    }
    this.activeReads++;
    const stream = new RangeReader(this.blobs, segments, () => this.readBufferSize(), onBytes);
    stream.once('close', () => { this.activeReads--; });
    return stream;
  }

  /**
   * Large reads make a lone download as fast as nginx's sendfile; many downloads share a fixed budget
   * so memory stays flat (both measured: BENCHMARKS.md).
   */
  readBufferSize(): number {
    return Math.max(64 * 1024, Math.min(MAX_READ, Math.floor(READ_BUDGET / Math.max(1, this.activeReads) / 65536) * 65536));
  }

  private pin(hex: string) {
    this.pins.set(hex, (this.pins.get(hex) ?? 0) + 1);
  }

  private async unpin(hexes: string[]) {
    const released: string[] = [];
    for (const hex of hexes) {
      const n = (this.pins.get(hex) ?? 1) - 1;
      if (n > 0) this.pins.set(hex, n);
      else { this.pins.delete(hex); released.push(hex); }
    }
    if (released.length === 0) return;
    // A released chunk that no manifest references belongs to a failed upload: free it now.
    await this.commitLock.run(async () => {
      for (const hex of released) {
        const hash = Buffer.from(hex, 'hex');
        if (!this.pins.has(hex) && (await this.db.get(layout.chunkRef(hash))) === undefined) await this.blobs.del(hash);
      }
    });
  }

  async close() {
    await this.db.close();
  }
}

/** unique chunks of a manifest with their sizes (the last chunk may be short) */
function chunkSizes(m: FileManifest): Map<string, number> {
  const sizes = new Map<string, number>();
  m.chunks.forEach((hex, i) => sizes.set(hex, Math.min(m.chunkSize, m.size - i * m.chunkSize)));
  return sizes;
}

export function tooLarge(max: number) {
  return new UserError(413, `file too large: the limit is ${max} bytes`);
}

function translateIoError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new UserError(507, 'the server is out of storage space; nothing was stored');
  return err;
}
