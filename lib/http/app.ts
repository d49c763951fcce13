// The koa application: one visible chain of middleware.
//   security headers → error handler → routes (payments' own, home, stylesheet, upload, file routes)
// The operator's status lives on the console (./console.ts), never on this listener.

import http from 'http';
import Koa from 'koa';
import { UserError } from '../errors';
import { securityHeaders } from './security';
import { clientGone, errorHandler, oneLine } from './errors';
import { freeGate } from './gate';
import type { AppDeps, Deps } from './deps';
import type { HttpObserver } from '../metrics';
import { home } from './home';
import { serveStylesheet } from './style';
import { uploadPut, uploadMultipart } from './upload';
import { deleteFile, deleteForm } from './files';
import { fileRoute } from './drops';
import { bannerOn } from './banner';

export type { AppDeps, Deps } from './deps';

const FILE_ROUTE = /^\/([A-Za-z0-9_-]{22})(?:\/([^/]*))?$/;

export function createApp(deps: AppDeps): Koa {
  const d: Deps = { ...deps, gate: deps.gate ?? freeGate };
  const app = new Koa();
  app.proxy = false;
  const debug = d.debug ?? (() => {});
  // A client that goes away mid-transfer is routine (and already settled by the download); log the rest.
  app.on('error', (err: NodeJS.ErrnoException, ctx?: Koa.Context) => {
    if (clientGone(err, ctx?.req)) debug(`client gone: ${ctx ? `${ctx.method} ${ctx.path}: ` : ''}${oneLine(err)}`);
    else d.log(`error: ${err.stack ?? err}`);
  });
  if (d.observe) app.use(observed(d.observe));
  app.use(securityHeaders);
  // outside the error handler: error pages carry the test-mode notice too
  if (d.simulated) app.use(bannerOn());
  app.use(errorHandler(d.log, debug));
  app.use(async (ctx) => {
    if (d.gate.route && (await d.gate.route(ctx))) return;
    const { method, path } = ctx;
    if (path === '/' && (method === 'GET' || method === 'HEAD')) return home(ctx, d);
    if (path === '/style.css' && (method === 'GET' || method === 'HEAD')) return serveStylesheet(ctx);
    if (method === 'PUT' && /^\/[^/]*$/.test(path)) return uploadPut(ctx, d);
    if (method === 'POST' && path === '/') return uploadMultipart(ctx, d);
    const m = FILE_ROUTE.exec(path);
    if (m && (method === 'GET' || method === 'HEAD')) return fileRoute(ctx, d, m[1], m[2]);
    if (m && method === 'DELETE' && m[2] === undefined) return deleteFile(ctx, d, m[1]);
    if (m && method === 'POST' && m[2] === undefined) return deleteForm(ctx, d, m[1]);
    if (m || path === '/') {
      throw new UserError(405, `${method} is not allowed here`);
    }
    throw new UserError(404, 'not found');
  });
  return app;
}

/**
 * Tells the observer of each answer once its socket is done with it: what kind it was and the bytes the
 * socket moved meanwhile (bodies and headers).
 */
function observed(observer: HttpObserver): Koa.Middleware {
  return async (ctx, next) => {
    const socket = ctx.req.socket;
    const read0 = socket.bytesRead;
    const written0 = socket.bytesWritten;
    const done = () => {
      const status = ctx.res.statusCode;
      const kind = status === 201 && (ctx.method === 'PUT' || ctx.method === 'POST')
        ? 'upload'
        : ctx.method === 'GET' && (status === 200 || status === 206) && /^attachment/.test(String(ctx.response.get('Content-Disposition')))
          ? 'download'
          : 'other';
      observer.answered({ kind, status, bytesIn: socket.bytesRead - read0, bytesOut: socket.bytesWritten - written0 });
    };
    ctx.res.once('close', done);
    await next();
  };
}

/**
 * An http.Server for the app. Uploads can be huge and slow over Tor, so there is no whole-request
 * timeout; a stalled connection is cut after `idleMs` of silence instead. Requests with
 * `Expect: 100-continue` (curl -T of anything large) get their 100 only once the upload is admitted
 * (lib/http/upload.ts), so an oversized or unwanted body is refused before it is sent.
 */
export function createServer(app: Koa, idleMs = 120_000, debug: (line: string) => void = () => {}): http.Server {
  const handler = app.callback();
  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000 }, handler);
  server.timeout = idleMs;
  server.on('checkContinue', handler);
  // A client that half-closes after its body (nc -N, some libraries) still gets its answer: by default
  // Node ends the socket at the client's FIN and the answer is lost. With this (long-standing, if
  // undocumented) switch of Node's http server, the answer is sent and the socket ended after it.
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // Malformed requests are routine on the internet: one debug line and one readable line back.
  server.on('clientError', (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket) => {
    const from = (socket as import('net').Socket).remoteAddress ?? 'a client';
    if (err.code === 'ECONNRESET' || !socket.writable) {
      debug(`connection reset by ${from}`);
      socket.destroy();
      return;
    }
    debug(`malformed request from ${from}: ${oneLine(err)}`);
    const [status, reason, what] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request headers took too long']
        : [400, 'Bad Request', 'malformed HTTP request'];
    const body = `${status} ${reason}: ${what}\n`;
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
  return server;
}
