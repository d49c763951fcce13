// Uploads: `curl -T file URL` (PUT / or PUT /<name>) and multipart `POST /` with field `file` (curl -F, forms).

import busboy from 'busboy';
import mime from 'mime-types';
import type { Context } from 'koa';
import { UserError } from '../errors';
import { newId, newToken, tooLarge, type Drop, type FileManifest } from '../store';
import type { Deps } from './deps';
import type { UploadContext } from './gate';
import { safeName, uniqueName } from './filenames';
import { flavor } from './negotiate';
import { dropText, dropView } from './drops';
import { redirectWithToken } from './handoff';
import { fileUrl, fileView } from './views';
import { queryParam } from './params';
import { clientGone } from './errors';
import { blocked } from '../store/blocklist';

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

/** Bytes the operator blocked (a takedown) are refused once hashed, with the operator's reason. */
async function refuseBlocked(d: Deps, m: FileManifest) {
  const b = await blocked(d.store.db, m.sha256);
  if (b) throw new UserError(451, `this drop box does not take this file: ${b.reason}`, { sha256: m.sha256, reason: b.reason });
}

function mediaType(given: string | undefined, name: string): string {
  const t = (given ?? '').split(';')[0].trim().toLowerCase();
  const useless = !t || t === 'application/x-www-form-urlencoded' || t === 'application/octet-stream';
  if (!useless && /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(t)) return t;
  return mime.lookup(name) || 'application/octet-stream';
}

/**
 * `X-Bitdrop-Copy-Of: http://<box>.onion/<id>[/name]`: another box keeps a copy of its file here (lib/mirrors).
 * The copy keeps the original's id — so the original's links, with the host changed, work here when that box is
 * gone (`bitdrop get`, names-proxy) — when the id is free and the original box, asked now, publishes these very
 * bytes under it (so nobody can take an id for other bytes). Otherwise it is an ordinary upload.
 */
function copyOf(ctx: Context, d: Deps): { url: string; id: string } | undefined {
  const given = ctx.get('X-Bitdrop-Copy-Of');
  if (!given || !d.originOf) return undefined;
  let u: URL;
  try { u = new URL(given); } catch { return undefined; }
  const id = /^\/([A-Za-z0-9_-]{22})(?:\/[^/]*)?$/.exec(u.pathname)?.[1];
  // onions only (a box with an onion never fetches loopback or clearnet URLs for an uploader); loopback boxes
  // without tor (tests, boxes on one machine) may name loopback originals. Anything else: an ordinary upload.
  const onion = /^[a-z2-7]{56}\.onion$/.test(u.hostname);
  const loopback = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(u.hostname) && !d.onion?.();
  if (u.protocol !== 'http:' || !id || (!onion && !loopback)) return undefined;
  return { url: `${u.origin}/${id}`, id };
}

/**
 * Copies being checked against their originals now. Each check holds its upload's slot while it asks the
 * original box (up to 90 s for a new onion), so anyone could hold slots by naming dead onions: past this many
 * at once, a copy is not checked and gets an id of its own, as an ordinary upload (the box that sent it lists
 * it by that id). Uploads are never starved by copies.
 */
const MAX_COPY_CHECKS = 4;
let copyChecks = 0;

async function checkCopy(d: Deps, m: FileManifest, claim: { url: string; id: string }): Promise<void> {
  if (copyChecks >= MAX_COPY_CHECKS) {
    d.log(`upload    ${claim.url}: not checked as a copy (${MAX_COPY_CHECKS} copy checks already running); it gets an id of its own`);
    m.id = newId();
    return;
  }
  copyChecks++;
  const original = await d.originOf!(claim.url).catch((err) => {
    d.log(`upload    ${claim.url}: not asked as a copy (${(err as Error).message}); it gets an id of its own`);
    return undefined;
  }).finally(() => { copyChecks--; });
  if (original && original.sha256 === m.sha256 && original.size === m.size) {
    m.copyOf = claim.url;
    return;
  }
  if (original) d.log(`upload    a copy of ${claim.url} has other bytes than it (${m.sha256}, not ${original.sha256}); it gets an id of its own`);
  m.id = newId();
}

export async function uploadPut(ctx: Context, d: Deps) {
  const up = uploadContext(ctx);
  const claim = up.reservation ? undefined : copyOf(ctx, d);
  await admit(ctx, d, up);
  let raw = '';
  try { raw = decodeURIComponent(ctx.path.slice(1)); } catch { raw = ctx.path.slice(1); }
  const name = safeName(raw || queryParam(ctx, 'name'));
  const result = await d.store.ingest(ctx.req, {
    name,
    type: mediaType(ctx.get('Content-Type'), name),
    maxBytes: d.config.maxUploadBytes,
    client: ctx.req.socket.remoteAddress,
    extraOps: (m) => d.gate.uploadOps(m, up),
    beforeCommit: async (m) => {
      await refuseBlocked(d, m);
      if (claim) await checkCopy(d, m, claim);
    },
    id: up.reservation,
    wantedId: claim?.id,
  });
  return answer(ctx, d, result.manifest, result.deleteToken);
}

/**
 * POST / multipart (a browser form, curl -F): one field "file" is one file; several "file" fields are one
 * drop — one page, one payment address, one zip of all. Files are received one after the other (busboy
 * waits while the previous one is stored); the largest upload bounds their sum.
 */
