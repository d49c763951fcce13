// The operator console: a second koa app on its own loopback-only listener (--console, default
// 127.0.0.1:8081), never published on the onion. Everything it answers needs the admin token the daemon
// keeps in <dataDir>/admin-token: as the password of HTTP Basic auth (a browser asks for it; any user name),
// `Authorization: Bearer <token>` or `X-Admin-Token: <token>`. No cookies.
//
//   GET /            the console page (HTML; plain text for curl; JSON with Accept: application/json)
//   GET /status      the daemon's status as JSON: what `bitdrop status` prints
//   GET /style.css   the stylesheet
// Other subsystems mount their own read-only routes with `routes` (e.g. Prometheus /metrics).

import crypto from 'crypto';
import http from 'http';
import Koa from 'koa';
import { UserError } from '../errors';
import { errorHandler } from './errors';
import { flavor, html, Html, page } from './negotiate';
import { securityHeaders } from './security';
import { serveStylesheet } from './style';

export interface ConsoleDeps {
  adminToken: string;
  /** the daemon's full status: the same object `bitdrop status` prints */
  status: () => Promise<Record<string, unknown>>;
  /** extra routes (return true when handled), tried after authentication */
  routes?: Array<(ctx: Koa.Context) => Promise<boolean> | boolean>;
  log: (line: string) => void;
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

export function createConsoleApp(deps: ConsoleDeps): Koa {
  const app = new Koa();
  app.proxy = false;
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
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new UserError(405, `${ctx.method} is not allowed on the console`);
    if (ctx.path === '/status') { ctx.body = await deps.status(); return; }
    for (const route of deps.routes ?? []) if (await route(ctx)) return;
    if (ctx.path !== '/') throw new UserError(404, 'not found');
    const status = await deps.status();
    const f = flavor(ctx);
    if (f === 'json') { ctx.body = status; return; }
    if (f === 'text') { ctx.type = 'text/plain; charset=utf-8'; ctx.body = formatStatus(status).join('\n') + '\n'; return; }
    ctx.type = 'html';
    ctx.body = consolePage(status);
  });
  return app;
}

export function createConsoleServer(app: Koa): http.Server {
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, app.callback());
  server.timeout = 30_000;
  return server;
}

/** Human-readable lines of a status object: nested objects flatten to dotted keys (`bitdrop status`). */
export function formatStatus(status: Record<string, unknown>, prefix = ''): string[] {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(status)) {
    if (k === 'names' && Array.isArray(v)) {
      lines.push(`${(prefix + k).padEnd(24)} ${v.length ? v.length : 'none (--name d/NAME registers one)'}`);
      for (const n of v as Array<{ name: string; state: string; height: number | null; expiresIn: number | null; value: string | null; lastError: string | null }>) {
        const facts = [n.state, n.height !== null ? `height ${n.height}` : '', n.expiresIn !== null ? `expires in ${n.expiresIn} blocks` : ''].filter(Boolean);
        lines.push(`  ${n.name.padEnd(22)} ${facts.join(', ')}`);
        if (n.value !== null) lines.push(`  ${''.padEnd(22)} value ${n.value}`);
        if (n.lastError) lines.push(`  ${''.padEnd(22)} last error: ${n.lastError}`);
      }
    } else if (k === 'events' && Array.isArray(v)) {
      lines.push(`${(prefix + k).padEnd(24)} ${v.length} recent (newest first)`);
      for (const e of v.slice(0, 10) as Array<{ time: string; line: string }>) lines.push(`  ${e.time}  ${e.line}`);
    } else if (v && typeof v === 'object' && !Array.isArray(v)) lines.push(...formatStatus(v as Record<string, unknown>, `${prefix}${k}.`));
    else lines.push(`${(prefix + k).padEnd(24)} ${Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : x)).join(', ') : v}`);
  }
  return lines;
}

// ---- the page ------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

