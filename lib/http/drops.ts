// What GET /<id> answers: a drop of several files (page, JSON, text, or all files as one zip stream),
// a file's page for a browser, or the file itself.

import crypto from 'crypto';
import type { Writable } from 'stream';
import zlib from 'zlib';
import type { Context } from 'koa';
import type { Drop, FileManifest } from '../store';
import type { Deps } from './deps';
import { UserError } from '../errors';
import { contentDisposition, safeName, uniqueName } from './filenames';
import { zipLayout, type ZipLayout } from './zip';
import { download, find, missing, settleWhenDone, withPage } from './files';
import { flavor } from './negotiate';
import { dropPage, filePage } from './pages';
import { byteRange, downloadHeaders } from './ranges';
import { takeToken } from './handoff';
import { baseUrl, fileUrl, fileView } from './views';
import { encryptedPanel, isAgeFile } from './encrypted';
import { mirrorsOf, setMirrorsHeader } from './mirrors-view';

export async function fileRoute(ctx: Context, d: Deps, id: string, name: string | undefined) {
  const drop = await d.store.getDrop(id);
  if (drop) return name === undefined ? showDrop(ctx, d, drop) : archive(ctx, d, drop);
  setMirrorsHeader(ctx, d, id);
  if (name === undefined && flavor(ctx) === 'html') {
    const m = await find(d, id);
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    const deleteToken = m.drop ? undefined : takeToken(ctx, id, m.deleteTokenHash);
    ctx.body = await filePage({ ...m, url: fileUrl(ctx, d, m), view: await d.gate.describe(m, ctx), dropPage: m.drop ? `/${m.drop}` : undefined, deleteToken, config: d.config, mirrors: mirrorsOf(d, m.id),
      encrypted: (await isAgeFile(d, m)) ? encryptedPanel({ page: `${baseUrl(ctx, d.config.publicUrl)}/${m.id}`, fileUrl: fileUrl(ctx, d, m) }) : undefined });
    return;
  }
  return download(ctx, d, id);
}

async function members(d: Deps, drop: Drop): Promise<FileManifest[]> {
  return (await Promise.all(drop.files.map((id) => d.store.get(id)))).filter((m): m is FileManifest => !!m);
}

export const dropUrl = (ctx: Context, d: Deps, id: string) => `${baseUrl(ctx, d.config.publicUrl)}/${id}`;
const archiveUrl = (ctx: Context, d: Deps, id: string) => `${dropUrl(ctx, d, id)}/bitdrop-${id}.zip`;

/** A drop's JSON: its files, the archive, and the payment fields of its one account. */
export async function dropView(ctx: Context, d: Deps, drop: Drop, files?: FileManifest[]): Promise<Record<string, unknown>> {
  const ms = files ?? (await members(d, drop));
  const views = await Promise.all(ms.map(async (m) => {
    const { state: _s, address: _a, amountDue: _d, balance: _b, credits: _c, pending: _p, paidThrough: _t, paymentUri: _u, ...own } = await fileView(ctx, d, m);
    return own;
  }));
  return {
    id: drop.id,
    url: dropUrl(ctx, d, drop.id),
    archive: archiveUrl(ctx, d, drop.id),
    size: ms.reduce((n, m) => n + m.size, 0),
    created: new Date(drop.created).toISOString(),
    files: views,
    ...(ms[0] ? await d.gate.describe(ms[0], ctx) : {}),
  };
}

async function showDrop(ctx: Context, d: Deps, drop: Drop, deleteToken?: string) {
  const ms = await members(d, drop);
  const view = await dropView(ctx, d, drop, ms);
  const f = flavor(ctx);
  if (f === 'json') { ctx.body = view; return; }
  if (f === 'html') {
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await dropPageHtml(ctx, d, drop, ms, view, deleteToken ?? takeToken(ctx, drop.id, ms[0]?.deleteTokenHash));
    return;
  }
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = dropText(ctx, d, drop, ms, view);
}

export async function dropPageHtml(ctx: Context, d: Deps, drop: Drop, ms: FileManifest[], view: Record<string, unknown>, deleteToken?: string) {
  const { id: _i, url: _u, archive: _a, size: _s, created: _c, files: _f, ...payment } = view;
  return dropPage({
    id: drop.id,
    url: dropUrl(ctx, d, drop.id),
    archiveUrl: archiveUrl(ctx, d, drop.id),
    files: ms.map((m) => ({ id: m.id, name: m.name, size: m.size, url: fileUrl(ctx, d, m) })),
    size: Number(view.size),
    created: drop.created,
    view: payment,
    deleteToken,
    config: d.config,
    encrypted: ms[0] && (await isAgeFile(d, ms[0])) ? encryptedPanel({ page: dropUrl(ctx, d, drop.id), drop: true }) : undefined,
  });
}

export function dropText(ctx: Context, d: Deps, drop: Drop, ms: FileManifest[], view: Record<string, unknown>): string {
  const pay = view.state && view.state !== 'active'
    ? `pay ${view.amountDue} sats to ${view.address} to make them downloadable (${view.paymentUri})\n` : '';
  return `${dropUrl(ctx, d, drop.id)}\n${pay}all:   ${archiveUrl(ctx, d, drop.id)}\n` + ms.map((m) => `file:  ${fileUrl(ctx, d, m)}\n`).join('');
}

