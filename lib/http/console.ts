// The operator console: a second koa app on its own loopback-only listener (--console, default
// 127.0.0.1:8081), never published on the onion. Everything it answers needs the admin token the daemon
// keeps in <dataDir>/admin-token: as the password of HTTP Basic auth (a browser asks for it; any user name),
// `Authorization: Bearer <token>` or `X-Admin-Token: <token>`. No cookies.
//
//   GET  /                 the dashboard (HTML; plain text for curl; JSON with Accept: application/json)
//   GET  /status           the daemon's status as JSON: what `bitdrop status --json` prints
//   GET  /files            files: ?sort=newest|largest|downloads|unpaid &q=name, id or SHA-256 (HTML or JSON)
//   POST /files/<id>/delete    delete a file or a drop                                  (form: csrf)
//   POST /block            block content by SHA-256 with a reason; deletes what is stored (form: sha256, reason, csrf)
//   POST /unblock          lift a block                                             (form: sha256, csrf)
//   GET  /blocklist.txt    the blocklist, "<sha256> <reason>" a line: share it with other boxes
//   POST /blocklist        add a shared blocklist                                  (form: list, csrf)
//   GET  /style.css        the stylesheet
// Other subsystems mount their own read-only routes with `routes` (e.g. Prometheus /metrics).
// Forms that change anything carry a CSRF token derived from the admin token (a page of another origin
// cannot read it), and a request a browser marks as cross-site is refused; every change is logged.

import crypto from 'crypto';
import http from 'http';
import Koa from 'koa';
import { UserError } from '../errors';
import type { FileManifest, Store } from '../store';
import { block, blocklist, formatBlocklist, parseBlocklist, SHA256_HEX, unblock } from '../store/blocklist';
import { ConsoleHistory } from './console-history';
import { consolePage, filesPage, formatStatus, type FileRow } from './console-page';
import { errorHandler } from './errors';
import type { PaymentGate } from './gate';
import { flavor } from './negotiate';
import { securityHeaders } from './security';
import { serveStylesheet } from './style';

export { formatStatus } from './console-page';

/** What the console acts on: the store, the payment gate (deletions), download counts. */
export interface ConsoleAdmin {
  store: Store;
  gate: PaymentGate;
  /** whole downloads charged to an account (bytes charged / its size); undefined on a free box */
  downloads?: (accountId: string) => Promise<number | undefined>;
  /** the public base URL, for links to file pages */
  publicUrl?: () => string;
}

export interface ConsoleDeps {
  adminToken: string;
  /** the daemon's full status: the same object `bitdrop status` prints */
  status: () => Promise<Record<string, unknown>>;
  /** extra routes (return true when handled), tried after authentication */
  routes?: Array<(ctx: Koa.Context) => Promise<boolean> | boolean>;
  log: (line: string) => void;
  /** files, deletions, the blocklist and the history charts; without it the console only shows the status */
  admin?: ConsoleAdmin;
  /** how often the history is sampled (ms) */
  sampleEveryMs?: number;
}

/** Host headers a loopback console answers (refusing others defeats DNS rebinding from a web page). */
const LOCAL_HOST = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/i;

function tokenOf(ctx: Koa.Context): string {
  const header = ctx.get('X-Admin-Token');
  if (header) return header;
  const auth = ctx.get('Authorization');
  const bearer = /^Bearer\s+(\S+)$/i.exec(auth);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(auth);
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1);
  }
  return '';
}

function sameSecret(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb);
}

/** The CSRF token of the console's forms: a MAC of a fixed label under the admin token. */
export const csrfToken = (adminToken: string) => crypto.createHmac('sha256', adminToken).update('bitdrop console forms').digest('base64url');