export async function uploadMultipart(ctx: Context, d: Deps) {
  if (!/^multipart\/form-data/i.test(ctx.get('Content-Type'))) {
    throw new UserError(400, 'POST / takes multipart/form-data with a field named "file" (curl -F file=@photo.jpg); or use PUT (curl -T)');
  }
  // The multipart envelope is larger than the file: its Content-Length says nothing exact about the file.
  const up: UploadContext = { ...uploadContext(ctx), declaredBytes: undefined };
  await admit(ctx, d, up);
  const dropId = up.reservation ?? newId();
  const deleteToken = newToken();
  const members: FileManifest[] = [];
  let total = 0;
  // Names within one drop differ on the way in, also in case only (they become one folder when unzipped).
  const names = new Set<string>();
  // The files being stored one after the other, and the one being received now: a refused drop waits for
  // them (and cuts the current one) before it removes what was stored, so nothing commits after.
  let chain = Promise.resolve();
  let current: import('stream').Readable | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let bb: busboy.Busboy;
      try {
        bb = busboy({ headers: ctx.req.headers, limits: { files: up.reservation ? 1 : MAX_DROP_FILES, fields: 20, parts: MAX_DROP_FILES + 40, fileSize: d.config.maxUploadBytes + 1 } });
      } catch (err) {
        reject(new UserError(400, `malformed multipart request: ${(err as Error).message}`));
        return;
      }
      let failed = false;
      const fail = (err: unknown) => { failed = true; reject(err); };
      bb.on('file', (field, stream, info) => {
        if (field !== 'file' || failed) { stream.resume(); return; }
        chain = chain.then(async () => {
          if (failed) { stream.resume(); return; }
          current = stream;
          const name = uniqueName(safeName(info.filename), names);
          const { manifest } = await d.store.ingest(stream, {
            name,
            type: mediaType(info.mimeType, name),
            maxBytes: d.config.maxUploadBytes - total,
            // a reservation is for one file, which takes its id
            id: up.reservation,
            drop: { id: dropId, deleteToken },
            client: ctx.req.socket.remoteAddress,
            beforeCommit: (m) => refuseBlocked(d, m),
            cut: (err) => { stream.destroy(err); ctx.req.destroy(); },
          }).catch((err) => { throw err instanceof UserError || clientGone(err) ? err : new UserError(400, `malformed multipart body: ${err.message}`); });
          members.push(manifest);
          total += manifest.size;
        }).catch(fail);
      });
      bb.on('filesLimit', () => fail(new UserError(413, up.reservation ? 'a reservation is for one file' : `at most ${MAX_DROP_FILES} files in one drop`)));
      bb.on('error', (err) => fail(new UserError(400, `malformed multipart body: ${(err as Error).message}`)));
      bb.on('close', () => { chain.then(() => { if (!failed) resolve(); }); });
      // A dropped connection never ends busboy's file stream: end it with an error, so that the store
      // removes the chunks written so far and frees the upload's memory at once.
      ctx.req.once('close', () => {
        if (ctx.req.complete) return;
        const err = Object.assign(new Error('the client went away mid-upload'), { code: 'ECONNRESET' });
        ctx.req.unpipe(bb);
        current?.destroy(err);
        bb.destroy();
        fail(err);
      });
      ctx.req.pipe(bb);
    });
    if (members.length === 0) throw new UserError(400, 'the multipart body has no field named "file"');
    const [first] = members;
    if (members.length === 1) {
      const { drop: _unused, ...single } = first;
      await d.store.finishDrop(dropId, members, await d.gate.uploadOps(single, up));
      return answer(ctx, d, single, deleteToken);
    }
    // The drop's payment account is keyed by the drop id and covers the sum of its files.
    const account: FileManifest = { ...first, id: dropId, size: total, drop: undefined };
    const drop = (await d.store.finishDrop(dropId, members, await d.gate.uploadOps(account, up)))!;
    return answerDrop(ctx, d, drop, members, deleteToken);
  } catch (err) {
    current?.destroy(Object.assign(new Error('the drop was refused'), { code: 'ECONNRESET' }));
    await chain.catch(() => undefined);
    await d.store.abandonDrop(members).catch((e) => d.log(`error: removing an unfinished upload: ${e}`));
    throw err;
  }
}

/** Most files in one drop (a form of many small files is fine; thousands are not a drop). */
const MAX_DROP_FILES = 1000;

async function answerDrop(ctx: Context, d: Deps, drop: Drop, members: FileManifest[], deleteToken: string) {
  d.gate.uploaded(members[0]);
  const view = await dropView(ctx, d, drop, members);
  ctx.status = 201;
  ctx.set('Location', String(view.url));
  ctx.set('X-Delete-Token', deleteToken);
  const f = flavor(ctx);
  if (f === 'json') { ctx.body = { ...view, deleteToken }; return; }
  if (f === 'html') return redirectWithToken(ctx, drop.id, deleteToken);
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = dropText(ctx, d, drop, members, view) + `delete: curl -X DELETE -H 'X-Delete-Token: ${deleteToken}' ${view.url}\n`;
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
  // The form lands on the file's page (303), which shows the uploader (only then) their delete token.
  if (f === 'html') return redirectWithToken(ctx, m.id, deleteToken);
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = `${url}\n${pay}delete: curl -X DELETE -H 'X-Delete-Token: ${deleteToken}' ${url.replace(/\/[^/]*$/, '')}\n`;
}
