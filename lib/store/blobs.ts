// Where chunk payloads live. One interface, two backends (as hsd's blockstore):
//  - "file":  one file per chunk under <dataDir>/chunks/ab/<sha256>; reads stream straight from disk.
//  - "level": the payload as a LevelDB value b[sha256].
// The refcount index (c[sha256]) always stays in LevelDB; BENCHMARKS.md holds the measurements that made
// "file" the default.

import fs from 'fs';
import fsp from 'fs/promises';
import path from 'path';
import crypto from 'crypto';
import type { Db } from './db';
import { layout, PREFIX } from './layout';

export type BlobBackend = 'file' | 'level';

export interface BlobHandle {
  /** reads into `buf` from byte `position` of the chunk; returns the bytes read (0 at the end) */
  read(buf: Buffer, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface BlobStore {
  /** Stores a payload given as consecutive pieces. It is durable only after `flush()` resolves. */
  put(hash: Buffer, data: Buffer[]): Promise<void>;
  /** Makes every earlier put durable (the store calls it before committing a manifest). */
  flush(): Promise<void>;
  has(hash: Buffer): Promise<boolean>;
  /** Opens one chunk for positioned reads (downloads). */
  open(hash: Buffer): Promise<BlobHandle>;
  del(hash: Buffer): Promise<void>;
  /** Every stored payload's hash, for the start-up orphan sweep. */
  list(): AsyncIterable<Buffer>;
}


/** O_DIRECT needs lengths in whole logical blocks; 4096 covers every common disk */
const DIRECT_ALIGN = 4096;

const DIRECT_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_DIRECT;

/** Writes `data` to a new file at `file` and syncs it. */
async function writeSynced(file: string, data: Buffer[], flags: string | number) {
  const fh = await fsp.open(file, flags, 0o600);
  try {
    // writev takes at most IOV_MAX (1024) buffers per call
    for (let i = 0; i < data.length; i += 1024) await fh.writev(data.slice(i, i + 1024));
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

export interface FileBlobsOptions {
  /**
   * Make renames durable by syncing the renamed files rather than their directories: on a FUSE mount
   * (GlusterFS) a directory fsync never reaches the bricks, a file's fsync does (lib/store/volume.ts).
   */
  syncRenamedFiles?: boolean;
  /**
   * A leader term (lib/lease): its temp files go to tmp/t<term>/, a directory no other daemon ever enters.
   * Without a term they go to tmp/ itself.
   */
  term?: number;
}

export class FileBlobs implements BlobStore {
  private readonly dirtyDirs = new Set<string>();
  private readonly renamed = new Set<string>();
  private readonly madeDirs = new Set<string>();
  private direct = process.env.BITDROP_DIRECT_IO !== '0';
  private readonly syncRenamedFiles: boolean;
  /** the syncs started by earlier flushes: a flush that finds nothing left to sync still waits for them */
  private syncing: Promise<unknown> = Promise.resolve();
  /** where this daemon writes chunks before renaming them into place */
  private readonly tmp: string;
  private readonly term: number | undefined;

  constructor(private readonly root: string, opts: FileBlobsOptions = {}) {
    this.syncRenamedFiles = opts.syncRenamedFiles ?? false;
    this.term = opts.term;
    this.tmp = opts.term === undefined ? path.join(root, 'tmp') : path.join(root, 'tmp', `t${opts.term}`);
    // (a term's directory is made by prepare(), asynchronously: the event loop never waits on the volume)
    if (opts.term === undefined) fs.mkdirSync(this.tmp, { recursive: true, mode: 0o700 });
  }

  /**
   * Makes this daemon's temp dir and clears what crashed writers left.
   *
   * Without a term, the temp files left in tmp/ by a crash are listed before this store writes any, and
   * removed in the background.
   *
   * With a leader term, nothing of an earlier term is touched on the way to serving, not even listed: the
   * daemon of the term before may be alive and stopped (SIGSTOP, or its GlusterFS client stopped or cut off)
   * in the middle of creating or renaming one of its temp files. Its client then holds the brick's entry lock
   * on that name for as long as it is stopped; an unlink of the name waits for it, and while it waits the
   * kernel holds the directory's lock on this machine's mount, so every later lookup or create in that
   * directory waits too. (Measured: the next leader removing such a leftover in tmp/ blocked its own start-up
   * walk of the data dir, its event loop stopped renewing the lease, and its watchdog killed it.) So each term
   * writes in tmp/t<term>/ of its own, and the directories of terms before the last one, whose daemons were
   * fenced a whole term ago, are removed later in the background, one file at a time.
   */
  async prepare(): Promise<void> {
    await fsp.mkdir(this.tmp, { recursive: true, mode: 0o700 });
    if (this.term === undefined) {
      const leftovers = await fsp.readdir(this.tmp);
      void (async () => { for (const f of leftovers) await fsp.rm(path.join(this.tmp, f), { force: true }).catch(() => undefined); })();
    }
  }

  /**
   * With a leader term: removes the temp dirs of terms before the last one (and temp files of a run without a
   * lease), one file at a time, never awaited by a request: a removal that waits on a stopped client's
   * lock holds one worker thread, never the event loop or a directory this term uses.
   */
  async clearEarlierTerms(stopped: () => boolean = () => false): Promise<number> {
    if (this.term === undefined) return 0;
    const top = path.join(this.root, 'tmp');
    const entries = await fsp.readdir(top);
    const terms = entries.map((n) => /^t(\d+)$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]))
      .filter((k) => k < this.term!);
    // the last term before this one may still have a live (stopped) daemon: its directory stays
    const previous = terms.length ? Math.max(...terms) : undefined;
    let removed = 0;
    for (const name of entries) {
      if (stopped()) break;
      const m = /^t(\d+)$/.exec(name);
      // files in tmp/ itself are from a run without a lease: older than any term
      if (m ? Number(m[1]) >= (previous ?? 0) : previous === undefined) continue;
      const dir = path.join(top, name);
      if (!m) { await fsp.rm(dir, { force: true }).catch(() => undefined); removed++; continue; }
      for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
        if (stopped()) return removed;
        await fsp.rm(path.join(dir, f), { force: true }).catch(() => undefined);
        removed++;
      }
      await fsp.rmdir(dir).catch(() => undefined);
    }
    return removed;
  }

  private pathOf(hash: Buffer) {
    const hex = hash.toString('hex');
    return path.join(this.root, hex.slice(0, 2), hex);
  }

  async put(hash: Buffer, data: Buffer[]): Promise<void> {
    const final = this.pathOf(hash);
    const dir = path.dirname(final);
    if (!this.madeDirs.has(dir)) {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      this.madeDirs.add(dir);
    }
    // Write to a temp name, sync, then rename: a crash never leaves a torn chunk under its hash.
    const tmp = path.join(this.tmp, crypto.randomBytes(8).toString('hex'));
    const length = data.reduce((n, b) => n + b.length, 0);
    if (!(this.direct && length % DIRECT_ALIGN === 0 && (await this.tryDirect(tmp, data)))) {
      await writeSynced(tmp, data, 'w');
    }
    await fsp.rename(tmp, final);
    if (this.syncRenamedFiles) this.renamed.add(final);
    else this.dirtyDirs.add(dir);
  }

  /**
   * Whole chunks bypass the page cache (O_DIRECT), as databases write their data files: the bytes go from
   * the upload's memory to the disk without a copy into the cache, which cost more CPU than hashing them
   * on this VM (BENCHMARKS.md). Returns false where it is refused, for a buffered write instead: a file
   * system that takes no O_DIRECT (tmpfs: the open fails) from now on, a misaligned buffer (the write
   * fails) this once.
   */
  private async tryDirect(tmp: string, data: Buffer[]): Promise<boolean> {
    try {
      await writeSynced(tmp, data, DIRECT_FLAGS);
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EINVAL') throw err;
      if (e.syscall === 'open') this.direct = false;
      return false;
    }
  }

  async flush(): Promise<void> {
    // The renames are durable once their directories are synced — or, on a FUSE mount, once the renamed
    // files are: the brick's fsync of the file commits its file system's journal, rename included.
    const targets = [...this.dirtyDirs, ...this.renamed];
    this.dirtyDirs.clear();
    this.renamed.clear();
    const mine = Promise.all(targets.map(async (d) => {
      const fh = await fsp.open(d, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
    }));
    const earlier = this.syncing;
    this.syncing = mine.catch(() => {});
    await Promise.all([earlier, mine]);
  }

  /** when the payload was written (ms since the epoch), or undefined when there is none */
  async writtenAt(hash: Buffer): Promise<number | undefined> {
    return fsp.stat(this.pathOf(hash)).then((s) => s.mtimeMs, () => undefined);
  }

  async has(hash: Buffer): Promise<boolean> {
    return fsp.access(this.pathOf(hash)).then(() => true, () => false);
  }

  async open(hash: Buffer): Promise<BlobHandle> {
    const fh = await fsp.open(this.pathOf(hash), 'r');
    return {
      read: async (buf, position) => (await fh.read(buf, 0, buf.length, position)).bytesRead,
      close: () => fh.close(),
    };
  }

  async del(hash: Buffer): Promise<void> {
    await fsp.rm(this.pathOf(hash), { force: true });
  }

  async *list(): AsyncIterable<Buffer> {
    for (const shard of await fsp.readdir(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of await fsp.readdir(path.join(this.root, shard))) {
        if (/^[0-9a-f]{64}$/.test(name)) yield Buffer.from(name, 'hex');
      }
    }
  }
}

export class LevelBlobs implements BlobStore {
  private dirty = false;

  constructor(private readonly db: Db) {}

  async put(hash: Buffer, data: Buffer[]): Promise<void> {
    this.dirty = true;
    await this.db.put(layout.blob(hash), Buffer.concat(data));
  }

  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    // LevelDB's log is sequential: one synced write makes every earlier write durable too.
    await this.db.put(layout.singleton('flush'), Buffer.alloc(0), { sync: true });
  }

  async has(hash: Buffer): Promise<boolean> {
    return (await this.db.get(layout.blob(hash))) !== undefined;
  }

  async open(hash: Buffer): Promise<BlobHandle> {
    const data = await this.db.get(layout.blob(hash));
    if (!data) throw Object.assign(new Error(`chunk ${hash.toString('hex')} is missing`), { code: 'ENOENT' });
    return {
      read: async (buf, position) => data.copy(buf, 0, position, Math.min(data.length, position + buf.length)),
      close: async () => {},
    };
  }

  async del(hash: Buffer): Promise<void> {
    await this.db.del(layout.blob(hash));
  }

  async *list(): AsyncIterable<Buffer> {
    for await (const key of this.db.keys(layout.range(PREFIX.blob))) yield Buffer.from(layout.body(key));
  }
}
