// Electrum protocol transport: JSON-RPC 2.0, one JSON value per line, over plain TCP. Owns connections and
// their subscriptions; the answers live in electrum-methods.ts. A connection is only ever notified about what
// it subscribed to itself — an unexpected notification makes Electrum drop the session.
// stop() drops every connection (tests use it to simulate an outage); start() listens again on the same port.

import net from 'net';
import { takeLines } from '../net/lines';
import { Chain, ChainUpdate } from './chain';
import { METHOD_NOT_FOUND, METHODS, PROTOCOL_MIN, scriptStatus, SessionContext, tipHeader } from './electrum-methods';
import { RpcError } from './rpc-error';

const MAX_LINE = 1_000_000;
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const INTERNAL_ERROR = -32603;

type Id = string | number | null;
interface Response {
  jsonrpc: '2.0';
  id: Id;
  result?: unknown;
  error?: { code: number; message: string };
}

class Session {
  private buffer = '';
  private protocol = PROTOCOL_MIN;
  private headers = false;
  private readonly scripts = new Map<string, string | null>(); // script hash → last status sent
  private readonly ctx: SessionContext;
  onSubscribe?: () => void;

  get subscriptions(): number {
    return this.scripts.size;
  }

  constructor(
    private readonly socket: net.Socket,
    private readonly chain: Chain,
    port: number,
    private readonly log: (msg: string) => void,
  ) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => socket.destroy());
    const self = this;
    this.ctx = {
      chain,
      port,
      get protocol() {
        return self.protocol;
      },
      setProtocol: (v) => (this.protocol = v),
      subscribeHeaders: () => (this.headers = true),
      subscribeScript: (sh, status) => {
        this.scripts.set(sh, status);
        this.onSubscribe?.();
      },
      unsubscribeScript: (sh) => this.scripts.delete(sh),
    };
  }

  /** Pushes the new tip and every changed status this connection subscribed to (tip first, as ElectrumX does). */
  onUpdate(update: ChainUpdate): void {
    if (this.headers && update.tipChanged) this.notify('blockchain.headers.subscribe', [tipHeader(this.chain)]);
    for (const sh of update.touched) {
      if (!this.scripts.has(sh)) continue;
      const status = scriptStatus(this.chain, sh);
      if (status === this.scripts.get(sh)) continue;
      this.scripts.set(sh, status);
      this.notify('blockchain.scripthash.subscribe', [sh, status]);
    }
  }

  private onData(chunk: string): void {
    const { lines, rest } = takeLines(this.buffer, chunk);
    this.buffer = rest;
    // The answers to one read go out in one write (a client's requests of one tick arrive together: up to
    // 32 subscriptions of a group commit's new addresses, each answer a syscall of its own before).
    this.socket.cork();
    try {
      for (const line of lines) this.onLine(line);
    } finally {
      this.socket.uncork();
    }
    if (this.buffer.length > MAX_LINE) {
      this.send({ jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: `request longer than ${MAX_LINE} bytes` } });
      this.socket.end();
      this.buffer = '';
    }
  }

  private onLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.send({ jsonrpc: '2.0', id: null, error: { code: PARSE_ERROR, message: 'invalid JSON' } });
      return;
    }
    if (Array.isArray(message)) {
      if (message.length === 0) return this.send({ jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'empty batch' } });
      const answers = message.map((m) => this.handle(m)).filter((r): r is Response => r !== undefined);
      if (answers.length) this.send(answers);
    } else {
      const answer = this.handle(message);
      if (answer) this.send(answer);
    }
  }

  /** Answers one request; undefined for a client notification (no id), which gets no answer. */
  private handle(request: unknown): Response | undefined {
    if (typeof request !== 'object' || request === null || typeof (request as { method?: unknown }).method !== 'string') {
      return { jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'a request is an object with a method' } };
    }
    const { method, params, id } = request as { method: string; params?: unknown; id?: Id };
    const isNotification = !('id' in request);
    try {
      const spec = METHODS[method];
      if (!spec) throw new RpcError(METHOD_NOT_FOUND, `unknown method "${method}"`);
      let args: unknown[];
      if (params === undefined || params === null) args = [];
      else if (Array.isArray(params)) args = params;
      else if (typeof params === 'object') args = spec.params.map((name) => (params as Record<string, unknown>)[name]);
      else throw new RpcError(INVALID_REQUEST, 'params must be an array or an object');
      const result = spec.run(this.ctx, args);
      return isNotification ? undefined : { jsonrpc: '2.0', id: id ?? null, result: result === undefined ? null : result };
    } catch (err) {
      if (!(err instanceof RpcError)) this.log(`electrum: ${method} failed: ${(err as Error).stack}`);
      const error = err instanceof RpcError ? { code: err.code, message: err.message } : { code: INTERNAL_ERROR, message: `internal error: ${(err as Error).message}` };
      return isNotification ? undefined : { jsonrpc: '2.0', id: id ?? null, error };
    }
  }

  private notify(method: string, params: unknown[]): void {
    this.send({ jsonrpc: '2.0', method, params });
  }

  private send(message: unknown): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(JSON.stringify(message) + '\n');
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface ElectrumServerOptions {
  log?: (msg: string) => void;
}

export class ElectrumServer {
  private server?: net.Server;
  private readonly sessions = new Set<Session>();
  private boundPort = 0;
  private readonly log: (msg: string) => void;
  private readonly onUpdate = (update: ChainUpdate) => {
    for (const s of this.sessions) s.onUpdate(update);
  };

  constructor(
    private readonly chain: Chain,
    opts: ElectrumServerOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
  }

  /** the most script subscriptions held at once over all connections (what a public server would throttle) */
  peakSubscriptions = 0;

  get subscriptions(): number {
    let n = 0;
    for (const s of this.sessions) n += s.subscriptions;
    return n;
  }

  get port(): number {
    return this.boundPort;
  }
  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Listens on host:port (0 = any free port, or the previous port after stop()). Resolves to the bound port. */
  async start(port = this.boundPort, host = '127.0.0.1'): Promise<number> {
    if (this.server) return this.boundPort;
    const server = net.createServer((socket) => {
      const session = new Session(socket, this.chain, this.boundPort, this.log);
      session.onSubscribe = () => {
        this.peakSubscriptions = Math.max(this.peakSubscriptions, this.subscriptions);
      };
      this.sessions.add(session);
      socket.on('close', () => this.sessions.delete(session));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log(`electrum: ${err.message}`));
    this.server = server;
    this.boundPort = (server.address() as net.AddressInfo).port;
    this.chain.on('update', this.onUpdate);
    return this.boundPort;
  }

  /** Stops listening and drops every connection; the port is kept for the next start(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.chain.off('update', this.onUpdate);
    for (const s of this.sessions) s.close();
    this.sessions.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get connections(): number {
    return this.sessions.size;
  }
}