async function readForm(ctx: Koa.Context, limit = 256 * 1024): Promise<URLSearchParams> {
  if (!/^application\/x-www-form-urlencoded/i.test(ctx.get('Content-Type'))) throw new UserError(415, 'console forms are application/x-www-form-urlencoded');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new UserError(413, `a console form is ${limit / 1024} KiB at most`);
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function createConsoleApp(deps: ConsoleDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  const csrf = csrfToken(deps.adminToken);
  const admin = deps.admin;
  const history = admin ? new ConsoleHistory(admin.store.db) : undefined;
  const sample = async () => {
    if (!history) return;
    const s = await deps.status();
    const payments = (s.payments ?? {}) as Record<string, unknown>;
    const totals = (s.totals ?? {}) as Record<string, unknown>;
    await history.record({ stored: Number(s.bytes ?? 0), files: Number(s.files ?? 0), earnedTotal: Number(payments.creditsEarned ?? 0), servedSinceStart: Number(totals.bytesServedSinceStart ?? 0) });
  };
  if (history) {
    sample().catch(() => undefined);
    const timer = setInterval(() => { sample().catch(() => undefined); }, deps.sampleEveryMs ?? 10 * 60_000);
    timer.unref();
    app.once('stop', () => clearInterval(timer));
  }
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'ECONNABORTED'].includes(err.code ?? '')) return;
    deps.log(`console error: ${err.stack ?? err}`);
  });
  app.use(securityHeaders);
  app.use(errorHandler(deps.log));
  app.use(async (ctx) => {
    if (!LOCAL_HOST.test(ctx.get('Host'))) throw new UserError(421, 'the console answers only for localhost and loopback addresses');
    ctx.set('Cache-Control', 'no-store');
    if (ctx.path === '/style.css' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return serveStylesheet(ctx);
    const token = tokenOf(ctx);
    if (!token || !sameSecret(token, deps.adminToken)) {
      throw new UserError(401, token
        ? 'wrong admin token'
        : 'the console needs the admin token (in <data dir>/admin-token): as the Basic auth password, or the X-Admin-Token header',
      {}, { 'WWW-Authenticate': 'Basic realm="bitdrop console", charset="UTF-8"' });
    }
    if (ctx.method === 'POST' && admin) return act(ctx);
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new UserError(405, `${ctx.method} is not allowed here`);
    if (ctx.path === '/status') { ctx.body = await deps.status(); return; }
    for (const route of deps.routes ?? []) if (await route(ctx)) return;
    if (ctx.path === '/blocklist.txt' && admin) {
      ctx.type = 'text/plain; charset=utf-8';
      ctx.set('Content-Disposition', 'inline; filename="bitdrop-blocklist.txt"');
      ctx.body = formatBlocklist(await blocklist(admin.store.db));
      return;
    }
    if (ctx.path === '/files' && admin) return showFiles(ctx);
    if (ctx.path !== '/') throw new UserError(404, 'not found');
    await sample().catch(() => undefined);
    const status = await deps.status();
    const f = flavor(ctx);
    if (f === 'json') { ctx.body = status; return; }
    if (f === 'text') { ctx.type = 'text/plain; charset=utf-8'; ctx.body = formatStatus(status).join('\n') + '\n'; return; }
    ctx.type = 'html';
    ctx.body = consolePage(status, {
      csrf,
      done: typeof ctx.query.done === 'string' ? ctx.query.done.slice(0, 300) : undefined,
      history: history ? await history.days(30) : undefined,
      files: admin ? (await listFiles('newest', '', 8)).rows : undefined,
      blocked: admin ? await blocklist(admin.store.db) : undefined,
      sha256: typeof ctx.query.sha256 === 'string' && SHA256_HEX.test(ctx.query.sha256) ? ctx.query.sha256 : undefined,
      base: admin?.publicUrl?.(),
    });
  });

  // ---- files ----

  async function row(m: FileManifest): Promise<FileRow> {
    const view = await admin!.gate.describe(m);
    const account = m.drop ?? m.id;
    const downloads = admin!.downloads ? await admin!.downloads(account) : undefined;
    return {
      id: m.id, name: m.name, size: m.size, sha256: m.sha256, created: m.created, drop: m.drop,
      state: view.state as string | undefined, balance: view.balance as number | undefined,
      downloads,
    };
  }

  /** Scans the manifests (at most SCAN of them) and returns the first `limit` rows in the asked order. */
  async function listFiles(sort: string, q: string, limit = 100): Promise<{ rows: FileRow[]; matched: number; scanned: number }> {
    const SCAN = 50_000;
    const needle = q.trim().toLowerCase();
    let all: FileManifest[] = [];
    let scanned = 0;
    for await (const m of admin!.store.manifests()) {
      if (++scanned > SCAN) break;
      if (needle && !(m.name.toLowerCase().includes(needle) || m.id === q.trim() || m.sha256 === needle || m.drop === q.trim())) continue;
      all.push(m);
    }
    const matched = all.length;
    if (sort === 'largest') all.sort((a, b) => b.size - a.size);
    else all.sort((a, b) => b.created - a.created);
    if (sort === 'newest' || sort === 'largest') return { rows: await Promise.all(all.slice(0, limit).map(row)), matched, scanned };
    // the others need each file's account
    let rows = await Promise.all(all.map(row));
    if (sort === 'downloads') rows.sort((a, b) => (b.downloads ?? -1) - (a.downloads ?? -1));
    if (sort === 'unpaid') rows = rows.filter((r) => r.state !== undefined && r.state !== 'active');
    all = [];
    return { rows: rows.slice(0, limit), matched: sort === 'unpaid' ? rows.length : matched, scanned };
  }

  async function showFiles(ctx: Koa.Context) {
    const sort = ['newest', 'largest', 'downloads', 'unpaid'].includes(String(ctx.query.sort)) ? String(ctx.query.sort) : 'newest';
    const q = typeof ctx.query.q === 'string' ? ctx.query.q.slice(0, 200) : '';
    const list = await listFiles(sort, q);
    if (flavor(ctx) === 'json') { ctx.body = { sort, q, ...list }; return; }
    ctx.type = 'html';
    ctx.body = filesPage({ sort, q, ...list, csrf, done: typeof ctx.query.done === 'string' ? ctx.query.done.slice(0, 300) : undefined, base: admin!.publicUrl?.() });
  }

  // ---- changes: token, CSRF, logged ----

  async function act(ctx: Koa.Context) {
    // A browser says where a request comes from: a page of another site posting here is refused outright.
    const site = ctx.get('Sec-Fetch-Site');
    if (site && site !== 'same-origin' && site !== 'none') throw new UserError(403, 'a console form must be sent from the console itself');
    const origin = ctx.get('Origin');
    if (origin && origin !== 'null' && new URL(origin).host !== ctx.get('Host')) throw new UserError(403, 'a console form must be sent from the console itself');
    const form = await readForm(ctx);
    if (!sameSecret(form.get('csrf') ?? '', csrf)) throw new UserError(403, 'the form is stale or from elsewhere (bad CSRF token): reload the console and try again');
    const store = admin!.store;
    const back = (where: string, done: string) => {
      ctx.status = 303;
      ctx.set('Location', `${where}${where.includes('?') ? '&' : '?'}done=${encodeURIComponent(done)}`);
      ctx.body = done;
    };
    const del = /^\/files\/([A-Za-z0-9_-]{22})\/delete$/.exec(ctx.path);
    if (del) {
      const id = del[1];
      const why = 'deleted by the operator';
      const drop = await store.getDrop(id);
      const m = drop ? await store.get(drop.files[0]) : await store.get(id);
      if (!m) throw new UserError(404, `no file or drop ${id}`);
      if (drop) {
        const account: FileManifest = { ...m, id, drop: undefined };
        await store.deleteDrop(id, await admin!.gate.deleteOps(account), why);
        admin!.gate.deleted(account);
      } else if (m.drop) {
        await store.delete(id, [], why);
      } else {
        await store.delete(id, await admin!.gate.deleteOps(m), why);
        admin!.gate.deleted(m);
      }
      deps.log(`console   deleted ${drop ? `the drop ${id} (${drop.files.length} files)` : `${id} “${m.name}”`} (operator)`);
      return back(String(form.get('back') || '/files').startsWith('/') ? String(form.get('back') || '/files') : '/files', `Deleted ${drop ? `the drop ${id}` : `“${m.name}”`}.`);
    }
    if (ctx.path === '/block') {
      const e = await block(store.db, form.get('sha256') ?? '', form.get('reason') ?? '').catch((err) => { throw new UserError(400, (err as Error).message); });
      const n = await removeBlocked(e.sha256, e.reason);
      deps.log(`console   blocked ${e.sha256} (${e.reason}); ${n} stored ${n === 1 ? 'file' : 'files'} deleted`);
      return back('/', `Blocked ${e.sha256.slice(0, 12)}…: ${n} stored ${n === 1 ? 'file' : 'files'} deleted; uploads of it are refused.`);
    }
    if (ctx.path === '/unblock') {
      const sha = (form.get('sha256') ?? '').trim().toLowerCase();
      await unblock(store.db, sha).catch((err) => { throw new UserError(400, (err as Error).message); });
      deps.log(`console   unblocked ${sha}`);
      return back('/', `Unblocked ${sha.slice(0, 12)}….`);
    }
    if (ctx.path === '/blocklist') {
      let entries: Array<{ sha256: string; reason: string }>;
      try { entries = parseBlocklist(form.get('list') ?? ''); } catch (err) { throw new UserError(400, (err as Error).message); }
      let deleted = 0;
      for (const e of entries) {
        const b = await block(store.db, e.sha256, e.reason);
        deleted += await removeBlocked(b.sha256, b.reason);
      }
      deps.log(`console   added ${entries.length} blocklist ${entries.length === 1 ? 'entry' : 'entries'}; ${deleted} stored files deleted`);
      return back('/', `Added ${entries.length} blocklist ${entries.length === 1 ? 'entry' : 'entries'}; ${deleted} stored ${deleted === 1 ? 'file' : 'files'} deleted.`);
    }
    throw new UserError(404, 'not found');
  }

  /** Deletes every stored file with these bytes; their links answer 410 with the reason. */
  async function removeBlocked(sha256: string, reason: string): Promise<number> {
    const store = admin!.store;
    const hits: FileManifest[] = [];
    for await (const m of store.manifests()) if (m.sha256 === sha256) hits.push(m);
    const why = `blocked by the operator: ${reason}`;
    for (const m of hits) {
      if (m.drop) await store.delete(m.id, [], why);
      else {
        await store.delete(m.id, await admin!.gate.deleteOps(m), why);
        admin!.gate.deleted(m);
      }
    }
    return hits.length;
  }

  return app;
}

export function createConsoleServer(app: Koa): http.Server {
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, app.callback());
  server.timeout = 30_000;
  server.once('close', () => app.emit('stop'));
  return server;
}

export { SHA256_HEX };
