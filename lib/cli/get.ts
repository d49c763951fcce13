// `bitdrop get URL[#identity]`: the downloader made for Tor. Through tor's SocksPort, resumable from its
// partial file, checked against the SHA-256 the server publishes, paying when asked, in parallel ranges
// over separate circuits (one SOCKS username per stream: tor's IsolateSOCKSAuth), decrypting age files
// with the identity from the link's #fragment — which never leaves this process.
//
// A download keeps two files next to its output: `.<id>.bitdrop-part` (the bytes as served, written at
// their offsets) and `.<id>.bitdrop-part.json` (which ranges are in it). A killed `bitdrop get` run again
// with the same link continues from them; bytes written but not yet recorded are fetched again.

import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import https from 'https';
import path from 'path';
import { PassThrough, Readable } from 'stream';
import { SingleBar } from 'cli-progress';
import { socksAgent } from '../net/socks-agent';
import { safeName } from '../http/filenames';
import { decryptStream, isAgeHeader, isIdentity, openPlaintext } from '../age';

export interface GetOptions {
  /** output file (a single file) or directory (a drop) */
  output?: string;
  /** HOST:PORT of tor's SocksPort; without it: 127.0.0.1:9050, except loopback URLs and `clearnet` */
  socks?: string;
  clearnet?: boolean;
  /** parallel ranges (default 4 for files of LARGE bytes or more, else 1) */
  jobs?: number;
  /** on a 402, wait for the payment instead of stopping */
  wait?: boolean;
  /** an age identity (AGE-SECRET-KEY-1…) given apart from the link */
  identity?: string;
  /** one file of a drop, by name */
  name?: string;
  progress?: boolean;
  /** bytes per second over all streams */
  limitRate?: number;
  /** tries per range before giving up (the partial file is kept) */
  retries?: number;
  /** how often to look for a payment with `wait` */
  pollMs?: number;
  /** example.bit → its onion host, as `bitdrop resolve` does, and the mirror onions its value lists */
  resolveBit?: (domain: string) => Promise<string | { onion: string; mirrors?: string[] }>;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export const LARGE = 32 * 1024 * 1024;
/** how long a box that may be gone is waited for when its mirrors are known (an onion's first answer takes 2–10 s) */
const BOX_PATIENCE_MS = 20_000;
const ID_PATH = /^\/([A-Za-z0-9_-]{22})(?:\/[^/]*)?$/;

export class PaymentNeeded extends Error {}

interface FileMeta { id: string; url: string; name: string; size: number; sha256: string }
interface Meta extends Partial<FileMeta> {
  files?: FileMeta[];
  state?: string;
  amountDue?: number;
  address?: string;
  paymentUri?: string;
  error?: string;
}

// ---- where to ask ------------------------------------------------------------------------------------

/**
 * The URLs a link can be fetched from, best first, and the identity its #fragment carries (the fragment
 * is removed here: no request ever has it). A .bit host is resolved to its onion. The copies on mirrors a
 * box published are tried by getLink when the box does not answer (keptMirrors).
 */
export async function urlCandidates(link: string, opts: Pick<GetOptions, 'resolveBit' | 'identity'> = {}): Promise<{ urls: URL[]; identity?: string; mirrors?: string[] }> {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    throw new Error(`"${link}" is not a URL (expected http://….onion/ID or http://….onion/ID/NAME)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${url.protocol} URLs are not bitdrop links`);
  let identity = opts.identity?.trim() || undefined;
  const fragment = decodeURIComponent(url.hash.replace(/^#/, '')).trim();
  url.hash = '';
  if (fragment) {
    if (!isIdentity(fragment)) throw new Error('the #fragment of the link is not an age identity (AGE-SECRET-KEY-1…); copy the whole link');
    identity ??= fragment;
  }
  if (identity && !isIdentity(identity)) throw new Error('the identity is not an age X25519 identity (AGE-SECRET-KEY-1…)');
  if (!ID_PATH.test(url.pathname)) throw new Error(`${url.origin}${url.pathname} is not a bitdrop file or drop link (/<22-character id>[/name])`);
  if (/\.bit\.?$/i.test(url.hostname)) {
    if (!opts.resolveBit) throw new Error(`cannot resolve ${url.hostname}: no Namecoin lookup configured`);
    const r = await opts.resolveBit(url.hostname.replace(/\.$/, ''));
    url.hostname = (typeof r === 'string' ? r : r.onion).replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    return { urls: [url], identity, mirrors: typeof r === 'string' ? [] : r.mirrors ?? [] };
  }
  return { urls: [url], identity };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[?::1\]?|localhost)$/i;

/** The SOCKS proxy a URL goes through, or undefined for a direct connection. */
export function proxyFor(url: URL, opts: Pick<GetOptions, 'socks' | 'clearnet'>): string | undefined {
  if (opts.socks) return opts.socks;
  if (/\.onion$/i.test(url.hostname)) return '127.0.0.1:9050';
  if (LOOPBACK.test(url.hostname) || opts.clearnet) return undefined;
  return '127.0.0.1:9050';
}

// ---- HTTP ---------------------------------------------------------------------------------------------

function request(url: URL, agent: http.Agent | undefined, headers: Record<string, string>, signal?: AbortSignal): Promise<http.IncomingMessage> {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { agent, headers: { 'User-Agent': 'bitdrop-get', ...headers }, signal });
    req.setTimeout(120_000, () => req.destroy(new Error('no answer for 120 s')));
    // an abort while the SOCKS proxy is still connecting (tor looking for an onion, up to 120 s) is not an
    // error of the request until the proxy gives up: it is answered now
    const aborted = () => reject(signal!.reason instanceof Error ? signal!.reason : new Error('interrupted'));
    const settle = <T>(fn: (v: T) => void) => (v: T) => { signal?.removeEventListener('abort', aborted); fn(v); };
    req.on('response', settle(resolve));
    req.on('error', settle(reject));
    if (signal?.aborted) aborted();
    else signal?.addEventListener('abort', aborted, { once: true });
    req.end();
  });
}

