// A stored file: download (GET/HEAD with one Range), its JSON, and deletion with the delete token.

import crypto from 'crypto';
import type { Context } from 'koa';
import { UserError } from '../errors';
import { hashToken, type FileManifest } from '../store';
import type { Deps } from './deps';
import { flavor } from './negotiate';
import { byteRange, downloadHeaders } from './ranges';
import { baseUrl, fileView } from './views';
import { confirmDeletePage, deletedPage } from './pages';
import { queryParam } from './params';
import { followAcked } from './sent';
import { serveViaMirror, trackDownload } from './cdn';

export async function find(d: Deps, id: string): Promise<FileManifest> {
  const m = await d.store.get(id);
  if (!m) throw await missing(d, id);
  return m;
}

/** 410 for a file or drop that was here (with when and why), 404 for anything else. */
export async function missing(d: Deps, id: string): Promise<UserError> {
  const gone = await d.store.tombstone(id);
  if (gone) return new UserError(410, `deleted on ${new Date(gone.deleted).toISOString().slice(0, 10)} (${gone.why})`, { deleted: new Date(gone.deleted).toISOString(), why: gone.why });
  return new UserError(404, 'no such file (the link may be mistyped, or it was never uploaded)');
}

/** Adds the file page's address to a 402, so a browser's payment page links to it. */
export function withPage(err: unknown, ctx: Context, d: Deps, id: string): unknown {
  if (err instanceof UserError && err.status === 402) err.details.page = `${baseUrl(ctx, d.config.publicUrl)}/${id}`;
  return err;
}

export async function download(ctx: Context, d: Deps, id: string) {
  const m = await find(d, id);
  if (flavor(ctx) === 'json') {
    ctx.body = await fileView(ctx, d, m);
    return;
  }
  const etag = `"${m.sha256}"`;
  if (downloadHeaders(ctx, etag, m.name, m.type)) return;
  const { start, end, partial } = byteRange(ctx, m.size, etag, 'the file');
  if (partial) ctx.status = 206;
  const length = m.size === 0 ? 0 : end - start + 1;
  // a 402 page says what a payment buys for this file (a file of a drop is paid with the drop, on its page)
  if (!m.drop) ctx.state.payFor = { size: m.size, config: d.config };
  const ticket = await d.gate.openDownload(m, length, ctx.method === 'HEAD').catch((err) => { throw withPage(err, ctx, d, m.drop ?? m.id); });
  if (ctx.method === 'HEAD') {
    // HEAD answers what GET would (402 included) and costs nothing.
    ctx.status = ctx.status === 206 ? 206 : 200;
    ctx.length = length;
    ctx.respond = false;
    ctx.res.writeHead(ctx.status, ctx.response.headers as Record<string, string>);
    ctx.res.end();
    return;
  }
  trackDownload(ctx);
  if (ctx.status !== 206 && await serveViaMirror(ctx, d, m, length, (so) => settleWhenDone(ctx, d, ticket, length, length, (acked) => Math.min(so(), acked), `a download of ${m.id}`),
    () => { ticket.settle(length).catch((err) => d.log(`error: settling ${m.id}: ${err}`)); })) return;
  let sent = 0;
  settleWhenDone(ctx, d, ticket, length, length, (acked) => Math.min(sent, acked), `a download of ${m.id}`);
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

/**
 * Deletes a file, or a drop with all its files, with the delete token given at upload: DELETE with
 * X-Delete-Token (or ?token=), or POST /<id> from the page's form (field `token`).
 */
export async function deleteFile(ctx: Context, d: Deps, id: string, formToken?: string) {
  const drop = await d.store.getDrop(id);
  const members = drop ? (await Promise.all(drop.files.map((f) => d.store.get(f)))).filter((x): x is FileManifest => !!x) : [await find(d, id)];
  const m = members[0];
  if (!m) throw await missing(d, id);
  if (!drop && m.drop) throw new UserError(409, `this file is part of a drop of several files: delete the drop (/${m.drop}) with its token`);
  const token = formToken ?? (ctx.get('X-Delete-Token') || queryParam(ctx, 'token') || '');
  if (!token) throw new UserError(401, 'deleting needs the delete token given at upload (header X-Delete-Token or ?token=)');
  const given = Buffer.from(hashToken(token.trim()), 'hex');
  const expected = Buffer.from(m.deleteTokenHash, 'hex');
  if (!crypto.timingSafeEqual(given, expected)) throw new UserError(403, 'wrong delete token');
  // The payment account is the drop's (same id as the drop) or the file's.
  const account: FileManifest = { ...m, id, drop: undefined };
  if (drop) await d.store.deleteDrop(id, await d.gate.deleteOps(account), 'the uploader deleted it');
  else await d.store.delete(id, await d.gate.deleteOps(account), 'the uploader deleted it');
  d.gate.deleted(account);
  const f = flavor(ctx);
  if (f === 'json') ctx.body = { id, deleted: true };
  else if (f === 'html') { ctx.type = 'html'; ctx.body = deletedPage(drop ? `The drop of ${members.length === 1 ? 'one file' : `${members.length} files`}` : `“${m.name}”`); }
  else ctx.body = `deleted ${id}\n`;
}

/** POST /<id> from the delete form (application/x-www-form-urlencoded, a few hundred bytes at most). */
export async function deleteForm(ctx: Context, d: Deps, id: string) {
  if (!/^application\/x-www-form-urlencoded/i.test(ctx.get('Content-Type'))) {
    throw new UserError(415, 'POST /<id> takes the delete form (token=…); scripts use DELETE with X-Delete-Token');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > 4096) throw new UserError(413, 'the delete form is a few hundred bytes at most');
    chunks.push(chunk as Buffer);
  }
  const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  if (form.get('action') !== 'delete') throw new UserError(400, 'the form must say action=delete');
  const token = (form.get('token') ?? '').trim();
  if (form.get('confirm') === 'yes' || flavor(ctx) !== 'html') return deleteFile(ctx, d, id, token);
  // A browser confirms first, on a page of its own; a wrong token is said at once, not after confirming.
  const drop = await d.store.getDrop(id);
  const m = drop ? await d.store.get(drop.files[0]) : await find(d, id);
  if (!m) throw await missing(d, id);
  if (!drop && m.drop) throw new UserError(409, `this file is part of a drop of several files: delete the drop (/${m.drop}) with its token`);
  if (!token) throw new UserError(401, 'deleting needs the delete token given at upload');
  if (!crypto.timingSafeEqual(Buffer.from(hashToken(token), 'hex'), Buffer.from(m.deleteTokenHash, 'hex'))) throw new UserError(403, 'wrong delete token');
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = confirmDeletePage(id, drop ? `the drop of ${drop.files.length === 1 ? 'one file' : `${drop.files.length} files`}` : `“${m.name}”`, token);
}

