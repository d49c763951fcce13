// The house's one Electrum protocol client: newline-delimited JSON-RPC 2.0 over TCP or TLS, optionally via
// SOCKS5 (Tor). `ElectrumConnection` is one session (the devnet wallet and tests use it directly);
// `ElectrumClient` keeps one open for the daemon (handshake, ping, reconnect, failover).
//
// Why our own instead of electrum-client 0.0.6: that package never settles requests in flight when the socket
// dies (they hang forever), has no request timeout, no reconnect, no failover, no SOCKS and no certificate
// pinning, and swallows socket errors. The protocol itself is tiny (ElectrumX "protocol-basics"): one JSON
// object per line, `server.version` first, notifications are messages with `method` and no `id`. Owning it
// lets every failure end in exactly one place (`ElectrumConnection.close`), which rejects what is pending and reconnects.
//
// Server URLs:  tcp://host:port   ssl://host:port   ssl://host:port#sha256=<64 hex, colons allowed>
// The #sha256 pin is for the many Electrum servers with self-signed certificates: the certificate must hash to
// the pin (SHA-256 of its DER, as `openssl x509 -noout -fingerprint -sha256` prints it); CA checks are skipped.
// Without a pin ssl:// uses Node's normal CA and hostname checks.

import { EventEmitter } from 'events';
import net from 'net';
import tls from 'tls';
import { SocksClient } from 'socks';
import { takeLines } from '../net/lines';
import { isLoopback } from '../config';

export interface ElectrumServer {
  url: string;
  protocol: 'tcp' | 'ssl';
  host: string;
  port: number;
  /** lowercase hex SHA-256 of the server certificate (DER), no colons */
  pin?: string;
}

export interface ElectrumOptions {
  servers: string[];
  /** Tor's SOCKS port; when set every connection goes through it and hostnames are resolved by Tor */
  socks?: { host: string; port: number };
  /** allow direct connections to non-loopback hosts (outside Tor) */
  clearnet: boolean;
  clientName?: string;
  /** per request; a server that stalls this long is dropped */
  timeoutMs?: number;
  /** TCP + TLS + SOCKS + server.version; Tor circuits to onion services can take a while */
  connectTimeoutMs?: number;
  /** server.ping period; ElectrumX drops sessions idle for 600 s */
  pingIntervalMs?: number;
  /** reconnect delay grows from minMs to maxMs (×2 per failed attempt, ±50% jitter) */
  backoff?: { minMs: number; maxMs: number };
  log?: (line: string) => void;
}

/** An error the server answered with (JSON-RPC `error`), as opposed to a transport failure. */
export class ElectrumRpcError extends Error {
  constructor(message: string, readonly code: number | undefined) {
    super(message);
  }
}

export function parseServer(url: string): ElectrumServer {
  const m = /^(tcp|ssl):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\[\]#]+):(\d{1,5})(?:#sha256=([0-9a-fA-F:]+))?$/.exec(url.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new Error(`electrum server "${url}": expected tcp://HOST:PORT, ssl://HOST:PORT or ssl://HOST:PORT#sha256=FINGERPRINT`);
  }
  const pin = m[4]?.replace(/:/g, '').toLowerCase();
  if (pin !== undefined && (m[1] !== 'ssl' || pin.length !== 64)) {
    throw new Error(`electrum server "${url}": #sha256= needs ssl:// and 64 hex digits (openssl x509 -noout -fingerprint -sha256)`);
  }
  return { url: url.trim(), protocol: m[1] as 'tcp' | 'ssl', host: m[2].replace(/^\[|\]$/g, ''), port, pin };
}

/** The clearnet guard: without a proxy only loopback servers are allowed unless clearnet is. */
export function checkRoute(server: ElectrumServer, opts: { socks?: unknown; clearnet: boolean }): void {
  if (!opts.socks && !opts.clearnet && !isLoopback(server.host)) {
    throw new Error(`electrum server ${server.url} is not on this machine and Tor is off; refusing a clearnet connection (use tor, or --clearnet to allow it)`);
  }
}

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const MAX_BUFFER = 32 * 1024 * 1024; // a hostile server must not grow our memory without bound