async function readRaw(res: http.IncomingMessage, max = 4 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > max) throw new Error('the answer is too large');
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

const readBody = async (res: http.IncomingMessage, max?: number) => (await readRaw(res, max)).toString('utf8');

async function fetchMeta(url: URL, agent: http.Agent | undefined, signal?: AbortSignal): Promise<Meta> {
  const id = ID_PATH.exec(url.pathname)![1];
  const res = await request(new URL(`/${id}`, url), agent, { Accept: 'application/json' }, signal);
  const text = await readBody(res);
  let body: Meta;
  try {
    body = JSON.parse(text) as Meta;
  } catch {
    throw new Error(`${url.origin} answered HTTP ${res.statusCode} with no bitdrop JSON: ${text.trim().split('\n')[0].slice(0, 200)}`);
  }
  // the box answered: its answer stands (a deleted or blocked file is not fetched from its mirrors)
  if (res.statusCode !== 200) throw Object.assign(new Error(`${url.origin}/${id}: ${body.error ?? `HTTP ${res.statusCode}`}`), { answered: true });
  if (!body.files && (typeof body.size !== 'number' || !/^[0-9a-f]{64}$/.test(String(body.sha256)))) {
    throw new Error(`${url.origin}/${id} publishes no size and SHA-256 for the file`);
  }
  return body;
}

// ---- ranges -------------------------------------------------------------------------------------------

type Range = [number, number]; // [start, end)

export function addRange(done: Range[], r: Range): Range[] {
  const all = [...done, r].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const x of all) {
    const last = out[out.length - 1];
    if (last && x[0] <= last[1]) last[1] = Math.max(last[1], x[1]);
    else out.push([x[0], x[1]]);
  }
  return out;
}

