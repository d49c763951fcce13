// A Namecoin Core JSON-RPC client (axios): basic auth from the URL or the node's cookie file, the
// /wallet/<name> path, a timeout per call, retries with backoff on transport errors, and the node's error
// codes turned into one readable line each. Non-loopback nodes are reached through tor's SocksPort, under
// the clearnet rule the Electrum client follows (lib/payments/electrum.ts#checkRoute).

import fs from 'fs';
import type { AxiosError, AxiosInstance } from 'axios';
import { isLoopback } from '../config';
import { socksAgent } from '../net/socks-agent';

// Loaded when a client is made: axios and what it pulls in are ~5 MiB of RSS that a daemon without a
// .bit name never needs.
const loadAxios = () => (require('axios') as typeof import('axios')).default;

export interface NamecoinRpcOptions {
  /** http://[user:password@]host:port[/wallet/<name>] */
  url: string;
  /** the node's .cookie file ("__cookie__:<hex>"), read again when the node refuses it (it changes on restart) */
  cookieFile?: string;
  /** tor's SocksPort, used for nodes not on this machine */
  socks?: { host: string; port: number };
  clearnet?: boolean;
  timeoutMs?: number;
  /** attempts after the first on transport errors (default 3), backoff 250 ms doubling */
  retries?: number;
}

/** What went wrong, for callers that act on it (retry later, give up, tell the operator). */
export type NamecoinErrorKind = 'unreachable' | 'auth' | 'rpc';

export class NamecoinError extends Error {
  constructor(
    readonly kind: NamecoinErrorKind,
    message: string,
    readonly code?: number,
    readonly rpcMessage?: string,
  ) {
    super(message);
  }
}

// Bitcoin / Namecoin Core error codes (src/rpc/protocol.h)
export const RPC_CODE = {
  WALLET_ERROR: -4,
  INVALID_ADDRESS_OR_KEY: -5,
  INSUFFICIENT_FUNDS: -6,
  INVALID_PARAMETER: -8,
  UNLOCK_NEEDED: -13,
  TRANSACTION_ERROR: -25,
  IN_WARMUP: -28,
  WALLET_NOT_FOUND: -18,
  WALLET_NOT_SPECIFIED: -19,
  METHOD_NOT_FOUND: -32601,
} as const;

/** Redacts the credentials of a node URL for messages. */
export const redact = (url: string) => url.replace(/\/\/[^@/]*@/, '//');

export class NamecoinRpc {
  private readonly http: AxiosInstance;
  private readonly endpoint: string;
  private readonly host: string;
  readonly wallet?: string;
  private auth?: { username: string; password: string };
  private nextId = 1;