/** How to reach a server: through Tor's SOCKS port or directly (loopback only, unless clearnet). */
export interface DialOptions {
  socks?: { host: string; port: number };
  /** allow direct connections to non-loopback hosts (outside Tor); default false */
  clearnet?: boolean;
  /** per request; a server that stalls this long is dropped (default 30 s) */
  timeoutMs?: number;
  /** TCP + TLS + SOCKS (default 30 s) */
  connectTimeoutMs?: number;
}

/**
 * One connected socket to one server: the whole protocol client for a single session. ElectrumClient keeps one
 * of these open (reconnect, failover, ping); the devnet wallet and tests use one directly.
 * Closes exactly once; closing rejects everything pending. Events: 'notification' (method, params),
 * 'unmatched' (a message that answers no request in flight, e.g. the server's reply to a malformed line),
 * 'close' (reason).
 */
export class ElectrumConnection extends EventEmitter {
  private nextId = 0;
  private corked = false;
  private pending = new Map<number, Pending>();
  private buffer = '';
  closed = false;
  software = '';
  readonly done: Promise<string>;
  private finish!: (reason: string) => void;

  constructor(
    readonly server: ElectrumServer,
    private socket: net.Socket,
    private timeoutMs = 30_000,
  ) {
    super();
    this.done = new Promise((r) => (this.finish = r));
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.close(err.message));
    socket.on('close', () => this.close('connection closed'));
  }

  /** Dials `url` (tcp://, ssl://, ssl://…#sha256=) and returns the open connection; no handshake is sent. */
  static async connect(url: string | ElectrumServer, opts: DialOptions = {}): Promise<ElectrumConnection> {
    const server = typeof url === 'string' ? parseServer(url) : url;
    const o = { clearnet: false, connectTimeoutMs: 30_000, ...opts };
    checkRoute(server, o);
    const deadline = o.connectTimeoutMs;
    const raw = await withTimeout(dial(server, o), deadline, `connect timed out after ${deadline} ms`).catch((err) => {
      throw new Error(`cannot reach the Electrum server at ${server.url}: ${(err as Error).message}`);
    });
    let socket: net.Socket = raw;
    if (server.protocol === 'ssl') {
      socket = await withTimeout(tlsUpgrade(raw, server), deadline, `TLS handshake timed out after ${deadline} ms`).catch((err) => {
        raw.destroy();
        throw err;
      });
    }
    return new ElectrumConnection(server, socket, o.timeoutMs);
  }

  request<T = unknown>(method: string, params: unknown[] = [], timeoutMs = this.timeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`not connected to ${this.server.url}`));
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A stalled server is as good as gone: drop it so the client reconnects or fails over.
        this.close(`${method} got no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer });
      // Requests made in the same tick go out in one write: a group commit answers up to 32 uploads at
      // once, and each new address is one subscription (one syscall each, before).
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      this.socket.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  /** Sends a raw line as is (tests use it for malformed input). */
  writeRaw(line: string): void {
    if (!this.closed) this.socket.write(line);
  }

  close(reason = 'closed by us'): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`${p.method} failed: ${reason} (${this.server.url})`));
    }
    this.pending.clear();
    this.finish(reason);
    this.emit('close', reason);
  }

  private onData(chunk: string): void {
    const { lines, rest } = takeLines(this.buffer, chunk);
    this.buffer = rest;
    for (const line of lines) {
      this.onLine(line);
      if (this.closed) return;
    }
    if (this.buffer.length > MAX_BUFFER) this.close('server sent an over-long line');
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return this.close('server sent invalid JSON');
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) this.onMessage(m as Record<string, unknown>);
  }

  private onMessage(m: Record<string, unknown>): void {
    if (m === null || typeof m !== 'object') return this.close('server sent a non-object message');
    if (typeof m.method === 'string' && m.id === undefined) {
      this.emit('notification', m.method, Array.isArray(m.params) ? m.params : []);
      return;
    }
    const p = this.pending.get(m.id as number);
    if (!p) {
      this.emit('unmatched', m); // e.g. a late answer to a request we already gave up on
      return;
    }
    this.pending.delete(m.id as number);
    clearTimeout(p.timer);
    if (m.error) {
      const e = m.error as { message?: string; code?: number };
      p.reject(new ElectrumRpcError(`${p.method}: ${e.message ?? JSON.stringify(m.error)}`, e.code));
    } else {
      p.resolve(m.result);
    }
  }
}

async function dial(server: ElectrumServer, o: DialOptions & { connectTimeoutMs: number }): Promise<net.Socket> {
  // A server on this machine is dialled directly: tor refuses loopback destinations, and nothing leaves.
  if (o.socks && !isLoopback(server.host)) {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: o.socks.host, port: o.socks.port, type: 5 },
      command: 'connect',
      // the hostname goes to the proxy unresolved: no DNS leak, and .onion works
      destination: { host: server.host, port: server.port },
      timeout: o.connectTimeoutMs,
    });
    return socket;
  }
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: server.host, port: server.port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function tlsUpgrade(raw: net.Socket, server: ElectrumServer): Promise<tls.TLSSocket> {
  raw.on('error', () => {}); // the TLS socket on top reports the failure; this keeps it from being "unhandled"
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      socket: raw,
      servername: net.isIP(server.host) ? undefined : server.host,
      // with a pin the pin is the trust anchor (self-signed certificates are the norm among Electrum servers);
      // an onion address is itself the server's key, which tor checks, so no CA is asked to vouch for it
      rejectUnauthorized: !server.pin && !server.host.toLowerCase().endsWith('.onion'),
    });
    s.once('secureConnect', () => {
      s.off('error', reject);
      if (server.pin) {
        const got = s.getPeerCertificate().fingerprint256?.replace(/:/g, '').toLowerCase();
        if (got !== server.pin) {
          s.destroy();
          return reject(new Error(`certificate fingerprint ${got} does not match the pinned ${server.pin}`));
        }
      }
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Keeps one session to one of `servers` open: connect, handshake, ping, and on any failure reconnect
 * (same server once, then the next one) with exponential backoff and jitter.
 * Events: 'connected' (url, serverSoftware), 'disconnected' (url, reason),
 * 'notification' (method, params) and one event per notification method, e.g. 'blockchain.headers.subscribe' (params).
 */
export class ElectrumClient extends EventEmitter {
  readonly servers: ElectrumServer[];
  private session?: ElectrumConnection;
  private running = false;
  private wake?: () => void;
  private loop?: Promise<void>;
  private pingTimer?: NodeJS.Timeout;
  /** servers caught lying, and until when they are left out of the rotation */
  private readonly dropped = new Map<string, number>();
  private readonly o: Required<Omit<ElectrumOptions, 'socks'>> & Pick<ElectrumOptions, 'socks'>;

  constructor(opts: ElectrumOptions) {
    super();
    this.o = {
      clientName: 'bitdrop',
      timeoutMs: 30_000,
      connectTimeoutMs: 30_000,
      pingIntervalMs: 60_000,
      backoff: { minMs: 1000, maxMs: 60_000 },
      log: () => {},
      ...opts,
    };
    if (opts.servers.length === 0) throw new Error('no electrum server configured (--electrum tcp://HOST:PORT)');
    this.servers = opts.servers.map(parseServer);
    for (const s of this.servers) checkRoute(s, opts);
  }

  get connected(): boolean {
    return !!this.session && !this.session.closed;
  }

  get server(): string | undefined {
    return this.connected ? this.session!.server.url : undefined;
  }

  /** Starts connecting. Resolves once connected, or once every server has failed once (we keep trying). */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    return new Promise((firstRound) => {
      this.loop = this.run(firstRound);
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    this.session?.close('client stopped');
    this.wake?.();
    await this.loop;
  }

  /** Resolves when a session is up (now or later); rejects after timeoutMs. */
  whenConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('connected', ok);
        reject(new Error(`no electrum server reachable within ${timeoutMs} ms`));
      }, timeoutMs);
      const ok = () => {
        clearTimeout(t);
        resolve();
      };
      this.once('connected', ok);
    });
  }

  /** One request on the current session. Rejects at once when disconnected: callers redo work on 'connected'. */
  request<T = unknown>(method: string, params: unknown[] = [], timeoutMs?: number): Promise<T> {
    const s = this.session;
    if (!s || s.closed) return Promise.reject(new Error(`${method}: not connected to any electrum server`));
    return s.request(method, params, timeoutMs) as Promise<T>;
  }

  /**
   * The current server said something false (a header or proof that does not check): close its session, name
   * it in the log, and leave it out of the rotation for `forMs`. With no other server left we wait it out.
   */
  drop(url: string, reason: string, forMs = 3_600_000): void {
    this.dropped.set(url, Date.now() + forMs);
    this.o.log(`electrum: dropping ${url}: ${reason}`);
    this.emit('dropped', url, reason);
    if (this.session?.server.url === url) this.session.close(`dropped: ${reason}`);
  }

  /** Drops the current session (it will be re-established). Used to shed server-side subscriptions. */
  reconnect(reason: string): void {
    this.session?.close(reason);
  }

  private async run(firstRound: () => void): Promise<void> {
    let index = 0;
    let failures = 0;
    let failedThisRound = 0;
    while (this.running) {
      const server = this.servers[index % this.servers.length];
      const bannedUntil = this.dropped.get(server.url) ?? 0;
      if (bannedUntil > Date.now()) {
        index++;
        if (this.servers.every((s) => (this.dropped.get(s.url) ?? 0) > Date.now())) {
          const wait = Math.min(...this.servers.map((s) => this.dropped.get(s.url)!)) - Date.now();
          this.o.log(`electrum: every server was dropped for not telling the truth; trying again in ${Math.ceil(wait / 60_000)} min`);
          firstRound();
          await this.sleep(wait);
        }
        continue;
      }
      try {
        const session = await this.open(server);
        if (!this.running) {
          session.close('client stopped');
          break;
        }
        this.session = session;
        failures = 0;
        failedThisRound = 0;
        this.startPing(session);
        this.emit('connected', server.url, session.software);
        firstRound();
        const reason = await session.done;
        clearInterval(this.pingTimer);
        this.o.log(`electrum: disconnected from ${server.url}: ${reason}`);
        this.emit('disconnected', server.url, reason);
        // Retry the same server once (a restart is the common case); a failure there moves us on.
      } catch (err) {
        if (!this.running) break;
        this.o.log(`electrum: ${server.url}: ${(err as Error).message}`);
        failures++;
        index++;
        if (++failedThisRound >= this.servers.length) firstRound();
      }
      if (!this.running) break;
      await this.sleep(this.backoffDelay(failures));
    }
    firstRound();
  }

  private backoffDelay(failures: number): number {
    const { minMs, maxMs } = this.o.backoff;
    const base = Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
    return Math.round(base * (0.5 + Math.random() * 0.5)); // jitter: many daemons must not retry in lockstep
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private startPing(session: ElectrumConnection): void {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      // A failed ping closes the session itself (timeout); nothing more to do here.
      session.request('server.ping', []).catch(() => {});
    }, this.o.pingIntervalMs);
    this.pingTimer.unref();
  }

  /** Socket (direct or SOCKS) → TLS (optional, pinned or CA-checked) → server.version handshake. */
  private async open(server: ElectrumServer): Promise<ElectrumConnection> {
    const deadline = this.o.connectTimeoutMs;
    const session = await ElectrumConnection.connect(server, this.o);
    session.on('notification', (method: string, params: unknown[]) => {
      this.emit('notification', method, params);
      this.emit(method, params);
    });
    const version = await session.request('server.version', [this.o.clientName, '1.4'], deadline).catch((err) => {
      session.close('handshake failed');
      throw err;
    });
    if (!Array.isArray(version) || typeof version[1] !== 'string' || !/^1\.(4|5|6)/.test(version[1])) {
      session.close('unsupported protocol');
      throw new Error(`unexpected server.version answer ${JSON.stringify(version)}; bitdrop speaks protocol 1.4`);
    }
    this.o.log(`electrum: connected to ${server.url} (${version[0]}, protocol ${version[1]})`);
    session.software = String(version[0]);
    return session;
  }
}

/** Races `p` against a timer; a socket that arrives after the deadline is destroyed, not leaked. */
function withTimeout<T extends net.Socket>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout;
  let late = false;
  p.then((s) => late && s.destroy(), () => {});
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => {
        late = true;
        reject(new Error(message));
      }, ms);
    }),
  ]).finally(() => clearTimeout(t));
}
