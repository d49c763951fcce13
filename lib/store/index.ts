// The content-addressed store: files are split into fixed-size chunks named by their SHA-256; a manifest
// lists a file's chunks. Identical chunks are stored once and refcounted. Every change that must be atomic
// (a manifest with its refcounts, a deletion with its refcounts) is one synced LevelDB batch, and payloads
// are durable before the batch that references them, so a crash never exposes a partial file. Payloads
// that no manifest references (an upload killed half-way) are removed by a background sweep after start.
// The totals start-up needs (k[counters]) are written in the batch of every change they count, so opening
// a store reads one key whatever the number of files.

import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { PassThrough, type Readable } from 'stream';
import { UserError } from '../errors';
import { layout, PREFIX, SCHEMA_VERSION } from './layout';
import { BlobBackend, BlobStore, FileBlobs, LevelBlobs } from './blobs';
import { Mutex } from './mutex';
import { BufferPool, ChunkCache, sendSegments, type ChunkSource, type SendTarget, type Segment } from './reader';
import type { BlobHandle } from './blobs';
import { randomBytes } from './random';
import { HashPool, type Slot } from './hashers';
import { collectGarbage, youngCollector } from './gc';
import { inspectVolume, type VolumeInfo } from './volume';

import { Db, type BatchOp as DbOp } from './db';

export type { BlobBackend } from './blobs';
export { Db } from './db';
/**
 * One write of an atomic batch. `count` adds `by` to a persisted counter (k[counters]) in the same batch;
 * the counters are computed when the batch is queued, and the Db applies batches in queue order, so the
 * stored totals are exactly the sum of the batches written.
 */
export type BatchOp = DbOp | { type: 'count'; name: string; by: number };
export type Counters = Record<string, number>;

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
  /** the drop this file belongs to (uploaded with others): its payment account and delete token are the drop's */
  drop?: string;
  /**
   * A mirror's copy of another box's file (lib/mirrors): that file's URL there, checked when the copy was
   * made to publish these bytes; the copy keeps the original's id, so the same path works at the mirror.
   */
  copyOf?: string;
}

/** Several files uploaded together: one payment account (the drop's id), one page, one archive. */
export interface Drop {
  id: string;
  /** the member files' ids, in upload order */
  files: string[];
  created: number;
}

export interface Tombstone {
  deleted: number;
  why: string;
}

const tombstoneOps = (ids: string[], why: string, now = Date.now()): BatchOp[] =>
  ids.map((id) => ({ type: 'put' as const, key: layout.tombstone(id), value: Buffer.from(JSON.stringify({ deleted: now, why })) }));

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
  /**
   * An id the uploader asked for (a mirror copy keeping its original's id): used only when no file, drop or
   * tombstone has it — otherwise the upload gets a fresh id, as any other.
   */
  wantedId?: string;
  /** part of a form upload of several files (see finishDrop): the drop's id, and the delete token they share */
  drop?: { id: string; deleteToken: string };
  /**
   * Cuts the upload (its connection) when it holds memory while stalled and others wait; by default the
   * source is destroyed when it is a stream.
   */
  cut?: (err: Error) => void;
  /** the client's address: slots are shared fairly between addresses (admission.ts) */
  client?: string;
}

export interface StoreOptions {
  dir: string;
  backend?: BlobBackend;
  chunkSize?: number;
  /** LevelDB write buffer; 64 MiB measured ~5× faster than the default for chunk-sized values */
  writeBufferSize?: number;
  /**
   * A leader lease (lib/lease): `term` is this leader's fencing token, `fence` throws when it may not write.
   * The database is then opened under db.t<term> (see openTermDb), and every write and chunk change checks
   * the fence.
   */
  lease?: { term: number; fence: () => void };
}

/**
 * Another process holds the data dir's database (LevelDB's LOCK file: a POSIX lock, which GlusterFS
 * honours across mounts and releases as soon as its holder dies).
 */
export class StoreLockedError extends Error {
  readonly code = 'STORE_LOCKED';
  constructor(readonly dir: string) {
    super(`${dir} is in use by another process`);
  }
}

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
/**
 * chunks being hashed and written at once, for all uploads together (4 MiB of memory each). 4, not 6: with 6
 * the memory test's peak after a 4 GiB upload was 188–199 MiB against its 200 MiB bound (180–188 with 4).
 */
const SLOTS_IN_FLIGHT = 4;
/**
 * slots in use at once for all uploads together (being filled, hashed or written): 64 MiB, the memory
 * bound of every upload together; beyond it uploads wait (their sockets are not read)
 */
