// A mirror's side of a copy: before an upload sent as a copy of another box's file may keep that file's id
// (lib/http/upload.ts, X-Bitdrop-Copy-Of), the original box is asked what it publishes under the id — through
// tor for onions — and the copy must be those bytes.

import { jsonOf, mirrorRequest } from './http';

export async function originOf(url: string, socks: string | undefined): Promise<{ sha256: string; size: number }> {
  const res = await mirrorRequest(url, { headers: { Accept: 'application/json' }, socks, timeoutMs: 60_000 });
  const j = jsonOf(res);
  if (res.status !== 200 || typeof j.sha256 !== 'string' || typeof j.size !== 'number') throw new Error(`the original answered HTTP ${res.status} with no file`);
  return { sha256: j.sha256, size: j.size };
}