export function missingRanges(done: Range[], size: number): Range[] {
  const out: Range[] = [];
  let at = 0;
  for (const [s, e] of done) {
    if (s > at) out.push([at, s]);
    at = Math.max(at, e);
  }
  if (at < size) out.push([at, size]);
  return out;
}

const doneBytes = (done: Range[]) => done.reduce((n, [s, e]) => n + e - s, 0);

interface PartState { url: string; sha256: string; size: number; done: Range[] }

function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  if (signal?.aborted) return resolve();
  const done = () => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); };
  const t = setTimeout(done, ms);
  signal?.addEventListener('abort', done, { once: true });
});

// ---- the download -------------------------------------------------------------------------------------

export interface GetResult { files: string[] }

/**
 * The copies a box published of a file (its JSON's `mirrors`, lib/mirrors), kept beside the partial download
 * as `.<id>.bitdrop-mirrors.json`: when the box is gone, the same command goes on from a mirror, whose copy
 * must have the SHA-256 the box published.
 */
interface MirrorsRecord { sha256: string; size: number; urls: string[] }
const mirrorsRecordPath = (dir: string, id: string) => path.join(dir, `.${id}.bitdrop-mirrors.json`);

/** Where a single file's download goes: a directory (the file's own name), or an output file in its directory. */
function targetOf(o: GetOptions): { dir: string; output?: string } {
  if (!o.output) return { dir: '.' };
  if (fs.existsSync(o.output) && fs.statSync(o.output).isDirectory()) return { dir: o.output };
  return { dir: path.dirname(o.output), output: o.output };
}

function keepMirrors(id: string, meta: Meta & { mirrors?: unknown }, opts: GetOptions) {
  const urls = Array.isArray(meta.mirrors) ? meta.mirrors.map((m) => (m as { url?: unknown })?.url).filter((u): u is string => typeof u === 'string' && /^https?:\/\//.test(u)) : [];
  if (!urls.length || meta.files || typeof meta.sha256 !== 'string') return;
  const rec: MirrorsRecord = { sha256: meta.sha256, size: meta.size!, urls };
  try {
    fs.mkdirSync(targetOf(opts).dir, { recursive: true });
    fs.writeFileSync(mirrorsRecordPath(targetOf(opts).dir, id), JSON.stringify(rec));
  } catch { /* a convenience: the download goes on without it */ }
}

function keptMirrors(id: string, opts: GetOptions): MirrorsRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(mirrorsRecordPath(targetOf(opts).dir, id), 'utf8')) as MirrorsRecord;
  } catch {
    return undefined;
  }
}

/**
 * Where to look when the box does not answer: the copies an earlier run kept (checked against the SHA-256 the
 * box published), else, for a .bit link, the mirrors its name lists — where a copy keeps the file's id, and
 * says (copyOf) that it is the copy of this very file, which the mirror checked against the box when it took it.
 */
function fallbacks(url: URL, id: string, opts: GetOptions, nameMirrors: string[]): MirrorSource[] {
  const kept = keptMirrors(id, opts);
  if (kept) return kept.urls.map((u) => ({ url: u, sha256: kept.sha256, size: kept.size }));
  return nameMirrors.map((host) => ({ url: `http://${host}/${id}`, copyOf: `${url.origin}/${id}` }));
}