/**
 * Settles a download's charge: in full once the client acknowledged the whole body (or hung up cleanly
 * after it); else for what reached the client: the body bytes its TCP stack acknowledged (./sent.ts),
 * mapped to what they are charged for by `charge` (the file bytes among them), never more than `full`. A
 * body handed to the kernel whole is not yet received: a client that resets the connection then pays for
 * what it acknowledged. `onCut` runs when the client left before the body was handed over.
 */
export function settleWhenDone(ctx: Context, d: Deps, ticket: { settle(bytes: number): Promise<unknown> }, full: number,
  bodyLength: number, charge: (bodyAcked: number) => number, what: string, onCut?: () => void) {
  const socket = ctx.req.socket;
  const writtenBefore = socket.bytesWritten;
  const follow = followAcked(socket);
  const bodyAcked = () => {
    const header = (ctx.res as unknown as { _header?: string | null })._header;
    return Math.max(0, follow.acked() - writtenBefore - (header ? Buffer.byteLength(header, 'latin1') : 0));
  };
  let settled = false;
  const settle = (whole: boolean) => {
    if (settled) return;
    settled = true;
    follow.stop();
    socket.off('close', onSocketClose);
    const charged = whole ? full : Math.max(0, Math.min(full, charge(bodyAcked())));
    d.served?.(charged);
    ticket.settle(charged).catch((err) => d.log(`error: settling ${what}: ${err}`));
  };
  // A reset (the client left with bytes unread) is charged by what it acknowledged; a clean close after
  // the whole body was handed over means the client read it.
  const onSocketClose = (hadError: boolean) => settle(!hadError && ctx.res.writableFinished);
  socket.once('close', onSocketClose);
  ctx.res.once('finish', () => follow.when(() => bodyAcked() >= bodyLength, () => settle(true)));
  ctx.res.once('close', () => {
    if (ctx.res.writableFinished) return;
    settle(false);
    onCut?.();
  });
}
