// `bitdrop names-proxy`: makes a tor the user already runs (Tor Browser's on 9151, a system tor on 9051) open
// .bit names. It sets __LeaveStreamsUnattached, so tor hands every new stream to us; a stream to *.bit is
// resolved and redirected to its onion (REDIRECTSTREAM, same port) and then attached; every other stream is
// attached at once as tor would have (ATTACHSTREAM id 0). A name that does not resolve closes its stream
// with RESOLVEFAILED, which the browser shows at once instead of hanging. Answers are cached for a short TTL.
// A name whose value lists mirrors (lib/mirrors: boxes keeping copies of its files under the same ids) falls
// back to them when its box does not answer: a stream sent to the box's onion that fails (or is given up)
// before it connects marks that onion down for a while, and the name's next streams go to its first mirror not marked down.
// On stop, the setting is put back; a guard process (see names-proxy-guard in bin/bitdrop.ts) puts it back
// if this process is killed outright, so tor never keeps waiting for a controller that is gone.

import { ControlPort, describeAddress, type ControlAddress, type Reply } from '../tor/control';

/** END_STREAM_REASON_RESOLVEFAILED (tor-spec 6.3): what a SOCKS client sees as "host unreachable". */
const REASON_RESOLVEFAILED = 2;

export interface NamesProxyOptions {
  control: ControlAddress;
  password?: string;
  /** domain → onion host (xxx.onion), or with the mirror onions its value lists; throws with a one-line reason */
  resolve: (domain: string) => Promise<string | { onion: string; mirrors?: string[] }>;
  ttlMs?: number;
  /** how long an onion that failed a stream is passed over for the name's mirrors (default 60 s) */
  downMs?: number;
  log: (line: string) => void;
}

interface Cached {
  onion?: string;
  mirrors?: string[];
  error?: string;
  until: number;
}

export class NamesProxy {
  private control?: ControlPort;
  private previous = '0';
  private readonly cache = new Map<string, Cached>();
  private stopping = false;
  /** streams sent to an onion, until they connect or fail: stream id → where they went */
  private readonly pending = new Map<string, { host: string; onion: string }>();
  /** onions that failed a stream before it connected → until when their names' mirrors are used instead */
  private readonly down = new Map<string, number>();

  constructor(private readonly o: NamesProxyOptions) {}

  /** The value of __LeaveStreamsUnattached before we changed it ("0" or "1"), for the guard. */
  get previousSetting(): string {
    return this.previous;
  }

  async start(): Promise<void> {
    const control = await ControlPort.connect(this.o.control);
    await control.authenticate(this.o.password);
    this.control = control;
    const reply = await control.command('GETCONF __LeaveStreamsUnattached');
    this.previous = /=(\S+)/.exec(reply.lines[0] ?? '')?.[1] ?? '0';
    control.on('event', (r: Reply) => this.onEvent(r));
    control.on('close', () => {
      if (!this.stopping) this.o.log(`names-proxy: lost the control connection to ${describeAddress(this.o.control)}`);
    });
    await control.command('SETEVENTS STREAM');
    await control.command('SETCONF __LeaveStreamsUnattached=1');
    this.o.log(`names-proxy: attached to tor at ${describeAddress(this.o.control)}; .bit names are resolved, everything else passes through`);
  }

  /** The attached tor's first TCP SocksPort (GETINFO net/listeners/socks): how lookups reach remote servers. */
  async socksListener(): Promise<{ host: string; port: number } | undefined> {
    if (!this.control) throw new Error('names-proxy: not attached to tor');
    return this.control.socksListener();
  }

  /** Puts tor back as it was: the setting restored, streams still waiting attached. */
  async stop(): Promise<void> {
    this.stopping = true;
    const control = this.control;
    if (!control || control.closed) return;
    try {
      await control.command(`SETCONF __LeaveStreamsUnattached=${this.previous}`);
      await control.command('SETEVENTS');
      await attachWaiting(control);
      this.o.log(`names-proxy: tor's __LeaveStreamsUnattached is back to ${this.previous}`);
    } finally {
      control.close();
    }
  }

  private onEvent(reply: Reply): void {
    for (const line of reply.lines) {
      const m = /^STREAM (\d+) (NEW|NEWRESOLVE) \d+ (\S+)/.exec(line);
      if (m) this.onStream(m[1], m[2], m[3]).catch((err) => this.o.log(`names-proxy: stream ${m[1]}: ${(err as Error).message}`));
      const end = /^STREAM (\d+) (SUCCEEDED|FAILED|CLOSED)\b(.*)$/.exec(line);
      if (end) this.onStreamEnd(end[1], end[2], end[3]);
    }
  }

