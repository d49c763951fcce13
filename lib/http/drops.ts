// What GET /<id> answers: a drop of several files (page, JSON, text, or all files as one zip stream),
// a file's page for a browser, or the file itself.

import type { Readable } from 'stream';
import yazl from 'yazl';
import type { Context } from 'koa';
import type { Drop, FileManifest } from '../store';
import type { Deps } from './deps';
import { contentDisposition } from './filenames';
import { download, find, missing, settleWhenDone, withPage } from './files';
import { flavor } from './negotiate';
import { dropPage, filePage } from './pages';
import { DOWNLOAD_CSP } from './security';
import { baseUrl, fileUrl, fileView } from './views';
import { mirrorsOf, setMirrorsHeader } from './mirrors-view';

export async function fileRoute(ctx: Context, d: Deps, id: string, name: string | undefined) {
  const drop = await d.store.getDrop(id);
  if (drop) return name === undefined ? showDrop(ctx, d, drop) : archive(ctx, d, drop);
  setMirrorsHeader(ctx, d, id);
  if (name === undefined && flavor(ctx) === 'html') {
    const m = await find(d, id);
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await filePage({ ...m, url: fileUrl(ctx, d, m), view: await d.gate.describe(m, ctx), dropPage: m.drop ? `/${m.drop}` : undefined, config: d.config, mirrors: mirrorsOf(d, m.id) });
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
    ctx.body = await dropPageHtml(ctx, d, drop, ms, view, deleteToken);
    return;
  }
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = dropText(ctx, d, drop, ms, view);
}

export function dropPageHtml(ctx: Context, d: Deps, drop: Drop, ms: FileManifest[], view: Record<string, unknown>, deleteToken?: string) {
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
  });
}

export function dropText(ctx: Context, d: Deps, drop: Drop, ms: FileManifest[], view: Record<string, unknown>): string {
  const pay = view.state && view.state !== 'active'
    ? `pay ${view.amountDue} sats to ${view.address} to make them downloadable (${view.paymentUri})\n` : '';
  return `${dropUrl(ctx, d, drop.id)}\n${pay}all:   ${archiveUrl(ctx, d, drop.id)}\n` + ms.map((m) => `file:  ${fileUrl(ctx, d, m)}\n`).join('');
}

/**
 * Every file of a drop as one zip, streamed: files are stored, not compressed (sizes are known up front,
 * so the answer has a Content-Length and nothing is built in memory). Charged as the sum of the files.
 */
async function archive(ctx: Context, d: Deps, drop: Drop) {
  const ms = await members(d, drop);
  if (ms.length === 0) throw await missing(d, drop.id);
  const bytes = ms.reduce((n, m) => n + m.size, 0);
  const ticket = await d.gate.openDownload(ms[0], bytes, ctx.method === 'HEAD').catch((err) => { throw withPage(err, ctx, d, drop.id); });
  ctx.set({
    'Content-Disposition': contentDisposition(`bitdrop-${drop.id}.zip`),
    'Content-Security-Policy': DOWNLOAD_CSP,
    'Cache-Control': 'private, no-transform',
  });
  ctx.type = 'application/zip';
  if (ctx.method === 'HEAD') {
    ctx.status = 200;
    ctx.body = null;
    return;
  }
  const zip = new yazl.ZipFile();
  const used = new Set<string>();
  const reads: Readable[] = [];
  for (const m of ms) {
    const r = d.store.read(m);
    reads.push(r);
    zip.addReadStream(r, uniqueName(m.name, used), { size: m.size, compress: false, mtime: new Date(m.created) });
  }
  const total = await new Promise<number>((resolve) => (zip.end.bind(zip) as (o: object, cb: (n: number) => void) => void)({}, (n) => resolve(n)));
  if (total >= 0) ctx.length = total;
  const out = zip.outputStream as unknown as Readable;
  const stop = () => { out.destroy(); for (const r of reads) r.destroy(); };
  settleWhenDone(ctx, d, ticket, bytes, () => bytes, `the archive of ${drop.id}`, stop);
  ctx.status = 200;
  ctx.respond = false;
  ctx.res.writeHead(200, ctx.response.headers as Record<string, string>);
  out.on('error', (err) => { d.log(`error: archive of ${drop.id}: ${err.message}`); stop(); ctx.res.destroy(err); });
  out.pipe(ctx.res);
}

/** Names inside one zip must differ: "a.txt", "a (2).txt" … */
function uniqueName(name: string, used: Set<string>): string {
  let candidate = name;
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  for (let i = 2; used.has(candidate.toLowerCase()); i++) candidate = `${stem} (${i})${ext}`;
  used.add(candidate.toLowerCase());
  return candidate;
}