const MAX_SLOTS = 16;
/** uploads at least this large are followed by one full garbage collection (see ingest) */
const COLLECT_AFTER_BYTES = 256 * 1024 * 1024;
/** received bytes between young-generation collections during an upload */
const YOUNG_GC_BYTES = 8 * 1024 * 1024;
/** one-chunk files up to this size are hashed on the event loop: a thread round trip costs more */
const INLINE_HASH_BYTES = 256 * 1024;
/**
 * Chunks up to this size (small files, whose only chunk is this short) are stored inline: their payload is
 * a LevelDB value b[sha256] written in the same synced batch as the manifest, not a chunk file with its own
 * fdatasync, rename and directory sync. A small upload then costs one share of a group commit (db.ts), and
 * payload and manifest become durable in the same instant. MinIO inlines small objects into their metadata
 * for the same reason.
 */
export const INLINE_MAX = 64 * 1024;
/** bytes of read buffers shared by all downloads in flight */
const READ_BUDGET = 4 * 1024 * 1024;
const MAX_READ = 1024 * 1024;
/**
 * whole chunks kept for downloads in flight (reader.ts#ChunkCache), shared by all of them: six 4 MiB
 * buffers, made on first need and reused. 64 parallel downloads of one 64 MiB file cost the daemon
 * 0.31–0.40 CPU-s per GiB with 24–32 MiB, 0.5–0.7 with 12 MiB (most downloads then fall back to slice reads);
 * test/memory.test.ts peaked at 164 MiB with none, 183 with 24, 187–192 with 32 (BENCHMARKS.md).
 * BITDROP_CHUNK_CACHE_MIB sets it; 0 turns it off.
 */
function chunkCacheBytes(): number {
  const raw = process.env.BITDROP_CHUNK_CACHE_MIB ?? '24';
  const mib = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(mib) || mib < 0) {
    throw new Error(`BITDROP_CHUNK_CACHE_MIB must be a whole number of MiB (0 turns the chunk cache off), not "${raw}"`);
  }
  return mib * 1024 * 1024;
}

/** 128 random bits, URL-safe. Not derived from content, so nobody can probe whether some bytes are stored. */
export const newId = () => randomBytes(16).toString('base64url');
/** A delete token: 128 random bits, URL-safe; only its hash is stored. */
export const newToken = () => randomBytes(16).toString('base64url');
export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
export const hashToken = (token: string) => crypto.createHash('sha256').update(token).digest('hex');

