// A directory of the shared data dir that each leader term keeps to itself: `<base>.t<term>`, seeded at
// takeover with a copy of the newest earlier term's (or of the plain `<base>` of a run without a lease).
//
// Why a copy and not the same files: the daemon of the term before may be alive and stopped (SIGSTOP, or its
// GlusterFS client stopped or cut off) with one of these files open for writing. Its client then keeps the
// bricks' lock on that file (AFR's eager lock) for as long as it is stopped, and a write, truncate or unlink
// of it from the new leader waits just as long — on the event loop, for files written synchronously, where
// it stops the lease's renewals. Reading takes no lock, so copying is safe; the copy is the new term's alone.
// Directories two terms back (their daemons were fenced a whole term ago) are removed in the background.

import fs from 'fs';
import path from 'path';

const fsp = fs.promises;

/** Makes `<parent>/<base>.t<term>` from the newest earlier term's copy; resolves with its path. */
export async function takeTermDir(parent: string, base: string, term: number): Promise<string> {
  await fsp.mkdir(parent, { recursive: true, mode: 0o700 });
  const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.t(\\d+)$`);
  const names = await fsp.readdir(parent);
  const earlier = names.map((n) => pattern.exec(n)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1])).filter((k) => k < term).sort((a, b) => b - a);
  const target = path.join(parent, `${base}.t${term}`);
  const from = earlier.length ? path.join(parent, `${base}.t${earlier[0]}`) : names.includes(base) ? path.join(parent, base) : undefined;
  const building = `${target}.new`;
  await fsp.rm(building, { recursive: true, force: true });
  await fsp.mkdir(building, { mode: 0o700 });
  if (from) {
    for (const e of await fsp.readdir(from, { withFileTypes: true }).catch(() => [] as fs.Dirent[])) {
      if (e.isFile()) await fsp.copyFile(path.join(from, e.name), path.join(building, e.name));
    }
  }
  await fsp.rm(target, { recursive: true, force: true });
  await fsp.rename(building, target);
  for (const old of earlier.slice(1)) void fsp.rm(path.join(parent, `${base}.t${old}`), { recursive: true, force: true }).catch(() => undefined);
  return target;
}
