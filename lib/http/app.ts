// The koa application: one visible chain of middleware.
//   security headers → error handler → routes (payments' own, home, stylesheet, upload, file routes)
// The operator's status lives on the console (./console.ts), never on this listener.

import http from 'http';
import Koa from 'koa';
import { UserError } from '../errors';
import { securityHeaders } from './security';
import { errorHandler } from './errors';
import { freeGate } from './gate';
import type { AppDeps, Deps } from './deps';
import { home } from './home';
import { serveStylesheet } from './style';
import { uploadPut, uploadMultipart } from './upload';
import { download, deleteFile } from './files';

export type { AppDeps, Deps } from './deps';

const FILE_ROUTE = /^\/([A-Za-z0-9_-]{22})(?:\/([^/]*))?$/;

export function createApp(deps: AppDeps): Koa {
  const d: Deps = { ...deps, gate: deps.gate ?? freeGate };
  const app = new Koa();
  app.proxy = false;
  // A client that goes away mid-transfer is routine (and already settled by the download); log the rest.
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'ECONNABORTED'].includes(err.code ?? '')) return;
    d.log(`error: ${err.stack ?? err}`);
  });
  app.use(securityHeaders);
  app.use(errorHandler(d.log));
  app.use(async (ctx) => {
    if (d.gate.route && (await d.gate.route(ctx))) return;
    const { method, path } = ctx;
    if (path === '/' && (method === 'GET' || method === 'HEAD')) return home(ctx, d);
    if (path === '/style.css' && (method === 'GET' || method === 'HEAD')) return serveStylesheet(ctx);
    if (method === 'PUT' && /^\/[^/]*$/.test(path)) return uploadPut(ctx, d);
    if (method === 'POST' && path === '/') return uploadMultipart(ctx, d);
    const m = FILE_ROUTE.exec(path);
    if (m && (method === 'GET' || method === 'HEAD')) return download(ctx, d, m[1]);
    if (m && method === 'DELETE' && m[2] === undefined) return deleteFile(ctx, d, m[1]);
    if (m || path === '/') {
      throw new UserError(405, `${method} is not allowed here`);
    }
    throw new UserError(404, 'not found');
  });
  return app;
}

/**
 * An http.Server for the app. Uploads can be huge and slow over Tor, so there is no whole-request
 * timeout; a stalled connection is cut after `idleMs` of silence instead. Requests with
 * `Expect: 100-continue` (curl -T of anything large) get their 100 only once the upload is admitted
 * (lib/http/upload.ts), so an oversized or unwanted body is refused before it is sent.
 */
export function createServer(app: Koa, idleMs = 120_000): http.Server {
  const handler = app.callback();
  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000 }, handler);
  server.timeout = idleMs;
  server.on('checkContinue', handler);
  return server;
}
