// A stored file: download (GET/HEAD with one Range), its JSON, and deletion with the delete token.

import crypto from 'crypto';
import parseRange from 'range-parser';
import type { Context } from 'koa';
import { UserError } from '../errors';
import { hashToken, type FileManifest } from '../store';
import type { Deps } from './deps';
import { contentDisposition } from './filenames';
import { flavor } from './negotiate';
import { DOWNLOAD_CSP } from './security';
import { fileView } from './views';
import { queryParam } from './params';

async function find(d: Deps, id: string): Promise<FileManifest> {
  const m = await d.store.get(id);
  if (!m) throw new UserError(404, 'no such file (it may have been deleted or never paid for)');
  return m;
}

export async function download(ctx: Context, d: Deps, id: string) {
  const m = await find(d, id);
  if (flavor(ctx) === 'json') {
    ctx.body = await fileView(ctx, d, m);
    return;
  }
  const etag = `"${m.sha256}"`;
  ctx.set({
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Content-Disposition': contentDisposition(m.name),
    'Content-Security-Policy': DOWNLOAD_CSP,
    'Cache-Control': 'private, no-transform',
  });
  ctx.type = m.type;
  if (ctx.get('If-None-Match') === etag) {
    ctx.status = 304;
    return;
  }
  let start = 0;
  let end = m.size - 1;
  const rangeHeader = ctx.get('Range');
  const ifRange = ctx.get('If-Range');
  if (rangeHeader && (!ifRange || ifRange === etag)) {
    const ranges = parseRange(m.size, rangeHeader, { combine: true });
    if (ranges === -1) {
      throw new UserError(416, `the range is outside the file (${m.size} bytes)`, {}, { 'Content-Range': `bytes */${m.size}` });
    }
    // Several ranges (multipart/byteranges) are rarely used; answering the whole file is allowed.
    if (ranges !== -2 && ranges.length === 1) {
      start = ranges[0].start;
      end = ranges[0].end;
      ctx.status = 206;
      ctx.set('Content-Range', `bytes ${start}-${end}/${m.size}`);
    }
  }
  const length = m.size === 0 ? 0 : end - start + 1;
  const ticket = await d.gate.openDownload(m, length, ctx.method === 'HEAD');
  if (ctx.method === 'HEAD') {
    // HEAD answers what GET would (402 included) and costs nothing.
    ctx.status = ctx.status === 206 ? 206 : 200;
    ctx.length = length;
    ctx.respond = false;
    ctx.res.writeHead(ctx.status, ctx.response.headers as Record<string, string>);
    ctx.res.end();
    return;
  }
  let sent = 0;
  // Charge what left: everything when the response finished, else what the socket took (not what sat
  // in our buffers when the client went away).
  const socket = ctx.req.socket;
  const writtenBefore = socket.bytesWritten;
  let settled = false;
  const settle = (finished: boolean) => {
    if (settled) return;
    settled = true;
    const charged = finished ? length : Math.max(0, Math.min(sent, socket.bytesWritten - writtenBefore));
    d.served?.(charged);
    ticket.settle(charged).catch((err) => d.log(`error: settling a download of ${m.id}: ${err}`));
  };
  ctx.res.once('finish', () => settle(true));
  ctx.res.once('close', () => settle(ctx.res.writableFinished));
  if (ctx.status !== 206) ctx.status = 200;
  ctx.length = length;
  // The body goes out without koa: the store writes its read buffers to the socket and reuses them.
  ctx.respond = false;
  ctx.res.writeHead(ctx.status, ctx.response.headers as Record<string, string>);
  if (length === 0) {
    ctx.res.end();
    return;
  }
  d.store.send(m, start, end, ctx.res, (n) => { sent += n; }).catch((err) => {
    d.log(`error: reading ${m.id}: ${err.message}`);
    ctx.res.destroy(err);
  });
}

export async function deleteFile(ctx: Context, d: Deps, id: string) {
  const m = await find(d, id);
  const token = ctx.get('X-Delete-Token') || queryParam(ctx, 'token') || '';
  if (!token) throw new UserError(401, 'deleting needs the delete token given at upload (header X-Delete-Token or ?token=)');
  const given = Buffer.from(hashToken(token), 'hex');
  const expected = Buffer.from(m.deleteTokenHash, 'hex');
  if (!crypto.timingSafeEqual(given, expected)) throw new UserError(403, 'wrong delete token');
  await d.store.delete(id, await d.gate.deleteOps(m));
  d.gate.deleted(m);
  if (flavor(ctx) === 'json') ctx.body = { id, deleted: true };
  else ctx.body = `deleted ${id}\n`;
}
