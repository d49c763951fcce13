// Mirrors: other drop boxes that keep copies of this one's files. A bitdrop is already a paid storage service
// anyone can use, so this box is simply another's customer: it uploads its active files to each --mirror
// (through tor for onions and .bit names), pays the copy's address from the operating wallet so that it stays
// paid through the same date as the original — at most 30 days ahead, topped up as time passes (a free mirror
// is used without paying) — and lists the copies
// on the file's page, JSON (`mirrors`) and X-Mirrors header once they are downloadable there.
//
// Audits: each copy is checked at random times — a random byte range is fetched and compared with our own
// chunks; at most --mirror-audit passes between two audits of a copy. A range is 64 B to 4 KiB, sized so
// that audits fetch at most 0.5 % of the mirrored bytes a day (64 B ranges aside: files under 100 KiB with
// the default 6 h interval). A mirror that loses a file,
// answers false bytes, fails three audits in a row or raises its storage price above --mirror-max-price is
// dropped: never paid again, no longer listed, and named in the log and the console.
//
// State (lib/store/layout.ts): M[mirror, id] one copy; R[mirror] a mirror's prices and whether it was dropped.
// Payments are wallet spends with the purpose "mirror|URL|id|n" (n: the copy's payments so far), so a crash
// anywhere between paying and recording the copy never pays twice (lib/wallet).

import crypto from 'crypto';
import type { Store, FileManifest } from '../store';
import { layout, PREFIX } from '../store/layout';
import { activationAmount, DAY_MS, GiB, payable, storageCost, storageTime, transferCost, type Prices } from '../ledger/pricing';
import { InsufficientFunds, SpendLimitError, type Wallet } from '../wallet';
import { jsonOf, mirrorRequest, mirrorStream } from './http';

export { candidateUrls, fetchCandidateUrls, parseMirrorsHeader } from './candidates';
export { valueWithMirrors } from './name-value';
export { originOf } from './origin';

/** What the node tells us of a local file's account. */
export interface FileState {
  active: boolean;
  /** ms; undefined when storage costs nothing here */
  paidThrough?: number;
  /** bytes sent from the file's account (downloads) */
  sentBytes?: number;
}

export interface MirrorCopy {
  mirror: string;
  id: string;
  remoteId: string;
  url: string;
  address?: string;
  amountDue?: number;
  deleteToken: string;
  size: number;
  sha256: string;
  created: number;
  free: boolean;
  payments: Array<{ purpose: string; txid: string; sats: number; through: number }>;
  /** paid through (ms) as far as our payments go */
  through?: number;
  /** downloadable there (a HEAD answered 200) */
  live: boolean;
  audits: { passed: number; lastAt?: number };
}

export interface MirrorState {
  url: string;
  storagePrice?: number;
  transferPrice?: number;
  free?: boolean;
  dropped?: { at: number; why: string };
  /** good downloads proxied from it (the CDN redirects to it after CDN_TRUST) */
  cdnGood?: number;
}

export interface MirrorsOptions {
  urls: string[];
  /** all, or downloads>=N */
  policy: string;
  store: Store;
  wallet?: Wallet;
  fileState: (m: FileManifest) => Promise<FileState>;
  /** this box's own URL (its onion): copies are sent as copies of `<origin>/<id>`, to keep the id there */
  origin?: () => string | undefined;
  /** tor's SocksPort HOST:PORT (onion and .bit mirrors) */
  socks?: () => string | undefined;
  syncEveryMs: number;
  auditEveryMs: number;
  maxPrice: number;
  /** CDN: the share of whole-file downloads (percent) served through mirrors */
  cdnShare?: number;
  /** CDN: above this many downloads in flight here, downloads are served through mirrors (0: never) */
  cdnOver?: number;
  log: (line: string) => void;
  clock?: () => number;
}

