// What the mirror tests (loopback and private Tor network) share.

import path from 'path';
import { Db } from '../../lib/store/db';
import { layout } from '../../lib/store/layout';

/** Polls `fn` (errors count as "not yet") until it returns something truthy. */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs: number, pollMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve().then(fn).catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Reads a stopped daemon's LevelDB (its lock is free once the process is gone). */
export async function readPrefix<T>(dataDir: string, prefix: string): Promise<T[]> {
  const db = await Db.open(path.join(dataDir, 'db'));
  try {
    const out: T[] = [];
    for await (const v of db.values(layout.range(prefix))) out.push(JSON.parse(v.toString()));
    return out;
  } finally {
    await db.level.close();
  }
}
