// Where chunk payloads live. One interface, two backends (as hsd's blockstore):
//  - "file":  one file per chunk under <dataDir>/chunks/ab/<sha256>; reads stream straight from disk.
//  - "level": the payload as a LevelDB value b[sha256].
// The refcount index (c[sha256]) always stays in LevelDB; BENCHMARKS.md holds the measurements that made
// "file" the default.

import fs from 'fs';
import fsp from 'fs/promises';
import path from 'path';
import crypto from 'crypto';
import type { ClassicLevel } from 'classic-level';
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


export class FileBlobs implements BlobStore {
  private readonly dirtyDirs = new Set<string>();

  constructor(private readonly root: string) {
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true, mode: 0o700 });
    // Temp files left by a crash are never referenced: clear them.
    for (const f of fs.readdirSync(path.join(root, 'tmp'))) fs.rmSync(path.join(root, 'tmp', f), { force: true });
  }

  private pathOf(hash: Buffer) {
    const hex = hash.toString('hex');
    return path.join(this.root, hex.slice(0, 2), hex);
  }

  async put(hash: Buffer, data: Buffer[]): Promise<void> {
    const final = this.pathOf(hash);
    const dir = path.dirname(final);
    await fsp.mkdir(dir, { recursive: true });
    // Write to a temp name, sync, then rename: a crash never leaves a torn chunk under its hash.
    const tmp = path.join(this.root, 'tmp', crypto.randomBytes(8).toString('hex'));
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      // writev takes at most IOV_MAX (1024) buffers per call
      for (let i = 0; i < data.length; i += 1024) await fh.writev(data.slice(i, i + 1024));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, final);
    this.dirtyDirs.add(dir);
  }

  async flush(): Promise<void> {
    // The renames are durable once their directories are synced.
    const dirs = [...this.dirtyDirs];
    this.dirtyDirs.clear();
    await Promise.all(dirs.map(async (d) => {
      const fh = await fsp.open(d, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
    }));
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
  constructor(private readonly db: ClassicLevel<Buffer, Buffer>) {}

  async put(hash: Buffer, data: Buffer[]): Promise<void> {
    await this.db.put(layout.blob(hash), Buffer.concat(data));
  }

  async flush(): Promise<void> {
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