/** most bytes one audit fetches */
export const AUDIT_BYTES = 4096;
/** fewest bytes one audit fetches (or the whole file when smaller) */
const AUDIT_MIN_BYTES = 64;
/** audits may fetch at most this share of the mirrored bytes per day */
export const AUDIT_SHARE = 0.005;
/** good proxied downloads from a mirror before downloads are redirected to it */
export const CDN_TRUST = 3;
/** consecutive failed audits (unreachable, odd answers) before a mirror is dropped */
const STRIKES = 3;
/** a mirror is paid at most this far ahead (the original may be paid for years) */
const MAX_AHEAD_MS = 30 * DAY_MS;
/** a copy paid through less than this ahead is topped up */
const TOP_UP_WHEN_MS = 15 * DAY_MS;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

export class Mirrors {
  private readonly copies = new Map<string, Map<string, MirrorCopy>>();
  private readonly states = new Map<string, MirrorState>();
  private readonly strikes = new Map<string, number>();
  private readonly nextAudit = new Map<string, number>();
  private readonly clock: () => number;
  private running = false;
  private syncTimer?: NodeJS.Timeout;
  private auditTimer?: NodeJS.Timeout;
  private syncing?: Promise<void>;
  private auditing?: Promise<void>;
  private readonly said = new Set<string>();
  readonly stats = { audits: 0, auditFailures: 0, auditBytes: 0, uploads: 0, paidSats: 0, spendLimited: 0 };

  constructor(private readonly o: MirrorsOptions) {
    this.clock = o.clock ?? Date.now;
  }

