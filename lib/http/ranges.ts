// What a download answers before its body, the same for a file and for a drop's zip: its headers, a 304
// for a matching ETag, and the one byte range asked for (Range, If-Range).

import parseRange from 'range-parser';
import type { Context } from 'koa';
import { UserError } from '../errors';
import { contentDisposition } from './filenames';
import { DOWNLOAD_CSP } from './security';

/** Sets a download's headers; true when the client's copy is current (the 304 is set). */
export function downloadHeaders(ctx: Context, etag: string, filename: string, type: string): boolean {
  ctx.set({
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Content-Disposition': contentDisposition(filename),
    'Content-Security-Policy': DOWNLOAD_CSP,
    'Cache-Control': 'private, no-transform',
  });
  ctx.type = type;
  if (ctx.get('If-None-Match') !== etag) return false;
  ctx.status = 304;
  return true;
}

/**
 * The bytes [start, end] to send of `size`: the whole, or the one range asked for (then the status is 206
 * with its Content-Range). Several ranges (multipart/byteranges) are rarely used; answering the whole is
 * allowed. A range wholly outside is a 416 naming `what`.
 */
export function byteRange(ctx: Context, size: number, etag: string, what: string): { start: number; end: number; partial: boolean } {
  const rangeHeader = ctx.get('Range');
  const ifRange = ctx.get('If-Range');
  if (rangeHeader && (!ifRange || ifRange === etag)) {
    const ranges = parseRange(size, rangeHeader, { combine: true });
    if (ranges === -1) {
      throw new UserError(416, `the range is outside ${what} (${size} bytes)`, {}, { 'Content-Range': `bytes */${size}` });
    }
    if (ranges !== -2 && ranges.length === 1) {
      const { start, end } = ranges[0];
      ctx.set('Content-Range', `bytes ${start}-${end}/${size}`);
      return { start, end, partial: true };
    }
  }
  return { start: 0, end: size - 1, partial: false };
}
