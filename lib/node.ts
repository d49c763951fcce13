// The daemon: builds every subsystem from the config and starts/stops them in order.
//   store → (payments: devnet?, watcher, ledger) → http → tor → runtime file
// Subsystems get small typed interfaces from here; they do not import each other.

import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import type http from 'http';
import type { AddressInfo } from 'net';
import { Config, paymentsEnabled } from './config';
import { Store, type BlobBackend } from './store';
import { createApp, createServer } from './http/app';
import type { PaymentGate } from './http/gate';
import pkg from '../package.json';

export const VERSION: string = pkg.version;

export interface RuntimeInfo {
  pid: number;
  version: string;
  url: string;
  onion?: string;
  started: string;
}

/** Where a running daemon says how to reach it (read by `bitdrop status`, `bitdrop devnet …`). */
export const runtimePath = (dataDir: string) => path.join(dataDir, 'bitdrop.json');
export const adminTokenPath = (dataDir: string) => path.join(dataDir, 'admin-token');

export interface NodeOptions {
  log?: (line: string) => void;
  blobBackend?: BlobBackend;
}

export class BitdropNode {
  store?: Store;
  private server?: http.Server;
  private gate?: PaymentGate;
  private readonly log: (line: string) => void;
  private stopping?: Promise<void>;
  url = '';

  constructor(readonly config: Config, private readonly opts: NodeOptions = {}) {
    this.log = opts.log ?? ((line) => console.log(line));
  }

  async start(): Promise<void> {
    const c = this.config;
    fs.mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
    this.store = await Store.open({
      dir: c.dataDir,
      backend: this.opts.blobBackend ?? (process.env.BITDROP_BLOB_BACKEND as BlobBackend | undefined),
    });
    const adminToken = readOrCreateSecret(adminTokenPath(c.dataDir));
    const app = createApp({
      config: c,
      store: this.store,
      gate: this.gate,
      status: () => this.status(),
      adminToken,
      log: this.log,
    });
    this.server = createServer(app);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(err.code === 'EADDRINUSE'
          ? `${c.listen.host}:${c.listen.port} is already in use; choose another with --listen HOST:PORT`
          : `cannot listen on ${c.listen.host}:${c.listen.port}: ${err.message}`)));
      this.server!.listen(c.listen.port, c.listen.host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.url = `http://${host}:${addr.port}`;
    this.writeRuntime();
    this.announce();
  }

  private writeRuntime(onion?: string) {
    const info: RuntimeInfo = { pid: process.pid, version: VERSION, url: this.url, onion, started: new Date().toISOString() };
    fs.writeFileSync(runtimePath(this.config.dataDir), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  }

  private announce() {
    const c = this.config;
    const s = this.store!.stats();
    this.log(`bitdrop ${VERSION}`);
    this.log(`serving   ${this.url}/  (curl -T FILE ${this.url}/)`);
    this.log(`storing   ${c.dataDir}  (${s.files} files, ${s.bytes} bytes, ${s.backend} chunk store)`);
    this.log(`uploads   up to ${c.maxUploadBytes} bytes`);
    const missing: string[] = [];
    if (!paymentsEnabled(c)) missing.push('prices (--storage-price, --transfer-price): downloads are free');
    if (!c.xpub) missing.push('--xpub');
    if (c.electrum.length === 0) missing.push('--electrum');
    if (!c.name) missing.push('--name (.bit name)');
    if (missing.length) this.log(`not configured yet: ${missing.join('; ')}`);
  }

  async status(): Promise<Record<string, unknown>> {
    const s = this.store!.stats();
    return {
      version: VERSION,
      pid: process.pid,
      uptime: Math.round(process.uptime()),
      listen: this.url,
      dataDir: this.config.dataDir,
      files: s.files,
      bytes: s.bytes,
      store: { backend: s.backend, chunkSize: s.chunkSize, chunks: s.chunks, chunkBytes: s.chunkBytes },
      payments: paymentsEnabled(this.config) ? { network: this.config.network } : { mode: 'free' },
    };
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.server) {
        await new Promise<void>((resolve) => {
          this.server!.close(() => resolve());
          this.server!.closeIdleConnections();
          // Give transfers in flight a moment, then cut them: a stop must not hang on a slow client.
          setTimeout(() => this.server!.closeAllConnections(), 2000).unref();
        });
      }
      await this.store?.close();
      fs.rmSync(runtimePath(this.config.dataDir), { force: true });
    })();
    return this.stopping;
  }
}

/** A random secret kept in a 0600 file, made on first use. */
export function readOrCreateSecret(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    const token = crypto.randomBytes(24).toString('base64url');
    fs.writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
    return token;
  }
}