export async function getLink(link: string, opts: GetOptions = {}): Promise<GetResult> {
  const log = opts.log ?? (() => {});
  const { urls, identity, mirrors: nameMirrors = [] } = await urlCandidates(link, opts);
  let lastError: unknown;
  for (const url of urls) {
    const id = ID_PATH.exec(url.pathname)![1];
    const socks = proxyFor(url, opts);
    const metaAgent = socks ? socksAgent(socks, `bitdrop-get-${crypto.randomBytes(6).toString('hex')}`) : undefined;
    // with copies to go to, a box that stays silent is not waited for as long as tor would (120 s). (Its own
    // controller and timer: Node 20 garbage-collects an AbortSignal.any signal held only by a request, and then
    // it never fires — seen here as 120 s waits.)
    const patience = fallbacks(url, id, opts, nameMirrors).length ? new AbortController() : undefined;
    const impatient = patience && setTimeout(() => patience.abort(new Error(`no answer within ${BOX_PATIENCE_MS / 1000} s`)), BOX_PATIENCE_MS);
    const passOn = () => patience?.abort(opts.signal!.reason);
    if (patience) opts.signal?.addEventListener('abort', passOn, { once: true });
    let meta: Meta;
    try {
      meta = await fetchMeta(url, metaAgent, patience?.signal ?? opts.signal);
    } catch (err) {
      clearTimeout(impatient);
      if (patience?.signal.aborted && !opts.signal?.aborted) err = patience.signal.reason;
      lastError = err;
      if (urls.length > 1) log(`${url.origin}: ${(err as Error).message}; trying the next address`);
      // the box answered: its answer stands (a deleted or blocked file is not fetched from its mirrors)
      const sources = (err as { answered?: boolean }).answered || opts.signal?.aborted ? [] : fallbacks(url, id, opts, nameMirrors);
      if (sources.length) {
        const got = await fromMirrors(url, id, sources, identity, opts, (e) => { lastError = e; });
        if (got) return got;
      } else if (!(err as { answered?: boolean }).answered && !opts.signal?.aborted && /\.onion$/i.test(url.hostname) && !/ECONNREFUSED/.test((err as Error).message)) {
        lastError = new Error(`${(err as Error).message} (${url.host} does not answer, and this get knows no mirror of it: a .bit link names its mirrors, and a download begun while the box answered keeps them)`);
      }
      continue;
    } finally {
      clearTimeout(impatient);
      opts.signal?.removeEventListener('abort', passOn);
    }
    keepMirrors(id, meta, opts);
    const got = await fetchAll(url, meta, socks, identity, opts);
    fs.rmSync(mirrorsRecordPath(targetOf(opts).dir, id), { force: true });
    return got;
  }
  const msg = (lastError as Error)?.message ?? String(lastError);
  throw new Error(/ECONNREFUSED.*9050|SOCKS 127\.0\.0\.1:9050/.test(msg) ? `${msg} (is tor running? give its SocksPort with --socks HOST:PORT)` : msg);
}

/** A copy to try: its URL, and what it must be — the SHA-256 the box published, or a copy of the box's file. */
interface MirrorSource { url: string; sha256?: string; size?: number; copyOf?: string }