const EMPTY_SHA256 = crypto.createHash('sha256').digest('hex');
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
export const count = (name: string, by: number): BatchOp => ({ type: 'count', name, by });
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
  /** the persisted counters, as of the last committed batch */
  private totals: Counters = {};
  /** chunks the orphan sweep is deleting: an upload of the same bytes waits for the deletion to finish */
  private readonly deleting = new Map<string, Promise<void>>();
  private readonly hashers: HashPool;
  /** read buffers reused by downloads: as much as the read budget, no more */
  private readonly readPool = new BufferPool(READ_BUDGET);
  private readonly chunkCache: ChunkCache;
  /** the database's directory (db, or this term's db.t<term>: never through the `db` symlink) */
  dbPath = '';
  /** throws when this daemon may not write (a leader lease ran out); a no-op without a lease */
  private fence: () => void = () => {};

  private constructor(readonly db: Db, readonly blobs: BlobStore, chunkSize: number, readonly backend: BlobBackend, readonly volume: VolumeInfo) {
    this.chunkSize = chunkSize;
    this.chunkCache = new ChunkCache(chunkCacheBytes(), chunkSize);
    // One hashing thread per core beyond the event loop's: on two cores one thread was as fast as two and
    // costs one V8 heap less (BENCHMARKS.md).
    this.hashers = new HashPool({ threads: Math.min(4, Math.max(1, os.availableParallelism() - 1)), inFlight: SLOTS_IN_FLIGHT, maxSlots: MAX_SLOTS, slotSize: chunkSize });
  }

  static async open(opts: StoreOptions): Promise<Store> {
    await fs.promises.mkdir(opts.dir, { recursive: true, mode: 0o700 });
    // A store last opened under a leader lease is never opened without one — not even to look: opening
    // LevelDB recovers its log and deletes files, and its leader (or a standby about to become it) may be
    // writing it from another mount right now; the database's lock does not keep two writers apart there.
    if (!opts.lease) {
      const term = leasedTerm(opts.dir);
      if (term !== undefined) throw new Error(`${opts.dir} is run with a leader lease in etcd (term ${term}): start it with --etcd and its --etcd-prefix, as every daemon of it`);
    }
    let db: Db;
    const location = opts.lease ? await takeDbForTerm(opts.dir, opts.lease.term) : path.join(opts.dir, 'db');
    try {
      db = await Db.open(location, { writeBufferSize: opts.writeBufferSize ?? 64 * 1024 * 1024, fence: opts.lease?.fence });
    } catch (err) {
      if ((err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED') throw new StoreLockedError(opts.dir);
      throw err;
    }
    const backend = opts.backend ?? 'file';
    const volume = inspectVolume(opts.dir);
    const blobs = backend === 'file'
      ? new FileBlobs(path.join(opts.dir, 'chunks'), { syncRenamedFiles: volume.kind !== 'local', term: opts.lease?.term })
      : new LevelBlobs(db);
    if (blobs instanceof FileBlobs) await blobs.prepare();
    const store = new Store(db, blobs, opts.chunkSize ?? DEFAULT_CHUNK_SIZE, backend, volume);
    store.fence = opts.lease?.fence ?? (() => {});
    store.dbPath = location;
    await store.checkVersion();
    if (opts.lease) await store.checkTerm(opts.lease.term);
    await store.loadCounters();
    return store;
  }

  /** no write of a lower term after a higher one: the stored term must be below this leader's */
  private async checkTerm(term: number) {
    const v = await this.db.get(layout.singleton('term'));
    const stored = v === undefined ? 0 : (JSON.parse(v.toString()) as { term: number }).term;
    if (stored >= term) throw new Error(`the store was opened by leader term ${stored}, not below this daemon's term ${term}: its lease is stale`);
    await this.db.put(layout.singleton('term'), json({ term }), { sync: true });
  }

  private async checkVersion() {
    const v = await this.db.get(layout.version());
    if (v === undefined) {
      await this.db.put(layout.version(), json({ version: SCHEMA_VERSION }), { sync: true });
    } else if (JSON.parse(v.toString()).version !== SCHEMA_VERSION) {
      throw new Error(`database schema ${v.toString()} is not ${SCHEMA_VERSION}; this bitdrop cannot read it`);
    }
  }

  /**
   * Files of a several-file upload are committed one by one, then the drop (or, for one file, the file
   * itself) is finished in one batch with its payment account. Files of a drop never finished (the daemon
   * stopped mid-upload) are removed by this sweep, which the daemon runs in the background after start:
   * only files created before `before` (the start), since uploads after it may still be finishing theirs.
   */
  async removeUnfinishedDrops(before: number, opts: { slice?: number; stopped?: () => boolean } = {}): Promise<number> {
    const slice = opts.slice ?? 256;
    const unfinished: string[] = [];
    let seen = 0;
    for await (const v of this.db.values(layout.range(PREFIX.file))) {
      if (opts.stopped?.()) break;
      if (++seen % slice === 0) await new Promise((resolve) => setImmediate(resolve));
      const m = JSON.parse(v.toString()) as FileManifest;
      if (m.drop && m.created < before && (await this.db.get(layout.drop(m.drop))) === undefined) unfinished.push(m.id);
    }
    if (unfinished.length) await this.deleteMany(unfinished, [], 'upload not finished');
    return unfinished.length;
  }

  /**
   * Finishes a form upload whose files were ingested with `drop` set: one file becomes an ordinary file,
   * several become a drop. `extraOps` (the payment account) join the same batch.
   */
  async finishDrop(dropId: string, members: FileManifest[], extraOps: BatchOp[] = []): Promise<Drop | undefined> {
    if (members.length === 1) {
      const { drop: _unused, ...single } = members[0];
      await this.write([{ type: 'put', key: layout.file(single.id), value: json(single) }, ...extraOps]);
      return undefined;
    }
    const drop: Drop = { id: dropId, files: members.map((m) => m.id), created: Date.now() };
    await this.write([...this.dropOps(drop), ...extraOps]);
    return drop;
  }

  /** Removes the files of a drop that failed before it was finished. */
  async abandonDrop(members: FileManifest[]) {
    if (members.length) await this.deleteMany(members.map((m) => m.id), [], 'upload not finished');
  }

  /** With a leader lease: the chunk temp dirs of earlier terms, removed in the background (blobs.ts). */
  async clearEarlierTerms(opts: { stopped?: () => boolean } = {}): Promise<number> {
    return this.blobs instanceof FileBlobs ? this.blobs.clearEarlierTerms(opts.stopped) : 0;
  }

  /**
   * Payloads with no refcount entry were written by an upload that never committed (killed half-way).
   * Runs while the daemon serves: in slices of `slice` payloads with a turn of the event loop between
   * them, skipping chunks that uploads in flight hold.
   */
  async removeOrphans(opts: { slice?: number; stopped?: () => boolean; writtenBefore?: number } = {}): Promise<number> {
    const slice = opts.slice ?? 256;
    let removed = 0;
    let seen = 0;
    for await (const hash of this.blobs.list()) {
      if (opts.stopped?.()) break;
      if (++seen % slice === 0) await new Promise((resolve) => setImmediate(resolve));
      const hex = hash.toString('hex');
      if (this.pins.has(hex) || (await this.db.get(layout.chunkRef(hash))) !== undefined) continue;
      // With a leader lease: a payload written since `writtenBefore` may belong to an upload of another term
      // still in flight (or of a daemon whose writes the fence has not stopped yet): never ours to remove.
      if (opts.writtenBefore !== undefined && this.blobs instanceof FileBlobs) {
        const at = await this.blobs.writtenAt(hash);
        if (at === undefined || at >= opts.writtenBefore) continue;
      }
      this.fence();
      // Checked and marked in one turn: an upload that pins this chunk later waits for the deletion.
      if (this.pins.has(hex) || this.deleting.has(hex)) continue;
      const done = this.blobs.del(hash).finally(() => this.deleting.delete(hex));
      this.deleting.set(hex, done);
      await done;
      removed++;
    }
    return removed;
  }

  private async loadCounters() {
    const v = await this.db.get(layout.counters());
    if (v !== undefined) {
      this.totals = JSON.parse(v.toString());
      return;
    }
    // A store from before the counters (or a new one): count once, and keep the totals from now on.
    const c = { files: 0, bytes: 0, chunks: 0, chunkBytes: 0 };
    for await (const value of this.db.values(layout.range(PREFIX.file))) {
      c.files++;
      c.bytes += (JSON.parse(value.toString()) as FileManifest).size;
    }
    for await (const value of this.db.values(layout.range(PREFIX.chunkRef))) {
      c.chunks++;
      c.chunkBytes += value.readUInt32BE(4);
    }
    await this.setCounters(c);
  }

  /** The persisted counters (a name never counted is absent). */
  counters(): Readonly<Counters> {
    return this.totals;
  }

  /** Sets counters to absolute values (a one-time count of an older store). */
  setCounters(values: Counters): Promise<void> {
    this.totals = { ...this.totals, ...values };
    return this.db.put(layout.counters(), json(this.totals), { sync: true });
  }

  /** Writes one atomic batch; its `count` operations update the persisted counters in the same batch. */
  write(ops: BatchOp[], opts: { sync?: boolean } = {}): Promise<void> {
    return this.queueWrite(ops, opts.sync ?? true);
  }

  /**
   * Queues a batch with its counts folded into k[counters]. Synchronous up to the queueing, so no other
   * batch can come between reading the totals and queueing the new ones; resolves once written.
   */
  private queueWrite(ops: BatchOp[], sync: boolean): Promise<void> {
    const writes: DbOp[] = [];
    const deltas = new Map<string, number>();
    for (const op of ops) {
      if (op.type === 'count') deltas.set(op.name, (deltas.get(op.name) ?? 0) + op.by);
      else writes.push(op);
    }
    if ([...deltas.values()].some((by) => by !== 0)) {
      const next = { ...this.totals };
      for (const [name, by] of deltas) if (by !== 0) next[name] = (next[name] ?? 0) + by;
      writes.push({ type: 'put', key: layout.counters(), value: json(next) });
      // Ahead of the write: a failed write fails every later one too (db.ts), and a restart reads the disk.
      this.totals = next;
    }
    return this.db.batch(writes, { sync });
  }

  stats() {
    const c = this.totals;
    return { files: c.files ?? 0, bytes: c.bytes ?? 0, chunks: c.chunks ?? 0, chunkBytes: c.chunkBytes ?? 0, backend: this.backend, chunkSize: this.chunkSize };
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
    // Received bytes are copied straight into a slot of shared memory (hashers.ts). When a slot is full a
    // worker thread hashes it (the chunk's key) while another folds it into the whole-file hash, and the
    // slot is written and synced from the same memory; meanwhile the event loop fills the next slot.
    // Slots in flight are bounded for all uploads together, so memory stays flat and disk, CPU and
    // network overlap.
    const whole = this.hashers.stream();
    const holder = {
      lastData: Date.now(),
      filling: false,
      client: opts.client,
      received: 0,
      cut: () => {
        const err = new UserError(408, 'the upload stalled while others waited for room; send it again');
        if (opts.cut) opts.cut(err);
        else (source as Partial<Readable>).destroy?.(err);
      },
    };
    const release = this.hashers.hold(holder);
    const chunks: string[] = [];
    const pinned: string[] = [];
    const jobs: Promise<void>[] = [];
    let failed: unknown;
    let onlyChunk: string | undefined;
    let inline: Buffer | undefined;
    let size = 0;
    let slot: Slot | undefined;
    let fill = 0;
    // Every piece is a fresh 64 KiB buffer from the socket, dead once copied into the slot. V8 frees them
    // only at a collection, and starts one for them after ~33 MiB (its external-memory trigger): a
    // young-generation collection every 8 MiB keeps the dead ones few, for ~1 ms each.
    const received = youngCollector(YOUNG_GC_BYTES);
    const flushChunk = async (last: boolean) => {
      holder.filling = false;
      const full = slot!;
      const length = fill;
      const index = chunks.length;
      const only = last && index === 0;
      slot = undefined;
      fill = 0;
      chunks.push('');
      if (only && length <= INLINE_HASH_BYTES) {
        // A small file: hashing it here is cheaper than a round trip to a thread; its one chunk's
        // hash is also the whole file's.
        const data = Buffer.from(full.buf.subarray(0, length));
        this.hashers.recycle(full);
        const digest = crypto.createHash('sha256').update(data).digest();
        if (length <= INLINE_MAX) {
          // Goes down with the manifest, in its batch: no pin needed, the commit itself holds it.
          onlyChunk = chunks[index] = digest.toString('hex');
          inline = data;
          return;
        }
        onlyChunk = chunks[index] = this.pinHex(digest, pinned);
        jobs.push(this.storeChunk(digest, [data]).catch((err) => { failed ??= err; }));
        return;
      }
      await this.hashers.admit();
      // The first chunk of a one-chunk file is the whole file: its hash is the file's.
      const folded = only ? undefined : whole.update(full, length).then(() => undefined, (err) => err as Error);
      jobs.push((async () => {
        try {
          const digest = await this.hashers.digest(full, length);
          const hex = chunks[index] = this.pinHex(digest, pinned);
          if (only) onlyChunk = hex;
          await this.storeChunk(digest, [full.buf.subarray(0, length)]);
        } catch (err) {
          failed ??= err;
        } finally {
          // The slot is free once both hashes have read it and its bytes are on disk.
          const err = await folded;
          if (err) failed ??= err;
          this.hashers.done();
          this.hashers.recycle(full);
        }
      })());
    };
    try {
      for await (const piece of source) {
        if (failed) throw failed;
        size += piece.length;
        holder.lastData = Date.now();
        holder.received = size;
        received(piece.length);
        if (size > opts.maxBytes) throw tooLarge(opts.maxBytes);
        let off = 0;
        while (off < piece.length) {
          if (!slot) {
            slot = await this.hashers.slot(holder);
            holder.filling = true;
            holder.lastData = Date.now();
          }
          const n = piece.copy(slot.buf, fill, off, Math.min(piece.length, off + this.chunkSize - fill));
          fill += n;
          off += n;
          if (fill === this.chunkSize) await flushChunk(false);
        }
      }
      if (fill > 0) await flushChunk(true);
      await Promise.all(jobs);
      if (failed) throw failed;
      const sha256 = onlyChunk ?? (size === 0 ? EMPTY_SHA256 : await whole.digest());
      const deleteToken = opts.drop?.deleteToken ?? newToken();
      const manifest: FileManifest = {
        id: opts.id ?? opts.wantedId ?? newId(),
        name: opts.name,
        type: opts.type,
        size,
        sha256,
        chunkSize: this.chunkSize,
        chunks,
        created: Date.now(),
        deleteTokenHash: hashToken(deleteToken),
        ...(opts.drop ? { drop: opts.drop.id } : {}),
      };
      await opts.beforeCommit?.(manifest);
      const wanted = opts.wantedId !== undefined && manifest.id === opts.wantedId;
      if (wanted && (await this.idTaken(manifest.id))) {
        manifest.id = newId();
        delete manifest.copyOf;
      }
      await this.commit(manifest, opts.extraOps ? await opts.extraOps(manifest) : [], inline, wanted && manifest.id === opts.wantedId);
      return { manifest, deleteToken };
    } catch (err) {
      await Promise.all(jobs);
      whole.drop();
      throw translateIoError(err);
    } finally {
      release();
      if (slot) this.hashers.recycle(slot);
      await this.unpin(pinned);
      // A large upload leaves a heap grown by the socket's dead read buffers, which V8 keeps until external
      // memory grows again; collect once, so the next work starts from a small heap (memory test: the peak
      // of 64 downloads after a 4 GiB upload moved between 185 and 216 MiB without this). Ending the hash
      // threads and dropping the spare slots as well was measured and made it worse (204–207 MiB instead
      // of 186): the next upload's fresh thread and slots came on top of what the allocator had kept.
      if (size >= COLLECT_AFTER_BYTES) collectGarbage();
    }
  }

  private pinHex(digest: Buffer, pinned: string[]): string {
    const hex = digest.toString('hex');
    this.pin(hex);
    pinned.push(hex);
    return hex;
  }

  private async storeChunk(hash: Buffer, data: Buffer[]) {
    await this.deleting.get(hash.toString('hex'));
    // A refcount entry means the payload is already durable: identical chunks are written once.
    if ((await this.db.get(layout.chunkRef(hash))) !== undefined) return;
    this.fence();
    await this.blobs.put(hash, data);
  }

  /** Whether a file, a drop or a tombstone has this id. */
  private async idTaken(id: string): Promise<boolean> {
    for (const key of [layout.file(id), layout.drop(id), layout.tombstone(id)]) if ((await this.db.get(key)) !== undefined) return true;
    return false;
  }

  /**
   * `inline`: the payload of the file's one small chunk, stored in the batch itself (INLINE_MAX); `wantedId`: the
   * id was asked for, and is refused (409) if another upload took it meanwhile
   */
  private async commit(manifest: FileManifest, extra: BatchOp[], inline?: Buffer, wantedId = false) {
    if (!inline) await this.blobs.flush();
    let newChunks = 0;
    let newChunkBytes = 0;
    // The refcounts are read and the batch queued under the lock, so commits see each other's counts in
    // order; the fsync is waited for outside it, so uploads finishing together share one (group commit,
    // db.ts). The answer still waits until this manifest is on disk.
    const { durable } = await this.commitLock.run(async () => {
      // two uploads asking for the same id at once: the second is refused (its sender tries again)
      if (wantedId && (await this.idTaken(manifest.id))) throw new UserError(409, `the id ${manifest.id} was taken meanwhile; send the file again`);
      const ops: BatchOp[] = [{ type: 'put', key: layout.file(manifest.id), value: json(manifest) }];
      for (const [hex, size] of chunkSizes(manifest)) {
        const hash = Buffer.from(hex, 'hex');
        const cur = await this.db.get(layout.chunkRef(hash));
        const count = cur === undefined ? 0 : cur.readUInt32BE(0);
        if (count === 0) {
          newChunks++;
          newChunkBytes += size;
          if (inline) ops.push({ type: 'put', key: layout.blob(hash), value: inline });
        }
        ops.push({ type: 'put', key: layout.chunkRef(hash), value: refValue(count + 1, size) });
      }
      ops.push(count('files', 1), count('bytes', manifest.size), count('chunks', newChunks), count('chunkBytes', newChunkBytes));
      return { durable: this.queueWrite([...ops, ...extra], true) };
    });
    await durable;
  }

  /**
   * Deletes a file (or every file of a drop, with its drop record) with `extraOps` in one synced batch, and
   * leaves a tombstone so its URL answers 410 Gone. `why` is what the tombstone says.
   */
  async delete(id: string, extraOps: BatchOp[] = [], why = 'deleted'): Promise<FileManifest | undefined> {
    return (await this.deleteMany([id], extraOps, why))[0];
  }

  /** Deletes a drop: its files and its record, in one batch (see delete). */
  async deleteDrop(dropId: string, extraOps: BatchOp[] = [], why = 'deleted'): Promise<Drop | undefined> {
    const drop = await this.getDrop(dropId);
    if (!drop) return undefined;
    await this.deleteMany(drop.files, [{ type: 'del', key: layout.drop(dropId) }, ...tombstoneOps([dropId], why), ...extraOps], why);
    return drop;
  }

  private async deleteMany(ids: string[], extraOps: BatchOp[], why: string): Promise<FileManifest[]> {
    return this.commitLock.run(async () => {
      const manifests: FileManifest[] = [];
      for (const id of ids) {
        const m = await this.get(id);
        if (m) manifests.push(m);
      }
      if (manifests.length === 0 && ids.length === 1) return [];
      const ops: BatchOp[] = [];
      const dropped = new Map<string, { count: number; size: number }>();
      for (const m of manifests) {
        ops.push({ type: 'del', key: layout.file(m.id) });
        for (const [hex, size] of chunkSizes(m)) {
          const d = dropped.get(hex) ?? { count: 0, size };
          d.count++;
          dropped.set(hex, d);
        }
      }
      ops.push(...tombstoneOps(manifests.map((m) => m.id), why));
      const freed: Buffer[] = [];
      let freedBytes = 0;
      for (const [hex, { count: drop, size }] of dropped) {
        const hash = Buffer.from(hex, 'hex');
        const cur = await this.db.get(layout.chunkRef(hash));
        const count = cur === undefined ? 0 : cur.readUInt32BE(0);
        if (count <= drop) {
          ops.push({ type: 'del', key: layout.chunkRef(hash) });
          if (size <= INLINE_MAX) ops.push({ type: 'del', key: layout.blob(hash) });
          freed.push(hash);
          freedBytes += size;
        } else {
          ops.push({ type: 'put', key: layout.chunkRef(hash), value: refValue(count - drop, size) });
        }
      }
      ops.push(count('files', -manifests.length), count('bytes', -manifests.reduce((n, m) => n + m.size, 0)),
        count('chunks', -freed.length), count('chunkBytes', -freedBytes));
      await this.queueWrite([...ops, ...extraOps], true);
      // After the batch: a crash here leaves orphans, which the next start removes.
      for (const hash of freed) {
        if (this.pins.has(hash.toString('hex'))) continue;
        this.fence();
        await this.blobs.del(hash);
      }
      return manifests;
    });
  }

  /** When and why a file or drop that no longer exists was deleted (its URL answers 410). */
  async tombstone(id: string): Promise<Tombstone | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    const v = await this.db.get(layout.tombstone(id));
    return v === undefined ? undefined : (JSON.parse(v.toString()) as Tombstone);
  }

  async getDrop(id: string): Promise<Drop | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    const v = await this.db.get(layout.drop(id));
    return v === undefined ? undefined : (JSON.parse(v.toString()) as Drop);
  }

  /** The write that records a drop (committed with its payment account by the caller). */
  dropOps(drop: Drop): BatchOp[] {
    return [{ type: 'put', key: layout.drop(drop.id), value: json(drop) }];
  }


  /**
   * Bytes [start, end] (inclusive) of a file as a stream, for callers that keep what they read (tests,
   * tools): its buffers are never reused, since a stream's consumer holds them past the write.
   */
  read(manifest: FileManifest, start = 0, end = manifest.size - 1, onBytes?: (n: number) => void): Readable {
    const out = new PassThrough();
    this.sendWith(new BufferPool(0), manifest, start, end, out, onBytes).catch((err) => out.destroy(err));
    return out;
  }

  /** Writes bytes [start, end] of a file to an HTTP response (reusing read buffers); resolves when done. */
  send(manifest: FileManifest, start: number, end: number, out: SendTarget, onBytes?: (n: number) => void): Promise<void> {
    return this.sendWith(this.readPool, manifest, start, end, out, onBytes, this.chunkCache);
  }

  private async sendWith(pool: BufferPool, manifest: FileManifest, start: number, end: number, out: SendTarget,
    onBytes?: (n: number) => void, cache?: ChunkCache): Promise<void> {
    this.activeReads++;
    try {
      await sendSegments(this.chunkSource, this.segments(manifest, start, end), () => this.readBufferSize(), out, pool, onBytes, cache);
    } finally {
      this.activeReads--;
    }
  }

  /** Small chunks are read from LevelDB when they are there (inline), else from the blob store. */
  private readonly chunkSource: ChunkSource = {
    open: async (seg: Segment): Promise<BlobHandle> => {
      const data = seg.inline ? await this.db.get(layout.blob(seg.hash)) : undefined;
      if (!data) return this.blobs.open(seg.hash);
      return {
        read: async (buf, position) => data.copy(buf, 0, position, Math.min(data.length, position + buf.length)),
        close: async () => {},
      };
    },
  };

  private segments(manifest: FileManifest, start: number, end: number): Segment[] {
    const cs = manifest.chunkSize;
    const segments: Segment[] = [];
    for (let i = Math.floor(start / cs); i < manifest.chunks.length && i * cs <= end; i++) {
      segments.push({
        hash: Buffer.from(manifest.chunks[i], 'hex'),
        from: Math.max(start - i * cs, 0),
        to: Math.min(end - i * cs, Math.min(cs, manifest.size - i * cs) - 1),
        inline: Math.min(cs, manifest.size - i * cs) <= INLINE_MAX,
        size: Math.min(cs, manifest.size - i * cs),
      });
    }
    return segments;
  }

  /**
   * Large reads make a lone download as fast as nginx's sendfile; many downloads share a fixed budget
   * so memory stays flat (both measured: BENCHMARKS.md).
   */
  /** Upload slots (4 MiB chunks being hashed and written) in use, of the most at once. */
  uploadSlots(): { inUse: number; max: number } {
    return this.hashers.slotsInUse();
  }

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
        if (!this.pins.has(hex) && (await this.db.get(layout.chunkRef(hash))) === undefined) {
          this.fence();
          await this.blobs.del(hash);
        }
      }
    });
  }

  async close() {
    await this.hashers.close();
    await this.db.close();
  }
}