  /** A stream we sent to an onion connected, or failed before it did: the onion is up, or down for a while. */
  private onStreamEnd(id: string, status: string, rest: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (status === 'SUCCEEDED') {
      this.down.delete(p.onion);
      return;
    }
    // FAILED, or CLOSED before it connected: the browser gave up waiting (a dead onion can take tor 120 s)
    const entry = this.cache.get(p.host);
    const next = entry?.onion ? this.pick(entry, p.onion) : undefined;
    this.down.set(p.onion, Date.now() + (this.o.downMs ?? 60_000));
    const reason = /REASON=(\S+)/.exec(rest)?.[1];
    this.o.log(`names-proxy: ${p.host} at ${p.onion} does not answer${reason ? ` (${reason})` : ''}` +
      (next && next !== p.onion ? `; its next streams go to its mirror ${next}` : ''));
  }

  /** The box's onion, or when it is down its first mirror not down (`failing`: about to be marked down). */
  private pick(entry: Cached, failing?: string): string {
    const now = Date.now();
    const up = (o: string) => o !== failing && !((this.down.get(o) ?? 0) > now);
    return [entry.onion!, ...(entry.mirrors ?? [])].find(up) ?? entry.onion!;
  }

  private async onStream(id: string, status: string, target: string): Promise<void> {
    const control = this.control!;
    const i = target.lastIndexOf(':');
    const host = (i > 0 ? target.slice(0, i) : target).toLowerCase();
    const port = i > 0 ? target.slice(i + 1) : '';
    if (!host.endsWith('.bit')) {
      await control.command(`ATTACHSTREAM ${id} 0`);
      return;
    }
    const answer = await this.lookup(host);
    if (answer.onion && status === 'NEW') {
      const onion = this.pick(answer);
      this.pending.set(id, { host, onion });
      await control.command(`REDIRECTSTREAM ${id} ${onion}${port ? ` ${port}` : ''}`);
      await control.command(`ATTACHSTREAM ${id} 0`);
      this.o.log(`names-proxy: ${host} → ${onion}${port ? ` port ${port}` : ''}${onion !== answer.onion ? ` (a mirror: ${answer.onion} does not answer)` : ''}`);
      return;
    }
    const why = answer.error ?? `${host} is an onion; a DNS lookup of it has no answer`;
    await control.command(`CLOSESTREAM ${id} ${REASON_RESOLVEFAILED}`);
    this.o.log(`names-proxy: ${host} not opened: ${why}`);
  }

  private async lookup(domain: string): Promise<Cached> {
    const now = Date.now();
    const hit = this.cache.get(domain);
    if (hit && hit.until > now) return hit;
    let entry: Cached;
    try {
      const r = await this.o.resolve(domain);
      entry = typeof r === 'string' ? { onion: r, until: now + (this.o.ttlMs ?? 60_000) } : { onion: r.onion, mirrors: r.mirrors ?? [], until: now + (this.o.ttlMs ?? 60_000) };
    } catch (err) {
      // failures are kept briefly too, so a page's many requests for an unknown name fail alike and fast
      entry = { error: (err as Error).message, until: now + Math.min(this.o.ttlMs ?? 60_000, 10_000) };
    }
    this.cache.set(domain, entry);
    return entry;
  }
}

/** Attaches every stream tor holds for a controller (status NEW), as tor would have. */
export async function attachWaiting(control: ControlPort): Promise<number> {
  const list = await control.getInfo('stream-status');
  let n = 0;
  for (const line of list.split('\n')) {
    const m = /^(\d+) (NEW) /.exec(line.trim());
    if (!m) continue;
    await control.command(`ATTACHSTREAM ${m[1]} 0`).catch(() => undefined);
    n++;
  }
  return n;
}

/**
 * The guard: waits for the proxy process `pid` to end; if it ended without restoring tor (killed), connects
 * and puts __LeaveStreamsUnattached back to `previous`, attaching the streams left waiting.
 */
export async function guardProxy(pid: number, control: ControlAddress, previous: string, password: string | undefined, log: (line: string) => void): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  while (alive()) await new Promise((r) => setTimeout(r, 200));
  const port = await ControlPort.connect(control);
  try {
    await port.authenticate(password);
    const reply = await port.command('GETCONF __LeaveStreamsUnattached');
    if (/=1/.test(reply.lines[0] ?? '') && previous !== '1') {
      await port.command(`SETCONF __LeaveStreamsUnattached=${previous}`);
      const n = await attachWaiting(port);
      log(`names-proxy guard: the proxy (pid ${pid}) ended without restoring tor; __LeaveStreamsUnattached is back to ${previous}, ${n} waiting streams attached`);
    }
  } finally {
    port.close();
  }
}
