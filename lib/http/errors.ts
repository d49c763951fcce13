import type { Middleware } from 'koa';
import { isUserError } from '../errors';
import { flavor } from './negotiate';
import { errorPage } from './pages';
import { PAGE_CSP } from './security';

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 409: 'Conflict', 410: 'Gone', 411: 'Length Required', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 421: 'Misdirected Request', 451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error', 503: 'Service Unavailable', 507: 'Insufficient Storage',
};

/** Error codes of a client that went away: routine on the internet, not the daemon's fault. */
const GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ETIMEDOUT']);

/** True when an error only means that the client disconnected. */
export function clientGone(err: unknown, req?: { aborted?: boolean; destroyed?: boolean; complete?: boolean }): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (code !== undefined && GONE.has(code)) || (req !== undefined && req.destroyed === true && !req.complete);
}

/**
 * The one place errors become answers: one readable line for curl, a page for browsers, JSON for scripts.
 * A client that went away mid-request gets one `debug` line, not an error with a stack trace.
 */
export function errorHandler(log: (line: string) => void, debug: (line: string) => void = () => {}): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.throw(404, 'not found');
      }
    } catch (err) {
      let status = 500;
      let message = 'internal error; the operator can find details in the daemon log';
      let details: Record<string, unknown> = {};
      if (isUserError(err)) {
        ({ status, message, details } = err);
      } else if ((err as { expose?: boolean }).expose) {
        status = (err as { status: number }).status;
        message = (err as Error).message;
      } else if (clientGone(err, ctx.req)) {
        debug(`client gone: ${ctx.method} ${ctx.path}: ${oneLine(err)}`);
        return;
      } else {
        log(`error: ${ctx.method} ${ctx.path}: ${(err as Error).stack ?? err}`);
      }
      // An error is never the file: drop what a download had set (a 402 for a browser is a page, never an
      // attachment named like the file), then add the error's own headers.
      for (const h of ['Content-Disposition', 'Content-Range', 'Accept-Ranges', 'ETag', 'Last-Modified', 'Cache-Control']) ctx.remove(h);
      ctx.set('Content-Security-Policy', PAGE_CSP);
      if (isUserError(err)) ctx.set(err.headers);
      if (status >= 400 && status !== 404 && status !== 410) ctx.set('Cache-Control', 'no-store');
      // An unread request body (413 while streaming, a refused upload) cannot be drained safely: close.
      if (!ctx.req.complete) ctx.set('Connection', 'close');
      ctx.status = status;
      const f = flavor(ctx);
      if (f === 'json') ctx.body = { error: message, status, ...details };
      else if (f === 'html') {
        ctx.type = 'html';
        ctx.body = await errorPage(status, REASONS[status] ?? 'Error', message, details, ctx.state.payFor);
      } else {
        ctx.type = 'text/plain; charset=utf-8';
        ctx.body = `${status} ${REASONS[status] ?? ''}: ${message}\n` + (details.hint ? `${details.hint}\n` : '');
      }
    }
  };
}

/** An error as one line: its code and message, no stack. */
export function oneLine(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = `${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`;
  return text.replace(/\s+/g, ' ').slice(0, 300);
}