function value(v: unknown): Html {
  if (v instanceof Html) return v;
  if (v === undefined || v === null || v === '') return html`<span class="muted">—</span>`;
  if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) return table(v as Obj[]);
  if (Array.isArray(v)) return v.length ? html`${v.map((x, i) => html`${i ? ', ' : ''}${value(x)}`)}` : html`<span class="muted">none</span>`;
  if (typeof v === 'object') return facts(v as Obj);
  if (typeof v === 'boolean') return html`${v ? 'yes' : 'no'}`;
  return html`<span class="mono">${String(v)}</span>`;
}

/** A list of like objects (names and their states, servers) as a table. */
function table(rows: Obj[]): Html {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return html`<div class="wrap"><table><thead><tr>${cols.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead><tbody>${
    rows.map((r) => html`<tr>${cols.map((c) => html`<td>${value(r[c])}</td>`)}</tr>`)
  }</tbody></table></div>`;
}

/** A definition list of an object's fields (nested objects nest). */
function facts(o: Obj): Html {
  const entries = Object.entries(o);
  if (entries.length === 0) return html`<span class="muted">none</span>`;
  return html`<dl class="facts">${entries.map(([k, v]) => html`<dt>${k}</dt><dd>${value(v)}</dd>`)}</dl>`;
}

function section(title: string, body: Html | string): Html {
  return html`<section class="panel" aria-labelledby="h-${title}"><h2 id="h-${title}">${title}</h2>${new Html(String(body))}</section>`;
}

const KNOWN = new Set(['version', 'pid', 'uptime', 'listen', 'console', 'dataDir', 'onion', 'tor', 'payments', 'totals', 'events', 'files', 'bytes', 'store', 'names']);

export function consolePage(s: Obj): string {
  const tor = obj(s.tor);
  const payments = obj(s.payments);
  const electrum = obj(payments.electrum);
  const events = Array.isArray(s.events) ? (s.events as Array<{ time: string; line: string }>) : [];
  const onion = s.onion ? `http://${s.onion}/` : undefined;
  const parts: Html[] = [];
  parts.push(html`<h1>Console</h1><p class="muted">bitdrop ${String(s.version ?? '')}, pid ${String(s.pid ?? '')}, up ${duration(Number(s.uptime ?? 0))}.
    This page is only on this machine's loopback; it refreshes every 10 seconds.</p>`);
  if (payments.mode && payments.mode !== 'free') parts.push(html`<p><a href="/books">The books</a>: revenue, costs, margin, runway and prices by day, as charts (<a href="/books.csv">CSV</a>).</p>`);
  parts.push(section('Onion and tor', facts({
    onion: onion ? html`<a href="${onion}">${onion}</a>` : 'not published',
    'tor mode': tor.mode,
    bootstrap: tor.bootstrap !== undefined ? `${tor.bootstrap}%` : undefined,
    socks: tor.socks ? `${obj(tor.socks).host}:${obj(tor.socks).port}` : undefined,
    'DoS defences': tor.defenses,
    'public listener': s.listen,
  } as Obj)));
  const { electrum: _e, ...paymentFacts } = payments;
  parts.push(section('Chain and payments', facts({
    ...paymentFacts,
    ...(payments.electrum ? {
      'electrum connected': electrum.connected,
      'electrum server': electrum.server,
      'chain tip': electrum.height,
      subscriptions: electrum.subscriptions,
      'hot addresses': electrum.hot,
      'sweep progress': electrum.sweep,
    } : {}),
  })));
  if (s.names !== undefined) parts.push(section('Names', value(s.names)));
  parts.push(section('Totals', facts({ ...obj(s.totals), store: s.store })));
  for (const [k, v] of Object.entries(s)) if (!KNOWN.has(k)) parts.push(section(k, value(v)));
  parts.push(section('Recent events', events.length
    ? html`<div class="wrap"><table><thead><tr><th scope="col">time (UTC)</th><th scope="col">event</th></tr></thead><tbody>${
      events.map((e) => html`<tr><td class="mono">${e.time.replace('T', ' ').replace(/\.\d+Z$/, '')}</td><td class="mono">${e.line}</td></tr>`)
    }</tbody></table></div>`
    : html`<p class="muted">nothing yet</p>`));
  return page('Console', parts.join(''), { footer: html`Data dir ${String(s.dataDir ?? '')}. <code>bitdrop status</code> prints the same data.`, refresh: 10, className: 'wide' });
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}
