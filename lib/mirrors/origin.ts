// A mirror's side of a copy: before an upload sent as a copy of another box's file may keep that file's id
// (lib/http/upload.ts, X-Bitdrop-Copy-Of), the original box is asked what it publishes under the id — through
// tor for onions — and the copy must be those bytes.

import { jsonOf, mirrorRequest } from './http';

/**
 * What the box at `url` publishes there (SHA-256 and size). An onion is asked again for up to `patienceMs`:
 * a box copies its files as soon as it starts, often before its onion's descriptor has reached the
 * directories, and the copy waits for that rather than lose its id.
 */
export async function originOf(url: string, socks: string | undefined, patienceMs = 90_000): Promise<{ sha256: string; size: number }> {
  const end = Date.now() + (/\.onion$/i.test(new URL(url).hostname) ? patienceMs : 0);
  for (;;) {
    try {
      const res = await mirrorRequest(url, { headers: { Accept: 'application/json' }, socks, timeoutMs: 60_000 });
      const j = jsonOf(res);
      if (res.status !== 200 || typeof j.sha256 !== 'string' || typeof j.size !== 'number') throw Object.assign(new Error(`the original answered HTTP ${res.status} with no file`), { answered: true });
      return { sha256: j.sha256, size: j.size };
    } catch (err) {
      if ((err as { answered?: boolean }).answered || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
