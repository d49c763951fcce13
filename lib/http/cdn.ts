// Downloads served through mirrors (lib/mirrors decides which and when): first proxied — the mirror's bytes
// pass through here and each chunk is checked against our own chunk hash before it is sent on — and after
// enough good proxied downloads from that mirror, answered with a redirect to the file's URL there. A chunk that
// does not match is never sent: the mirror is reported (and dropped) and the rest of the download comes from
// our own store, so the downloader always gets the right bytes. The downloader pays this box as always.

import crypto from 'crypto';
import type { Context } from 'koa';
import type { FileManifest } from '../store';
import type { Deps } from './deps';

let inFlight = 0;

/** Counts a download in flight here (the CDN's load measure) until its response closes. */
export function trackDownload(ctx: Context): void {
  inFlight++;
  ctx.res.once('close', () => { inFlight--; });
}

export const downloadsInFlight = () => inFlight;

/**
 * Serves a whole-file GET through a mirror when the CDN says so; false: serve it here. `settle(sentSoFar)`
 * arranges the download's charge as a local download does.
 */
export async function serveViaMirror(ctx: Context, d: Deps, m: FileManifest, length: number,
  settle: (sentSoFar: () => number) => void, settleAll: () => void): Promise<boolean> {
  const cdn = d.cdn;
  if (!cdn || m.size === 0) return false;
  const pick = cdn.pick(m.id, inFlight);
  if (!pick) return false;
  if (pick.redirect) {
    settleAll();
    ctx.status = 302;
    ctx.set('Location', pick.url);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = `${pick.url}\n`;
    return true;
  }
  let res;
  try {
    res = await cdn.open(pick.url);
  } catch (err) {
    cdn.proxied(m.id, pick.mirror, false, `unreachable (${(err as Error).message})`);
    return false;
  }
  if (res.statusCode !== 200) {
    res.resume();
    cdn.proxied(m.id, pick.mirror, false, `answered HTTP ${res.statusCode} for ${pick.url}`);
    return false;
  }
  let sent = 0;
  settle(() => sent);
  ctx.status = 200;
  ctx.length = length;
  ctx.respond = false;
  ctx.set('X-Served-By', pick.mirror);
  ctx.res.writeHead(200, ctx.response.headers as Record<string, string>);
  const out = ctx.res;
  const write = (buf: Buffer) => new Promise<void>((resolve, reject) => {
    out.write(buf, (err) => (err ? reject(err) : resolve()));
    sent += buf.length;
  });
  let chunk = 0;
  let parts: Buffer[] = [];
  let have = 0;
  const expected = (i: number) => Math.min(m.chunkSize, m.size - i * m.chunkSize);
  let failure: string | undefined;
  try {
    for await (const data of res) {
      let buf = data as Buffer;
      while (buf.length && chunk < m.chunks.length) {
        const take = Math.min(buf.length, expected(chunk) - have);
        parts.push(buf.subarray(0, take));
        have += take;
        buf = buf.subarray(take);
        if (have === expected(chunk)) {
          const whole = Buffer.concat(parts);
          if (crypto.createHash('sha256').update(whole).digest('hex') !== m.chunks[chunk]) {
            failure = `served false bytes for ${m.id} (chunk ${chunk} does not match our hash)`;
            break;
          }
          await write(whole);
          chunk++;
          parts = [];
          have = 0;
        }
      }
      if (failure) break;
      if (buf.length) { failure = `served more bytes than ${m.id} has`; break; }
    }
    if (!failure && chunk < m.chunks.length) failure = `ended ${m.id} after ${chunk * m.chunkSize + have} of ${m.size} bytes`;
  } catch (err) {
    if (out.destroyed) return true; // the downloader left
    failure = `broke off ${m.id}: ${(err as Error).message}`;
  }
  res.destroy();
  if (!failure) {
    cdn.proxied(m.id, pick.mirror, true);
    out.end();
    return true;
  }
  cdn.proxied(m.id, pick.mirror, false, failure);
  // the rest from our own store: the downloader gets the right bytes either way
  const from = chunk * m.chunkSize;
  await d.store.send(m, from, m.size - 1, out, (n) => { sent += n; }).catch((err) => out.destroy(err));
  return true;
}