/** the term of the last leader that opened the store under a lease (db → db.t<term>), if any */
function leasedTerm(dataDir: string): number | undefined {
  try {
    const m = /^db\.t(\d+)$/.exec(fs.readlinkSync(path.join(dataDir, 'db')));
    if (m) return Number(m[1]);
  } catch { /* not a symlink, or none */ }
  let names: string[] = [];
  try { names = fs.readdirSync(dataDir); } catch { /* a new data dir */ }
  const terms = names.map((n) => /^db\.t(\d+)$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
  return terms.length ? Math.max(...terms) : undefined;
}

/**
 * The database directory of a leader term. Each term opens LevelDB in a directory of its own, db.t<term>,
 * made from the term before's (or from the plain `db` of a store made without a lease): its tables, which
 * LevelDB never changes once written, hard-linked; its log, MANIFEST and CURRENT copied. The symlink `db`
 * then points at it, for people and tools. The new term never writes, renames or deletes anything in the
 * old directory, so:
 *   - a daemon of an earlier term that is still alive — stopped, or stuck in a hung mount, and so not yet
 *     fenced by its own clock — can only ever change its own old directory, which no one reads again;
 *   - nothing waits for that daemon's locks: GlusterFS keeps a stopped client's locks (AFR's eager locks on
 *     the log it was writing) for as long as it is stopped, and LevelDB deleting the old log there blocked
 *     the next leader's start until the old client resumed. Reading needs no lock.
 * The MANIFEST only names tables LevelDB had synced before writing it, so every table it names is whole.
 * Directories two terms old are removed in the background.
 */
async function takeDbForTerm(dataDir: string, term: number): Promise<string> {
  // Asynchronous throughout: on a hung mount (a stopped GlusterFS client's locks) these calls may wait, and
  // the event loop must go on renewing the lease meanwhile, or the watchdog rightly kills a leader stuck in a
  // synchronous call.
  const fsp = fs.promises;
  const link = path.join(dataDir, 'db');
  const target = path.join(dataDir, `db.t${term}`);
  const termDirs = async () => (await fsp.readdir(dataDir)).map((n) => /^db\.t(\d+)$/.exec(n)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1])).sort((a, b) => b - a);
  const exists = (p: string) => fsp.stat(p).then(() => true, () => false);
  let current: string | undefined;
  const st = await fsp.lstat(link).catch(() => undefined);
  if (st?.isSymbolicLink()) {
    const to = path.resolve(dataDir, await fsp.readlink(link));
    if (await exists(to)) current = to;
  } else if (st?.isDirectory()) {
    // a store made without a lease: its database becomes term 0's
    const t0 = path.join(dataDir, 'db.t0');
    await fsp.rename(link, t0);
    current = t0;
  }
  // A crash before the symlink was made: the newest term's directory is the database.
  if (!current) {
    const terms = await termDirs();
    if (terms.length) current = path.join(dataDir, `db.t${terms[0]}`);
  }
  const was = current ? /^db\.t(\d+)$/.exec(path.basename(current)) : null;
  if (was && Number(was[1]) >= term) throw new Error(`the store was opened by leader term ${was[1]}, not below this daemon's term ${term}: its lease is stale`);
  const building = `${target}.new`;
  await fsp.rm(building, { recursive: true, force: true });
  await fsp.mkdir(building, { mode: 0o700 });
  if (current) {
    for (const name of await fsp.readdir(current)) {
      if (name === 'LOCK' || name.startsWith('LOG')) continue;
      const from = path.join(current, name);
      if (/\.(ldb|sst)$/.test(name)) await fsp.link(from, path.join(building, name));
      else await fsp.copyFile(from, path.join(building, name));
    }
  }
  // the copies durable before the directory is taken into use (on FUSE a file's fsync reaches the bricks)
  for (const name of await fsp.readdir(building)) {
    const fh = await fsp.open(path.join(building, name), 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  }
  await fsp.rename(building, target);
  const tmp = path.join(dataDir, `.db-link-${process.pid}`);
  await fsp.rm(tmp, { force: true });
  await fsp.symlink(`db.t${term}`, tmp);
  await fsp.rename(tmp, link);
  // Two terms back: its daemon was fenced a whole term ago. (The last term's stays: its daemon may be stuck.)
  const previous = was ? Number(was[1]) : -1;
  for (const old of await termDirs()) {
    if (old < previous) void fsp.rm(path.join(dataDir, `db.t${old}`), { recursive: true, force: true }).catch(() => undefined);
  }
  return target;
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