/** The box is unreachable: its copies on mirrors, each checked to be the file the box published. */
async function fromMirrors(original: URL, id: string, sources: MirrorSource[], identity: string | undefined, opts: GetOptions, failed: (err: unknown) => void): Promise<GetResult | undefined> {
  const log = opts.log ?? (() => {});
  for (const source of sources) {
    let url: URL;
    try { url = new URL(source.url); } catch { continue; }
    if (!ID_PATH.test(url.pathname)) continue;
    const socks = proxyFor(url, opts);
    try {
      const meta = await fetchMeta(url, socks ? socksAgent(socks, `bitdrop-get-${crypto.randomBytes(6).toString('hex')}`) : undefined, opts.signal) as Meta & { copyOf?: unknown };
      if (source.sha256 !== undefined && (meta.sha256 !== source.sha256 || meta.size !== source.size)) {
        log(`${url.origin}: its copy is not the file ${original.origin} published (SHA-256 ${meta.sha256}, not ${source.sha256}); not used`);
        continue;
      }
      if (source.copyOf !== undefined && meta.copyOf !== source.copyOf) {
        log(`${url.origin}: its file ${ID_PATH.exec(url.pathname)![1]} is not a copy of ${source.copyOf}; not used`);
        continue;
      }
      log(`${original.origin} does not answer; downloading its copy from the mirror ${url.origin}`);
      // the same bytes: the partial file of the original's id goes on filling from the mirror
      const got = await fetchAll(url, { ...meta, id }, socks, identity, opts);
      fs.rmSync(mirrorsRecordPath(targetOf(opts).dir, id), { force: true });
      return got;
    } catch (err) {
      failed(err);
      log(`${url.origin}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

async function fetchAll(url: URL, meta: Meta, socks: string | undefined, identity: string | undefined, opts: GetOptions): Promise<GetResult> {
  const log = opts.log ?? (() => {});
  const metaAgent = socks ? socksAgent(socks, `bitdrop-get-${crypto.randomBytes(6).toString('hex')}`) : undefined;
  const payment = async () => {
    for (;;) {
      if (meta.state === undefined || meta.state === 'active') return;
      const what = `${meta.state}: send ${meta.amountDue ?? 'any amount of'} sats to ${meta.address}`;
      if (!opts.wait) {
        throw new PaymentNeeded(`${url.origin}/${meta.id} is ${what}\n  ${meta.paymentUri}\nrun again with --wait to wait for the payment`);
      }
      log(`payment needed (${what})\n  ${meta.paymentUri}\nwaiting for it…`);
      await sleep(opts.pollMs ?? 10_000, opts.signal);
      if (opts.signal?.aborted) throw new Error('interrupted');
      meta = await fetchMeta(url, metaAgent, opts.signal);
    }
  };
  await payment();
  const rebase = (u: string) => { const x = new URL(u); return new URL(x.pathname, url); };
  if (meta.files) {
    let picked = opts.name ? meta.files.filter((f) => f.name === opts.name) : meta.files;
    let names = meta.files.map((f) => f.name);
    if (picked.length === 0 && identity) {
      // an encrypted drop: the names are inside; the first chunk of each file tells it
      names = [];
      for (const f of meta.files) names.push((await peekName({ ...f, url: rebase(f.url).href }, metaAgent, identity, opts.signal)) ?? f.name);
      picked = meta.files.filter((_, i) => names[i] === opts.name);
    }
    if (picked.length === 0) throw new Error(`the drop has no file named "${opts.name}"; it has: ${names.join(', ')}`);
    const dir = opts.output ?? '.';
    await fs.promises.mkdir(dir, { recursive: true });
    const files: string[] = [];
    for (const f of picked) files.push(await fetchFile({ ...f, url: rebase(f.url).href }, { dir }, socks, identity, opts, payment, () => fetchMeta(url, metaAgent, opts.signal).then((m) => { meta = m; })));
    return { files };
  }
  const fm = meta as FileMeta;
  const file = await fetchFile({ ...fm, url: rebase(fm.url).href }, targetOf(opts), socks, identity, opts, payment, () => fetchMeta(url, metaAgent, opts.signal).then((m) => { meta = m; }));
  return { files: [file] };
}

async function fetchFile(fm: FileMeta, target: { dir: string; output?: string }, socks: string | undefined, identity: string | undefined,
  opts: GetOptions, payment: () => Promise<void>, refreshMeta: () => Promise<void>): Promise<string> {
  const log = opts.log ?? (() => {});
  const part = path.join(target.dir, `.${fm.id}.bitdrop-part`);
  const statePath = `${part}.json`;
  const plainOut = target.output ?? path.join(target.dir, safeName(fm.name));
  if (!identity && !target.output && fs.existsSync(plainOut)) throw new Error(`${plainOut} exists; give -o FILE to save it elsewhere`);

  let state: PartState = { url: fm.url, sha256: fm.sha256, size: fm.size, done: [] };
  try {
    const old = JSON.parse(fs.readFileSync(statePath, 'utf8')) as PartState;
    if (old.sha256 === fm.sha256 && old.size === fm.size && fs.existsSync(part)) {
      state.done = old.done;
      log(`resuming: ${human(doneBytes(state.done))} of ${human(fm.size)} already here`);
    }
  } catch { /* no partial download */ }
  const fh = await fs.promises.open(part, fs.existsSync(part) && state.done.length ? 'r+' : 'w+');
  let saving: Promise<void> = Promise.resolve();
  let savedAt = 0;
  const save = (force = false) => {
    if (!force && Date.now() - savedAt < 250) return saving;
    savedAt = Date.now();
    const snapshot = JSON.stringify(state);
    saving = saving.then(async () => {
      await fs.promises.writeFile(`${statePath}.tmp`, snapshot);
      await fs.promises.rename(`${statePath}.tmp`, statePath);
    });
    return saving;
  };
  let consumed: Consumed | undefined;
  try {
    await fh.truncate(fm.size);
    await save(true);
    const todo = missingRanges(state.done, fm.size);
    const remaining = todo.reduce((n, [s, e]) => n + e - s, 0);
    const jobs = Math.max(1, Math.min(16, opts.jobs ?? (fm.size >= LARGE ? 4 : 1)));
    const segment = jobs === 1 ? Number.MAX_SAFE_INTEGER : Math.min(64 << 20, Math.max(1 << 20, Math.ceil(remaining / (jobs * 4))));
    const queue: Range[] = [];
    for (const [s, e] of todo) for (let a = s; a < e; a += segment) queue.push([a, Math.min(e, a + segment)]);

    const bar = opts.progress ? new SingleBar({
      format: `${fm.name.slice(0, 30)} {bar} {percentage}% | {have} of {total_h} | {speed}/s | ETA {eta_formatted}`,
      stream: process.stderr, hideCursor: true, etaBuffer: 50, fps: 5,
    }) : undefined;
    const started = Date.now();
    const startBytes = doneBytes(state.done);
    let have = startBytes;
    bar?.start(fm.size, have, { have: human(have), total_h: human(fm.size), speed: '0 B' });
    const tick = () => bar?.update(have, { have: human(have), speed: human((have - startBytes) / Math.max(0.001, (Date.now() - started) / 1000)) });

    // a shared rate limit: every stream waits for the bytes it took
    let budgetAt = Date.now();
    const limit = async (n: number) => {
      if (!opts.limitRate) return;
      budgetAt = Math.max(budgetAt, Date.now()) + (n / opts.limitRate) * 1000;
      const wait = budgetAt - Date.now();
      if (wait > 0) await sleep(wait, opts.signal);
      // an answer already received whole is not cut by the abort of its request: stop here
      if (opts.signal?.aborted) throw new Error('interrupted');
    };
    let paying: Promise<void> | undefined;
    const tag = crypto.randomBytes(6).toString('hex');

    // Hashing (and decrypting) follow the download: they read the part file's written prefix in order.
    let stopped: Error | undefined;
    let wake: (() => void) | undefined;
    function notify() { const w = wake; wake = undefined; w?.(); }
    const contiguous = () => (state.done[0]?.[0] === 0 ? state.done[0][1] : 0);
    const following = consume(readInOrder(part, fm.size, contiguous, () => new Promise<void>((r) => { wake = r; }), () => stopped), fm, identity, target);
    following.catch(() => undefined);

    const worker = async (w: number) => {
      const agent = socks ? socksAgent(socks, `bitdrop-get-${tag}-${w}`) : new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let r = queue.shift(); r; r = queue.shift()) {
          let [at, end] = r;
          for (let tries = 0; at < end;) {
            if (opts.signal?.aborted) throw new Error('interrupted');
            try {
              const res = await request(new URL(fm.url), agent, { Range: `bytes=${at}-${end - 1}`, 'If-Range': `"${fm.sha256}"` }, opts.signal);
              if (res.statusCode === 402) {
                await readBody(res).catch(() => '');
                paying ??= refreshMeta().then(payment).finally(() => { paying = undefined; });
                await paying;
                continue;
              }
              const whole = res.statusCode === 200 && at === 0 && end === fm.size;
              const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
              if (!whole && !(res.statusCode === 206 && cr && Number(cr[1]) === at && Number(cr[3]) === fm.size)) {
                const body = (await readBody(res).catch(() => '')).trim().split('\n')[0].slice(0, 200);
                const err = new Error(res.statusCode === 200 ? 'the file changed on the server since the download began (it answered the whole file to a range)'
                  : `HTTP ${res.statusCode} for bytes ${at}-${end - 1}: ${body}`);
                if (res.statusCode && res.statusCode >= 400 && res.statusCode < 500) (err as { fatal?: boolean }).fatal = true;
                throw err;
              }
              // socket reads are ~64 KiB: they are written (and recorded) in pieces of 256 KiB
              let pending: Buffer[] = [];
              let pendingBytes = 0;
              const flush = async () => {
                if (!pendingBytes) return;
                const b = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
                pending = [];
                pendingBytes = 0;
                await fh.write(b, 0, b.length, at);
                state.done = addRange(state.done, [at, at + b.length]);
                notify();
                at += b.length;
                have += b.length;
                tries = 0;
                tick();
                void save();
                await limit(b.length);
              };
              try {
                for await (const chunk of res) {
                  const b = chunk as Buffer;
                  const n = Math.min(b.length, end - at - pendingBytes);
                  if (n <= 0) break;
                  pending.push(n === b.length ? b : b.subarray(0, n));
                  pendingBytes += n;
                  if (pendingBytes >= 256 * 1024) await flush();
                }
              } finally {
                await flush();
              }
              if (at < end) throw new Error(`the connection ended at byte ${at} of ${end}`);
            } catch (err) {
              if ((err as { fatal?: boolean }).fatal || err instanceof PaymentNeeded || opts.signal?.aborted) throw err;
              if (++tries > (opts.retries ?? 5)) throw new Error(`${(err as Error).message} (gave up after ${tries - 1} retries; run the same command again to resume)`);
              log(`stream ${w + 1}: ${(err as Error).message}; retrying in ${tries} s`);
              await sleep(tries * 1000, opts.signal);
            }
          }
        }
      } finally {
        agent.destroy();
      }
    };
    const results = await Promise.allSettled(Array.from({ length: Math.min(jobs, Math.max(1, queue.length)) }, (_, w) => worker(w)));
    bar?.stop();
    await save(true);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed && doneBytes(state.done) !== fm.size) stopped = new Error('the download is incomplete; run the same command again to resume');
    if (failed) stopped = failed.reason as Error;
    notify();
    if (stopped) {
      await following.catch(() => undefined);
      throw stopped;
    }
    consumed = await following;
  } finally {
    await fh.close();
    await saving.catch(() => undefined);
  }

  const { sha256: got, decrypted, decryptError, age } = consumed!;
  if (got !== fm.sha256) {
    for (const f of [part, statePath, decrypted?.tmp]) if (f) await fs.promises.rm(f, { force: true });
    throw new Error(`SHA-256 MISMATCH for ${fm.url}: the server publishes ${fm.sha256} but the bytes received hash to ${got}. ` +
      'Something between you and the server changed them; the download was thrown away.');
  }
  let out: string;
  if (identity) {
    if (!age) throw new Error(`${fm.name} is not an age file; it was kept as ${part} (open it without the key)`);
    if (decryptError || !decrypted) throw new Error(`${(decryptError ?? new Error('not decrypted')).message} (the download is kept: run again with the right key)`);
    await fs.promises.rename(decrypted.tmp, decrypted.out);
    out = decrypted.out;
    await fs.promises.rm(part, { force: true });
  } else {
    if (age) log(`${fm.name} is age-encrypted: to open it, use the whole link with its #key, or age -d -i KEYFILE`);
    out = plainOut;
    await fs.promises.rename(part, out);
  }
  await fs.promises.rm(statePath, { force: true });
  return out;
}

/** The part file's bytes in order, as far as the download has written them without a gap. */
async function* readInOrder(part: string, size: number, contiguous: () => number, more: () => Promise<void>, stopped: () => Error | undefined): AsyncIterable<Buffer> {
  const rfh = await fs.promises.open(part, 'r');
  try {
    let pos = 0;
    while (pos < size) {
      const err = stopped();
      if (err) throw err;
      const avail = contiguous() - pos;
      // the first piece is at least the age header's first line, to tell an age file
      if (avail < (pos === 0 ? Math.min(size, 64) : 1)) { await more(); continue; }
      const buf = Buffer.allocUnsafe(Math.min(avail, 1 << 20));
      const { bytesRead } = await rfh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error(`${part} is shorter than its record says`);
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await rfh.close();
  }
}

interface Consumed { sha256: string; age: boolean; decrypted?: { out: string; tmp: string }; decryptError?: Error }

/** Hashes the bytes and, with an identity, decrypts them into a temporary file beside the output. */
async function consume(chunks: AsyncIterable<Buffer>, fm: FileMeta, identity: string | undefined, target: { dir: string; output?: string }): Promise<Consumed> {
  const hash = crypto.createHash('sha256');
  let first = true;
  let age = false;
  let feed: PassThrough | undefined;
  let decrypting: Promise<{ out: string; tmp: string }> | undefined;
  let decryptError: Error | undefined;
  try {
    for await (const c of chunks) {
      hash.update(c);
      if (first) {
        first = false;
        age = isAgeHeader(c);
        if (identity && age) {
          const f = new PassThrough({ highWaterMark: 4 << 20 });
          feed = f;
          decrypting = decryptTo(f, identity, fm, target);
          decrypting.catch((err) => { decryptError = err; f.destroy(); });
        }
      }
      if (feed && !feed.destroyed && !decryptError && !feed.write(c)) {
        const f = feed;
        await new Promise<void>((r) => { f.once('drain', r); f.once('close', r); });
      }
    }
  } catch (err) {
    feed?.destroy(err as Error);
    await decrypting?.catch(() => undefined);
    throw err;
  }
  feed?.end();
  const decrypted = await decrypting?.catch(() => undefined);
  return { sha256: hash.digest('hex'), age, decrypted, decryptError };
}

async function decryptTo(cipher: PassThrough, identity: string, fm: FileMeta, target: { dir: string; output?: string }): Promise<{ out: string; tmp: string }> {
  const opened = await openPlaintext(await decryptStream(cipher, identity));
  const name = opened.name !== undefined ? safeName(opened.name) : safeName(fm.name.replace(/\.age$/i, '') || fm.id);
  const out = target.output ?? path.join(target.dir, name);
  if (!target.output && fs.existsSync(out)) throw new Error(`${out} exists; give -o FILE to save it elsewhere`);
  const tmp = path.join(path.dirname(out), `.${fm.id}.bitdrop-plain`);
  const w = fs.createWriteStream(tmp);
  try {
    for await (const c of opened.content) if (!w.write(c)) await new Promise<void>((r) => w.once('drain', () => r()));
    await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    w.destroy();
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  return { out, tmp };
}

/** The name inside an encrypted file of ours, read from its first chunk (a ranged request of ~64 KiB). */
async function peekName(fm: FileMeta, agent: http.Agent | undefined, identity: string, signal?: AbortSignal): Promise<string | undefined> {
  const want = Math.min(fm.size, 70_000);
  if (want === 0) return undefined;
  const res = await request(new URL(fm.url), agent, { Range: `bytes=0-${want - 1}` }, signal);
  const raw = await readRaw(res, 1 << 20);
  if (res.statusCode !== 206 && res.statusCode !== 200) return undefined;
  if (!isAgeHeader(raw)) return undefined;
  try {
    // the source never ends: an ended stream would fail its last chunk's check and drop what was decrypted
    const source = new Readable({ read() {} });
    source.push(raw);
    if (want === fm.size) source.push(null);
    const plain = await decryptStream(source, identity);
    plain.on('error', () => {});
    const opened = await openPlaintext(plain);
    plain.destroy();
    source.destroy();
    return opened.name === undefined ? undefined : safeName(opened.name);
  } catch {
    return undefined;
  }
}

export async function sha256Of(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}
