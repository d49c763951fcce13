// A form upload answers 303 See Other to the new file's (or drop's) page, so that the address bar holds
// the link, a reload does not post again and a bookmark keeps the page. The delete token must reach that
// page once without being in its URL (logs, history, Referer): it rides in a one-time cookie, HttpOnly,
// SameSite=Strict, scoped to that page's path and living a few minutes, which the page clears as it shows
// the token. No other answer sets a cookie.

import type { Context } from 'koa';
import { hashToken } from '../store';

const COOKIE = 'bitdrop_delete_token';
const LIFETIME_MS = 10 * 60_000;

const options = (id: string, maxAge: number) => ({ path: `/${id}`, maxAge, httpOnly: true, sameSite: 'strict' as const, secure: false, overwrite: true });

/** Answers the form's POST: 303 to /<id>, with the token handed over in the one-time cookie. */
export function redirectWithToken(ctx: Context, id: string, token: string) {
  ctx.cookies.set(COOKIE, token, options(id, LIFETIME_MS));
  ctx.status = 303;
  ctx.set('Location', `/${id}`);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = `<!doctype html>\n<title>Uploaded</title><p>Uploaded: <a href="/${id}">/${id}</a></p>\n`;
}

/**
 * The token handed over to the page of `id`, once: it must match the upload's token hash (a cookie set by
 * anyone else shows nothing), and it is cleared in this answer either way.
 */
export function takeToken(ctx: Context, id: string, tokenHash: string | undefined): string | undefined {
  const token = ctx.cookies.get(COOKIE);
  if (token === undefined) return undefined;
  ctx.cookies.set(COOKIE, '', options(id, 0));
  return tokenHash && hashToken(token) === tokenHash ? token : undefined;
}