  async start(): Promise<void> {
    const db = this.o.store.db;
    for (const url of this.o.urls) {
      const v = await db.get(layout.mirror(url));
      this.states.set(url, v ? JSON.parse(v.toString()) : { url });
    }
    for await (const v of db.values(layout.range(PREFIX.mirrorCopy))) {
      const c = JSON.parse(v.toString()) as MirrorCopy;
      this.index(c);
    }
    this.running = true;
    for (const s of this.states.values()) if (s.dropped) this.o.log(`mirrors   ${s.url} was dropped on ${new Date(s.dropped.at).toISOString()} (${s.dropped.why}); not used`);
    this.kickSync();
    this.syncTimer = setInterval(() => this.kickSync(), this.o.syncEveryMs);
    this.syncTimer.unref();
    const tick = Math.min(60_000, Math.max(100, Math.floor(this.o.auditEveryMs / 20)));
    this.auditTimer = setInterval(() => this.kickAudits(), tick);
    this.auditTimer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.syncTimer);
    clearInterval(this.auditTimer);
    // a large upload over tor may take minutes: a stop waits a moment, not for it (the store refuses its write)
    const moment = new Promise<void>((r) => setTimeout(r, 3000).unref());
    await Promise.race([Promise.all([this.syncing, this.auditing]), moment]);
  }

  private index(c: MirrorCopy) {
    let m = this.copies.get(c.id);
    if (!m) this.copies.set(c.id, (m = new Map()));
    m.set(c.mirror, c);
  }

  private async save(c: MirrorCopy): Promise<void> {
    this.index(c);
    await this.o.store.write([{ type: 'put', key: layout.mirrorCopy(c.mirror, c.id), value: json(c) }], { sync: true });
  }

  private async saveState(s: MirrorState): Promise<void> {
    this.states.set(s.url, s);
    await this.o.store.write([{ type: 'put', key: layout.mirror(s.url), value: json(s) }], { sync: true });
  }

  /** the mirrors not dropped */
  inUse(): string[] {
    return this.o.urls.filter((u) => !this.dropped(u));
  }

  private dropped(mirror: string): boolean {
    return !!this.states.get(mirror)?.dropped;
  }

  /** The copies of a file that are downloadable now, on mirrors not dropped. */
  links(id: string): Array<{ url: string; mirror: string; paidThrough: string | null; since: string }> {
    const m = this.copies.get(id);
    if (!m) return [];
    return [...m.values()]
      .filter((c) => c.live && this.states.has(c.mirror) && !this.dropped(c.mirror))
      .map((c) => ({ url: c.url, mirror: c.mirror, paidThrough: c.free || c.through === undefined ? null : new Date(c.through).toISOString(), since: new Date(c.created).toISOString() }));
  }

  /** Says a thing once until it changes (a sync every few minutes must not repeat the same line). */
  private sayOnce(key: string, line: string) {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.o.log(line);
  }

  kickSync(): Promise<void> {
    if (!this.running) return Promise.resolve();
    this.syncing ??= (async () => {
      for (const url of this.o.urls) {
        if (!this.running) break;
        if (this.dropped(url)) continue;
        await this.syncMirror(url).catch((err) => this.sayOnce(`sync ${url} ${err.message}`, `mirrors   ${url}: ${(err as Error).message}`));
      }
    })().finally(() => { this.syncing = undefined; });
    return this.syncing;
  }

  private matches(m: FileManifest, st: FileState): boolean {
    if (!st.active) return false;
    const n = /^downloads>=(\d+)$/.exec(this.o.policy);
    return !n || (st.sentBytes ?? 0) >= Number(n[1]) * Math.max(1, m.size);
  }

  private async syncMirror(url: string): Promise<void> {
    const facts = jsonOf(await mirrorRequest(`${url}/`, { headers: { Accept: 'application/json' }, socks: this.o.socks?.(), timeoutMs: 60_000 }));
    if (facts.service !== 'bitdrop') throw new Error('does not answer as a bitdrop (GET / with Accept: application/json)');
    const prices: Prices = { storagePrice: Number(facts.storagePrice) || 0, transferPrice: Number(facts.transferPrice) || 0 };
    const state = { ...this.states.get(url)!, storagePrice: prices.storagePrice, transferPrice: prices.transferPrice, free: facts.free === true };
    if (prices.storagePrice > this.o.maxPrice) {
      return this.drop(url, `it asks ${prices.storagePrice} sats per GiB per day, above --mirror-max-price ${this.o.maxPrice}`);
    }
    await this.saveState(state);
    for await (const m of this.o.store.manifests()) {
      if (!this.running || this.dropped(url)) return;
      const st = await this.o.fileState(m);
      if (!this.matches(m, st)) continue;
      let copy = this.copies.get(m.id)?.get(url);
      if (!copy) {
        copy = await this.upload(url, m).catch((err) => {
          this.sayOnce(`upload ${url} ${m.id}`, `mirrors   ${url}: uploading ${m.id} failed: ${(err as Error).message}`);
          return undefined;
        });
        if (!copy) continue;
      }
      if (!copy.free) await this.pay(copy, st, prices);
      if (!copy.live) await this.checkLive(copy);
    }
    await this.forgetDeleted(url);
  }

  private async upload(mirror: string, m: FileManifest): Promise<MirrorCopy> {
    const res = await mirrorRequest(`${mirror}/${encodeURIComponent(m.name)}`, {
      method: 'PUT',
      headers: {
        Accept: 'application/json', 'Content-Length': m.size, 'Content-Type': m.type,
        ...(this.o.origin?.() ? { 'X-Bitdrop-Copy-Of': `${this.o.origin!()}/${m.id}` } : {}),
      },
      body: this.o.store.read(m),
      socks: this.o.socks?.(),
      timeoutMs: 10 * 60_000,
    });
    const a = jsonOf(res);
    if (res.status !== 201 || typeof a.url !== 'string' || typeof a.id !== 'string' || typeof a.deleteToken !== 'string') {
      throw new Error(`HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200).trim()}`);
    }
    if (a.sha256 !== m.sha256) throw new Error(`it stored ${a.sha256} for ${m.sha256}`);
    const copy: MirrorCopy = {
      mirror, id: m.id, remoteId: a.id, url: a.url, deleteToken: a.deleteToken, size: m.size, sha256: m.sha256, created: this.clock(),
      address: typeof a.address === 'string' ? a.address : undefined,
      amountDue: typeof a.amountDue === 'number' ? a.amountDue : undefined,
      free: typeof a.address !== 'string', payments: [], live: false, audits: { passed: 0 },
    };
    await this.save(copy);
    this.stats.uploads++;
    this.o.log(`mirrors   ${m.id} copied to ${mirror}: ${copy.url}${copy.free ? ' (a free mirror)' : ` (pay ${copy.address})`}`);
    return copy;
  }

  /**
   * Pays the copy's address so that it stays paid through the original's date — at most MAX_AHEAD_MS ahead,
   * topped up as time passes (a mirror that vanishes takes at most that much prepaid storage with it).
   * Each payment has its number in the purpose, so it is made at most once.
   */
  private async pay(copy: MirrorCopy, st: FileState, prices: Prices): Promise<void> {
    const now = this.clock();
    const target = Math.min(st.paidThrough ?? Infinity, now + MAX_AHEAD_MS);
    // the audits' downloads are paid too: ≤ AUDIT_BYTES about twice per audit interval
    const audits = (ms: number) => transferCost(this.auditLength(copy.size) * 2 * Math.ceil(ms / this.o.auditEveryMs), prices);
    let sats: number;
    let from: number;
    let overhead: number;
    if (copy.payments.length === 0) {
      const ms = Math.max(DAY_MS, target - now);
      from = now;
      overhead = transferCost(copy.size, prices) + audits(ms);
      sats = Math.max(activationAmount(copy.size, prices), storageCost(copy.size, ms, prices) + overhead, copy.amountDue ?? 0);
    } else if (copy.through !== undefined && copy.through < now + TOP_UP_WHEN_MS && target > copy.through + DAY_MS) {
      from = copy.through;
      overhead = audits(target - copy.through);
      sats = storageCost(copy.size, target - copy.through, prices) + overhead;
    } else {
      return;
    }
    sats = Math.max(payable(sats), 330);
    const wallet = this.o.wallet;
    if (!wallet || !copy.address) {
      this.sayOnce(`nowallet ${copy.mirror}`, `mirrors   ${copy.mirror} asks to be paid, but this bitdrop has no operating wallet (it needs payments on: --xpub and --electrum, or the devnet); its copies stay unpaid`);
      return;
    }
    const purpose = `mirror|${copy.mirror}|${copy.id}|${copy.payments.length}`;
    try {
      const rec = await wallet.spend({ purpose, to: copy.address, sats, about: { kind: 'mirror', mirror: copy.mirror, file: copy.id, copy: copy.url, through: new Date(target).toISOString() } });
      if (rec.state === 'failed') return;
      // what was paid may buy more than the target (the 546-sat minimum buys years for a small file)
      const through = from + Math.min(storageTime(Math.max(0, rec.sats - overhead), copy.size, prices), 100 * 365 * DAY_MS);
      copy.payments.push({ purpose, txid: rec.txid, sats: rec.sats, through: Math.max(target, through) });
      copy.through = Math.max(target, through);
      await this.save(copy);
      this.stats.paidSats += rec.sats;
      this.said.delete('limit');
    } catch (err) {
      if (err instanceof SpendLimitError || err instanceof InsufficientFunds) {
        this.stats.spendLimited++;
        this.sayOnce(err instanceof SpendLimitError ? 'limit' : 'funds', `mirrors   not paying ${copy.mirror} for ${copy.id}: ${err.message}`);
        return;
      }
      throw err;
    }
  }

  private async checkLive(copy: MirrorCopy): Promise<void> {
    const res = await mirrorRequest(copy.url, { method: 'HEAD', socks: this.o.socks?.(), timeoutMs: 60_000 }).catch(() => undefined);
    if (res?.status !== 200) return;
    copy.live = true;
    await this.save(copy);
    this.nextAudit.set(`${copy.mirror}\0${copy.id}`, this.clock() + Math.random() * this.o.auditEveryMs);
    this.o.log(`mirrors   ${copy.id} is downloadable from ${copy.mirror}: ${copy.url}`);
  }

  /** Copies of files deleted here: deleted at the mirror too (with their token) and forgotten. */
  private async forgetDeleted(mirror: string): Promise<void> {
    for (const [id, m] of this.copies) {
      const c = m.get(mirror);
      if (!c || (await this.o.store.get(id))) continue;
      await mirrorRequest(c.url.replace(/\/[^/]*$/, ''), { method: 'DELETE', headers: { 'X-Delete-Token': c.deleteToken }, socks: this.o.socks?.() }).catch(() => undefined);
      m.delete(mirror);
      await this.o.store.write([{ type: 'del', key: layout.mirrorCopy(mirror, id) }], { sync: true });
    }
  }

  private async drop(mirror: string, why: string): Promise<void> {
    const s = this.states.get(mirror) ?? { url: mirror };
    if (s.dropped) return;
    await this.saveState({ ...s, dropped: { at: this.clock(), why } });
    this.o.log(`mirrors   DROPPED ${mirror}: ${why}; it is no longer paid or listed`);
  }

  // ---- CDN --------------------------------------------------------------------------------------------------

  /**
   * Whether a download goes through a mirror: when more than --mirror-cdn-over downloads are in flight here, or
   * for --mirror-cdn percent of them. Proxied until the mirror has CDN_TRUST good proxied downloads, then
   * redirected.
   */
  cdnPick(id: string, downloadsInFlight: number): { url: string; mirror: string; redirect: boolean } | undefined {
    const over = this.o.cdnOver ?? 0;
    const share = this.o.cdnShare ?? 0;
    const loaded = over > 0 && downloadsInFlight > over;
    if (!loaded && !(share > 0 && Math.random() * 100 < share)) return undefined;
    const links = this.links(id);
    if (links.length === 0) return undefined;
    const l = links[crypto.randomInt(links.length)];
    const good = this.states.get(l.mirror)?.cdnGood ?? 0;
    return { url: l.url, mirror: l.mirror, redirect: good >= CDN_TRUST };
  }

  cdnOpen(url: string) {
    return mirrorStream(url, { socks: this.o.socks?.(), timeoutMs: 120_000 });
  }

  cdnResult(id: string, mirror: string, ok: boolean, why?: string): void {
    const s = this.states.get(mirror);
    if (!s || s.dropped) return;
    if (ok) {
      const good = (s.cdnGood ?? 0) + 1;
      void this.saveState({ ...s, cdnGood: good }).catch(() => undefined);
      if (good === CDN_TRUST) this.o.log(`mirrors   ${CDN_TRUST} good downloads of ${mirror} proxied: downloads sent there are redirected from now on`);
      return;
    }
    const c = this.copies.get(id)?.get(mirror);
    if (why && /false bytes|more bytes/.test(why)) void this.drop(mirror, `CDN: ${why}`);
    else if (c) void this.strike(c, `CDN: ${why}`);
  }

  // ---- audits ---------------------------------------------------------------------------------------------

  kickAudits(): Promise<void> {
    if (!this.running) return Promise.resolve();
    this.auditing ??= (async () => {
      const now = this.clock();
      for (const m of this.copies.values()) {
        for (const c of m.values()) {
          if (!this.running) return;
          if (!c.live || this.dropped(c.mirror) || !this.states.has(c.mirror) || c.size === 0) continue;
          const k = `${c.mirror}\0${c.id}`;
          const due = this.nextAudit.get(k) ?? now + Math.random() * this.o.auditEveryMs;
          this.nextAudit.set(k, due);
          if (due > now) continue;
          // the next audit at a random time within the interval: a mirror cannot know when it is looked at
          this.nextAudit.set(k, now + Math.random() * this.o.auditEveryMs);
          await this.audit(c);
        }
      }
    })().catch((err) => this.o.log(`mirrors   audit: ${(err as Error).message}`)).finally(() => { this.auditing = undefined; });
    return this.auditing;
  }

  /** Fetches a random range of the copy and compares it with our own bytes. */
  async audit(c: MirrorCopy): Promise<boolean> {
    const m = await this.o.store.get(c.id);
    if (!m) return true;
    const len = this.auditLength(m.size);
    const start = crypto.randomInt(0, m.size - len + 1);
    const end = start + len - 1;
    this.stats.audits++;
    let res;
    try {
      res = await mirrorRequest(c.url, { headers: { Range: `bytes=${start}-${end}` }, socks: this.o.socks?.(), timeoutMs: 120_000, maxBody: len + 1 });
    } catch (err) {
      return this.strike(c, `unreachable (${(err as Error).message})`);
    }
    this.stats.auditBytes += res.body.length;
    if (res.status === 404 || res.status === 410) return this.fail(c, `lost ${c.id} (HTTP ${res.status} for ${c.url})`);
    if (res.status === 402) {
      if (c.through !== undefined && c.through > this.clock() + 3_600_000) return this.fail(c, `asks to be paid again for ${c.id}, paid through ${new Date(c.through).toISOString()}`);
      return this.strike(c, `asks payment for ${c.id} (HTTP 402)`);
    }
    if (res.status !== 206 && !(res.status === 200 && len === m.size)) return this.strike(c, `answered HTTP ${res.status} to a range request`);
    const ours = await readAll(this.o.store.read(m, start, end));
    if (!ours.equals(res.body)) return this.fail(c, `answered false bytes for ${c.id} (bytes ${start}-${end} differ from ours)`);
    this.strikes.delete(c.mirror);
    c.audits = { passed: c.audits.passed + 1, lastAt: this.clock() };
    await this.save(c);
    return true;
  }

  /**
   * Bytes an audit of a file of `size` fetches: ≤ AUDIT_SHARE of the file per day at about two audits per
   * interval, between AUDIT_MIN_BYTES and AUDIT_BYTES. A random range of even 64 bytes is a range the
   * mirror cannot answer without the file.
   */
  auditLength(size: number): number {
    const perDay = 2 * (DAY_MS / this.o.auditEveryMs);
    return Math.min(size, Math.max(AUDIT_MIN_BYTES, Math.min(AUDIT_BYTES, Math.floor((size * AUDIT_SHARE) / perDay))));
  }

  private async fail(c: MirrorCopy, why: string): Promise<boolean> {
    this.stats.auditFailures++;
    await this.drop(c.mirror, `audit: ${why}`);
    return false;
  }

  private async strike(c: MirrorCopy, why: string): Promise<boolean> {
    this.stats.auditFailures++;
    const n = (this.strikes.get(c.mirror) ?? 0) + 1;
    this.strikes.set(c.mirror, n);
    if (n >= STRIKES) await this.drop(c.mirror, `audit: ${why}, ${n} audits in a row`);
    else this.o.log(`mirrors   audit of ${c.id} at ${c.mirror} failed (${n} of ${STRIKES} before it is dropped): ${why}`);
    return false;
  }

  /** What the console shows: each mirror, and what audits cost. */
  status() {
    const mirrors = this.o.urls.map((url) => {
      const s = this.states.get(url) ?? { url };
      const copies = [...this.copies.values()].map((m) => m.get(url)).filter((c): c is MirrorCopy => !!c);
      return {
        url,
        state: s.dropped ? 'dropped' : 'in use',
        ...(s.dropped ? { dropped: new Date(s.dropped.at).toISOString(), why: s.dropped.why } : {}),
        storagePrice: s.storagePrice ?? null,
        transferPrice: s.transferPrice ?? null,
        files: copies.length,
        live: copies.filter((c) => c.live).length,
        bytes: copies.reduce((n, c) => n + c.size, 0),
        paidSats: copies.reduce((n, c) => n + c.payments.reduce((x, p) => x + p.sats, 0), 0),
        auditsPassed: copies.reduce((n, c) => n + c.audits.passed, 0),
      };
    });
    // a copy is audited about twice per interval (uniformly random gaps); HTTP headers (~0.5 KB) not counted
    const live = [...this.copies.values()].flatMap((m) => [...m.values()]).filter((c) => c.live && !this.dropped(c.mirror));
    const bytes = live.reduce((n, c) => n + c.size, 0);
    const perDay = live.reduce((n, c) => n + this.auditLength(c.size), 0) * 2 * (DAY_MS / this.o.auditEveryMs);
    return {
      mirrors,
      policy: this.o.policy,
      auditEvery: this.o.auditEveryMs,
      auditBytesPerGiBPerDay: bytes ? Math.round((perDay * GiB) / bytes) : 0,
      ...this.stats,
    };
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const d of stream) parts.push(d as Buffer);
  return Buffer.concat(parts);
}
