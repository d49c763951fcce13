// Uploads: `curl -T file URL` (PUT / or PUT /<name>) and multipart `POST /` with field `file` (curl -F, forms).

import busboy from 'busboy';
import mime from 'mime-types';
import type { Context } from 'koa';
import { UserError } from '../errors';
import { tooLarge, type FileManifest } from '../store';
import type { Deps } from './deps';
import type { UploadContext } from './gate';
import { safeName } from './filenames';
import { flavor, escapeHtml, page } from './negotiate';
import { fileUrl, fileView } from './views';
import { queryParam } from './params';

function uploadContext(ctx: Context): UploadContext {
  const declared = ctx.get('Content-Length');
  const reservation = queryParam(ctx, 'reservation') ?? (ctx.get('X-Reservation') || undefined);
  return { declaredBytes: declared === '' ? undefined : Number(declared), reservation };
}

/** Checks what can be checked before the body arrives, then lets the client send it. */
async function admit(ctx: Context, d: Deps, up: UploadContext) {
  if (up.declaredBytes !== undefined) {
    if (!Number.isSafeInteger(up.declaredBytes) || up.declaredBytes < 0) throw new UserError(400, 'bad Content-Length');
    if (up.declaredBytes > d.config.maxUploadBytes) throw tooLarge(d.config.maxUploadBytes);
  }
  await d.gate.admitUpload(up);
  if (/100-continue/i.test(ctx.get('Expect'))) ctx.res.writeContinue();
}

function mediaType(given: string | undefined, name: string): string {
  const t = (given ?? '').split(';')[0].trim().toLowerCase();
  const useless = !t || t === 'application/x-www-form-urlencoded' || t === 'application/octet-stream';
  if (!useless && /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(t)) return t;
  return mime.lookup(name) || 'application/octet-stream';
}

export async function uploadPut(ctx: Context, d: Deps) {
  const up = uploadContext(ctx);
  await admit(ctx, d, up);
  let raw = '';
  try { raw = decodeURIComponent(ctx.path.slice(1)); } catch { raw = ctx.path.slice(1); }
  const name = safeName(raw || queryParam(ctx, 'name'));
  const result = await d.store.ingest(ctx.req, {
    name,
    type: mediaType(ctx.get('Content-Type'), name),
    maxBytes: d.config.maxUploadBytes,
    extraOps: (m) => d.gate.uploadOps(m, up),
    id: up.reservation,
  });
  return answer(ctx, d, result.manifest, result.deleteToken);
}

export async function uploadMultipart(ctx: Context, d: Deps) {
  if (!/^multipart\/form-data/i.test(ctx.get('Content-Type'))) {
    throw new UserError(400, 'POST / takes multipart/form-data with a field named "file" (curl -F file=@photo.jpg); or use PUT (curl -T)');
  }
  // The multipart envelope is larger than the file: its Content-Length says nothing exact about the file.
  const up: UploadContext = { ...uploadContext(ctx), declaredBytes: undefined };
  await admit(ctx, d, up);
  const result = await new Promise<{ manifest: FileManifest; deleteToken: string }>((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: ctx.req.headers, limits: { files: 1, fields: 20, parts: 40, fileSize: d.config.maxUploadBytes + 1 } });
    } catch (err) {
      reject(new UserError(400, `malformed multipart request: ${(err as Error).message}`));
      return;
    }
    let started = false;
    bb.on('file', (field, stream, info) => {
      if (field !== 'file' || started) { stream.resume(); return; }
      started = true;
      const name = safeName(info.filename);
      d.store.ingest(stream, {
        name,
        type: mediaType(info.mimeType, name),
        maxBytes: d.config.maxUploadBytes,
        extraOps: (m) => d.gate.uploadOps(m, up),
        id: up.reservation,
      }).then(resolve, (err) => reject(err instanceof UserError ? err : new UserError(400, `malformed multipart body: ${err.message}`)));
    });
    bb.on('error', (err) => { if (!started) reject(new UserError(400, `malformed multipart body: ${(err as Error).message}`)); });
    bb.on('close', () => { if (!started) reject(new UserError(400, 'the multipart body has no field named "file"')); });
    ctx.req.on('aborted', () => { if (!started) reject(new UserError(400, 'upload aborted')); });
    ctx.req.pipe(bb);
  });
  return answer(ctx, d, result.manifest, result.deleteToken);
}

async function answer(ctx: Context, d: Deps, m: FileManifest, deleteToken: string) {
  d.gate.uploaded(m);
  const url = fileUrl(ctx, d, m);
  ctx.status = 201;
  ctx.set('Location', url);
  ctx.set('X-Delete-Token', deleteToken);
  const view = await fileView(ctx, d, m);
  const f = flavor(ctx);
  if (f === 'json') {
    ctx.body = { ...view, deleteToken };
    return;
  }
  const pay = view.state && view.state !== 'active'
    ? `pay ${view.amountDue} sats to ${view.address} to make it downloadable (${view.paymentUri})\n` : '';
  if (f === 'html') {
    ctx.type = 'html';
    ctx.body = page('Uploaded', `<h1>Uploaded</h1><p><a href="${escapeHtml(url)}">${escapeHtml(url)}</a></p>` +
      (pay ? `<p>${escapeHtml(pay)}</p>` : '') +
      `<p>Delete token (keep it to delete the file): <code>${escapeHtml(deleteToken)}</code></p>`);
    return;
  }
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = `${url}\n${pay}delete: curl -X DELETE -H 'X-Delete-Token: ${deleteToken}' ${url.replace(/\/[^/]*$/, '')}\n`;
}