  constructor(private readonly opts: NamecoinRpcOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new NamecoinError('rpc', `--namecoin-rpc ${redact(opts.url)}: expected http://user:password@HOST:PORT[/wallet/NAME]`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new NamecoinError('rpc', `--namecoin-rpc ${redact(opts.url)}: expected an http:// URL`);
    this.host = u.host;
    const wallet = /^\/wallet\/(.+)$/.exec(u.pathname);
    this.wallet = wallet ? decodeURIComponent(wallet[1]) : undefined;
    if (u.username) this.auth = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
    else if (opts.cookieFile) this.auth = readCookie(opts.cookieFile);
    u.username = '';
    u.password = '';
    this.endpoint = u.toString();
    const hostname = u.hostname.replace(/^\[|\]$/g, '');
    const local = isLoopback(hostname);
    if (!local && !opts.socks && !opts.clearnet) {
      throw new NamecoinError('unreachable', `the Namecoin node ${this.host} is not on this machine and Tor is off; refusing a clearnet connection (use tor, or --clearnet to allow it)`);
    }
    this.http = loadAxios().create({
      timeout: opts.timeoutMs ?? 30_000,
      headers: { 'Content-Type': 'application/json' },
      validateStatus: () => true,
      maxRedirects: 0,
      proxy: false,
      ...(!local && opts.socks ? { httpAgent: socksAgent(`${opts.socks.host}:${opts.socks.port}`) } : {}),
    });
  }

  /** "host:port" (and the wallet), for messages */
  get where(): string {
    return this.wallet !== undefined ? `${this.host} (wallet "${this.wallet}")` : this.host;
  }

  async call<T>(method: string, params: unknown[] = []): Promise<T> {
    const retries = this.opts.retries ?? 3;
    let rereadCookie = this.opts.cookieFile !== undefined;
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        if (!this.auth && this.opts.cookieFile) this.auth = readCookie(this.opts.cookieFile);
        res = await this.http.post(this.endpoint, { jsonrpc: '1.0', id: this.nextId++, method, params }, { auth: this.auth, responseType: 'text', transformResponse: (x) => x });
      } catch (err) {
        if (attempt < retries) {
          await sleep(250 * 2 ** attempt);
          continue;
        }
        throw new NamecoinError('unreachable', `the Namecoin node at ${this.host} does not answer (${transportReason(err)})`);
      }
      if (res.status === 401) {
        if (rereadCookie) {
          // The node writes a new cookie each time it starts.
          rereadCookie = false;
          this.auth = readCookie(this.opts.cookieFile!);
          continue;
        }
        throw new NamecoinError('auth', `the Namecoin node at ${this.host} refused the credentials (check user:password in --namecoin-rpc, or --namecoin-cookie)`);
      }
      if (res.status === 403) throw new NamecoinError('auth', `the Namecoin node at ${this.host} refuses this client (its rpcallowip)`);
      let body: { result: T; error: { code: number; message: string } | null };
      try {
        body = JSON.parse(String(res.data));
      } catch {
        if (res.status >= 500 && attempt < retries) {
          await sleep(250 * 2 ** attempt);
          continue;
        }
        throw new NamecoinError('rpc', `${method}: the Namecoin node at ${this.host} answered HTTP ${res.status} without JSON-RPC; is it a Namecoin node?`);
      }
      if (!body.error) return body.result;
      const { code, message } = body.error;
      if (code === RPC_CODE.IN_WARMUP) throw new NamecoinError('unreachable', `the Namecoin node at ${this.host} is starting (${message})`, code, message);
      throw new NamecoinError('rpc', readable(method, code, message, this), code, message);
    }
  }
}

/** One readable line for a node error. */
function readable(method: string, code: number, message: string, rpc: NamecoinRpc): string {
  switch (code) {
    case RPC_CODE.WALLET_NOT_FOUND:
      return rpc.wallet !== undefined
        ? `wallet "${rpc.wallet}" is not loaded on the Namecoin node (namecoin-cli loadwallet ${rpc.wallet}, or fix the /wallet/NAME part of --namecoin-rpc)`
        : `the Namecoin node has no wallet loaded (namecoin-cli loadwallet NAME or createwallet NAME)`;
    case RPC_CODE.WALLET_NOT_SPECIFIED:
      return `the Namecoin node has several wallets loaded: choose one with --namecoin-rpc http://…/wallet/NAME`;
    case RPC_CODE.UNLOCK_NEEDED:
      return `the Namecoin wallet on ${rpc.where} is locked: unlock it with namecoin-cli walletpassphrase "PASSPHRASE" SECONDS`;
    case RPC_CODE.INSUFFICIENT_FUNDS:
      return `the Namecoin wallet on ${rpc.where} has too few coins for ${method} (a name locks 0.01 NMC plus the fee): send it some NMC`;
    case RPC_CODE.METHOD_NOT_FOUND:
      return `the node at ${rpc.where} does not know ${method}: is it a Namecoin node (with its wallet enabled)?`;
  }
  if (/value is too long/.test(message)) return `${method}: the value is longer than Namecoin's 520 bytes`;
  if (/name is too long/.test(message)) return `${method}: the name is longer than Namecoin's 255 bytes`;
  if (/exists already|already active|already being registered/.test(message)) return `${method}: the name is already registered or being registered by someone else (${message})`;
  return `${method}: ${message} (Namecoin node error ${code})`;
}

function readCookie(file: string): { username: string; password: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new NamecoinError('auth', `cannot read the Namecoin cookie ${file} (${(err as NodeJS.ErrnoException).code}); is the node running, and may this user read its data directory?`);
  }
  const i = text.indexOf(':');
  if (i < 0) throw new NamecoinError('auth', `the Namecoin cookie ${file} is not "user:password"`);
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

function transportReason(err: unknown): string {
  const e = err as AxiosError & { cause?: { code?: string } };
  if (e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT') return 'timed out';
  return e.code ?? e.cause?.code ?? e.message;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
