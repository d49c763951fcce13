// A minimal Electrum protocol client (newline-delimited JSON-RPC 2.0 over TCP) for the devnet's own tools and
// tests: requests resolve with the result or reject with an ElectrumError carrying the server's code and
// message; server notifications are emitted as 'notification' (method, params).

import { EventEmitter } from 'events';
import net from 'net';

export class ElectrumError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export function parseElectrumUrl(url: string): { host: string; port: number } {
  const m = /^tcp:\/\/\[?([^\]]+?)\]?:(\d+)$/.exec(url);
  if (!m) throw new Error(`${url}: expected tcp://HOST:PORT`);
  return { host: m[1], port: Number(m[2]) };
}

export class ElectrumConnection extends EventEmitter {
  private nextId = 1;
  private buffer = '';
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly socket: net.Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => {
      const err = new Error('connection to the Electrum server closed');
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.emit('close');
    });
    socket.on('error', () => {}); // 'close' follows and rejects what is pending
  }

  static connect(url: string): Promise<ElectrumConnection> {
    const { host, port } = parseElectrumUrl(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host);
      socket.once('error', (err) => reject(new Error(`cannot reach the Electrum server at ${url}: ${err.message}`)));
      socket.once('connect', () => resolve(new ElectrumConnection(socket)));
    });
  }

  request<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  /** Sends a raw line (tests use it for malformed input). */
  writeRaw(line: string): void {
    this.socket.write(line);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (!line.trim()) continue;
      const msg = JSON.parse(line);
      for (const m of Array.isArray(msg) ? msg : [msg]) this.onMessage(m);
    }
  }

  private onMessage(m: { id?: number | null; method?: string; params?: unknown[]; result?: unknown; error?: { code: number; message: string } }): void {
    if (m.method) {
      this.emit('notification', m.method, m.params ?? []);
      return;
    }
    const p = m.id == null ? undefined : this.pending.get(m.id);
    if (!p) {
      this.emit('unmatched', m);
      return;
    }
    this.pending.delete(m.id!);
    if (m.error) p.reject(new ElectrumError(m.error.code, m.error.message));
    else p.resolve(m.result);
  }
}