/**
 * Every file of a drop as one zip, streamed: files are stored, not compressed, and the layout is computed
 * from the manifests (./zip.ts), so the answer has a Content-Length, HEAD answers what GET would, and a
 * Range of it is served like a file's. Charged as the file bytes it carries (headers are free).
 */
async function archive(ctx: Context, d: Deps, drop: Drop) {
  const ms = await members(d, drop);
  if (ms.length === 0) throw await missing(d, drop.id);
  // Names are made safe on the way in; files stored before that are made safe here.
  const used = new Set<string>();
  const zip = zipLayout(ms.map((m) => ({ name: uniqueName(safeName(m.name), used), size: m.size, mtime: new Date(m.created) })));
  const etag = `"zip-${crypto.createHash('sha256').update(JSON.stringify(ms.map((m) => [m.id, m.sha256, m.name, m.created]))).digest('base64url').slice(0, 32)}"`;
  if (downloadHeaders(ctx, etag, `bitdrop-${drop.id}.zip`, 'application/zip')) return;
  const { start, end, partial } = byteRange(ctx, zip.size, etag, 'the zip');
  const status = partial ? 206 : 200;
  const bytes = zip.dataBytes(start, end);
  ctx.state.payFor = { size: ms.reduce((n, m) => n + m.size, 0), config: d.config, what: 'these files' };
  const ticket = await d.gate.openDownload(ms[0], bytes, ctx.method === 'HEAD').catch((err) => { throw withPage(err, ctx, d, drop.id); });
  ctx.status = status;
  ctx.length = end - start + 1;
  ctx.respond = false;
  ctx.res.writeHead(status, ctx.response.headers as Record<string, string>);
  if (ctx.method === 'HEAD') {
    // HEAD answers what GET would (402 included) and costs nothing.
    ctx.res.end();
    return;
  }
  let stopped = false;
  settleWhenDone(ctx, d, ticket, bytes, end - start + 1, (acked) => zip.dataBytes(start, Math.min(end, start + acked - 1)), `the archive of ${drop.id}`,
    () => { stopped = true; });
  sendZip(d, ms, zip, start, end, ctx.res, () => stopped).then(() => { if (!ctx.res.destroyed) ctx.res.end(); }, (err) => {
    if (!stopped) d.log(`error: archive of ${drop.id}: ${err.message}`);
    ctx.res.destroy();
  });
}

/** CRC-32s of files by content (sha256), so that a resumed zip need not read again what it skipped. */
const crcs = new Map<string, number>();
const MAX_CRCS = 100_000;
const computing = new Map<string, Promise<number>>();
function keepCrc(sha256: string, crc: number) {
  if (crcs.size >= MAX_CRCS) crcs.delete(crcs.keys().next().value as string);
  crcs.set(sha256, crc);
}

/** Writes zip bytes [start, end] to `out`, reading each file's bytes from the store. */
async function sendZip(d: Deps, ms: FileManifest[], zip: ZipLayout, start: number, end: number, out: Writable, stopped: () => boolean) {
  const write = async (buf: Buffer) => {
    if (stopped() || out.destroyed) throw Object.assign(new Error('the client went away'), { code: 'ECONNRESET' });
    if (!out.write(buf)) await new Promise<void>((resolve) => { out.once('drain', resolve); out.once('close', resolve); });
  };
  // Reads a file's bytes [from, to], calling `each` with every piece (and writing it when `send`).
  const readFile = async (m: FileManifest, from: number, to: number, each: (b: Buffer) => void, send: boolean) => {
    const r = d.store.read(m, from, to);
    try {
      for await (const piece of r) {
        each(piece as Buffer);
        if (send) await write(piece as Buffer);
      }
    } finally {
      r.destroy();
    }
  };
  const crcOf = async (i: number): Promise<number> => {
    const m = ms[i];
    const known = m.size === 0 ? 0 : crcs.get(m.sha256);
    if (known !== undefined) return known;
    // Many requests for a zip's tail at once read each file once, not once each.
    let running = computing.get(m.sha256);
    if (!running) {
      running = (async () => {
        let crc = 0;
        const r = d.store.read(m, 0, m.size - 1);
        try {
          for await (const piece of r) crc = zlib.crc32(piece as Buffer, crc);
        } finally {
          r.destroy();
        }
        keepCrc(m.sha256, crc);
        return crc;
      })().finally(() => computing.delete(m.sha256));
      computing.set(m.sha256, running);
    }
    return running;
  };
  for (const p of zip.parts) {
    const a = Math.max(start, p.offset);
    const b = Math.min(end, p.offset + p.length - 1);
    if (b < a) {
      if (p.offset > end) break;
      continue;
    }
    const from = a - p.offset;
    const to = b - p.offset;
    if (p.kind === 'bytes') await write(p.buf.subarray(from, to + 1));
    else if (p.kind === 'descriptor') await write(zip.descriptor(p.entry, await crcOf(p.entry)).subarray(from, to + 1));
    else if (p.kind === 'central') {
      const all: number[] = [];
      for (let i = 0; i < ms.length; i++) all.push(await crcOf(i));
      await write(zip.central(all).subarray(from, to + 1));
    } else {
      const m = ms[p.entry];
      const whole = from === 0 && to === m.size - 1 && !crcs.has(m.sha256);
      let crc = 0;
      await readFile(m, from, to, whole ? (piece) => { crc = zlib.crc32(piece, crc); } : () => undefined, true);
      if (whole) keepCrc(m.sha256, crc);
    }
  }
}
