// One connection to a tor control port (control-spec.txt).
//
// granax's TorController owns the socket's lifecycle and the FIFO of outstanding commands. What it
// lacks we add here, around it rather than in a fork:
//  * framing: granax splits replies on TCP chunk boundaries, so a long or multi-line reply (a "250+"
//    data block, a big GETINFO) is cut in pieces. A FramedSocket between the socket and granax hands
//    granax exactly one whole reply per chunk, and keeps the exactly-parsed reply for us;
//  * parsing: granax splits "key=value" at every "=", which drops the base64 padding of PrivateKey and
//    truncates values such as status/bootstrap-phase. We split at the first "=" only;
//  * PROTOCOLINFO with a quoted COOKIEFILE, SAFECOOKIE with the server's hash checked, passwords;
//  * ADD_ONION with ClientAuthV3 (v3 client authorization).

import crypto from 'crypto';
import fs from 'fs';
import net from 'net';
import { Duplex } from 'stream';
import { EventEmitter } from 'events';
import { StringDecoder } from 'string_decoder';
import { TorController } from 'granax';

/** Every Tor failure the daemon reports: one readable line. */
export class TorError extends Error {}

export type ControlAddress = { host: string; port: number } | { path: string };

export function parseControlAddress(text: string): ControlAddress {
  const t = text.trim();
  if (t.startsWith('unix:')) return { path: t.slice('unix:'.length) };
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(t) ?? /^()(\d{1,5})$/.exec(t);
  if (!m || Number(m[2]) > 65535) throw new TorError(`--tor-control ${text}: expected HOST:PORT or unix:PATH`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

export const describeAddress = (a: ControlAddress) => ('path' in a ? `unix:${a.path}` : `${a.host}:${a.port}`);

/** A whole reply. A "+" data block is folded into its line: "onions/detached=id1\nid2". */
export interface Reply {
  code: number;
  lines: string[];
}

/** Incremental parser of control-spec §2.3 replies: "NNN-" mid, "NNN+" data (ends at "."), "NNN " end. */
export class ReplyReader {
  private decoder = new StringDecoder('utf8');
  private buffer = '';
  private lines: string[] = [];
  private data: string[] | null = null;

  feed(chunk: Buffer): Reply[] {
    this.buffer += this.decoder.write(chunk);
    const replies: Reply[] = [];
    let eol: number;
    while ((eol = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, eol);
      this.buffer = this.buffer.slice(eol + 2);
      if (this.data) {
        if (line === '.') {
          this.lines[this.lines.length - 1] += this.data.join('\n');
          this.data = null;
        } else {
          this.data.push(line.startsWith('.') ? line.slice(1) : line); // dot-unstuffing
        }
        continue;
      }
      this.lines.push(line.slice(4));
      if (line[3] === '+') this.data = [];
      else if (line[3] === ' ') {
        replies.push({ code: Number(line.slice(0, 3)), lines: this.lines });
        this.lines = [];
      }
    }
    return replies;
  }
}

/** "key=value" lines of a reply, split at the first "=" only. */
export function replyValues(reply: Reply): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of reply.lines) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return values;
}

/** Reads the next QuotedString (control-spec §2.1) from text at a KEY="..." position. */
export function quotedValue(text: string, key: string): string | undefined {
  const m = new RegExp(`${key}="((?:[^"\\\\]|\\\\.)*)"`).exec(text);
  return m?.[1].replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? c);
}

const quote = (s: string) => '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';

/**
 * Sits between the socket and granax: parses replies itself, hands async events (6xx) to onEvent,
 * queues every other reply for the ControlPort and gives granax the same reply as one chunk.
 */
class FramedSocket extends Duplex {
  readonly replies: Reply[] = [];
  private reader = new ReplyReader();
  private ended = false;

  constructor(readonly socket: net.Socket, onEvent: (reply: Reply) => void) {
    super({ emitClose: false });
    socket.on('connect', () => this.emit('connect'));
    socket.on('error', (err) => this.emit('error', err));
    socket.on('close', () => {
      if (!this.ended) this.push(null);
      this.ended = true;
      this.emit('close');
    });
    socket.on('data', (chunk: Buffer) => {
      for (const reply of this.reader.feed(chunk)) {
        if (reply.code >= 600) {
          onEvent(reply);
          continue;
        }
        this.replies.push(reply);
        const last = reply.lines.length - 1;
        this.push(reply.lines.map((line, i) => `${reply.code}${i === last ? ' ' : '-'}${line}\r\n`).join(''));
      }
    });
  }

  _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  _read(): void {}

  _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.socket.destroy();
    callback(err);
  }
}

export interface ProtocolInfo {
  methods: string[];
  cookieFile?: string;
  version?: string;
}

export interface OnionPort {
  virtualPort: number;
  /** "127.0.0.1:8080" or "unix:/path" */
  target: string;
}

export interface AddOnionOptions {
  /** "NEW:ED25519-V3" or the stored "ED25519-V3:<base64>" */
  key: string;
  ports: OnionPort[];
  /** base32 x25519 public keys of the authorized clients; empty = a public onion */
  clientAuthV3?: string[];
  /** the service outlives this control connection; it then has to be removed with DEL_ONION */
  detach?: boolean;
  /** most streams per rendezvous circuit (MaxStreams); a circuit asking for more is closed */
  maxStreams?: number;
  /** proof-of-work at the introduction (PoWDefensesEnabled, tor ≥ 0.4.8) and its queue's rate and burst */
  pow?: { queueRate: number; queueBurst: number };
}

const SERVER_TO_CONTROLLER = 'Tor safe cookie authentication server-to-controller hash';

export class ControlPort extends EventEmitter {
  private framed: FramedSocket;
  private controller: TorController;
  private failPending = new Set<(err: Error) => void>();
  closed = false;

  private constructor(readonly address: ControlAddress) {
    super();
    this.framed = new FramedSocket(new net.Socket(), (reply) => this.emit('event', reply));
    this.controller = new TorController(this.framed, { authOnConnect: false });
    this.controller.on('error', () => {}); // socket errors surface through connect() and 'close'
    this.framed.on('close', () => {
      this.closed = true;
      const lost = new TorError(`lost the tor control connection ${describeAddress(address)}`);
      for (const fail of this.failPending) fail(lost);
      this.failPending.clear();
      this.emit('close');
    });
  }

  /** Connects (no authentication yet). */
  static connect(address: ControlAddress, timeoutMs = 10_000): Promise<ControlPort> {
    const port = new ControlPort(address);
    const socket = port.framed.socket;
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        socket.destroy();
        reject(new TorError(`cannot reach the tor control port ${describeAddress(address)}: ${why}`));
      };
      const timer = setTimeout(() => fail('timed out'), timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        fail(err.code ?? err.message);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(port);
      });
      if ('path' in address) socket.connect(address.path);
      else socket.connect(address.port, address.host);
    });
  }

  /** Sends one command line; resolves with a 2xx reply, rejects with a one-line TorError otherwise. */
  command(line: string): Promise<Reply> {
    if (/[\r\n]/.test(line)) return Promise.reject(new TorError('a control command must be one line'));
    if (this.closed) return Promise.reject(new TorError(`lost the tor control connection ${describeAddress(this.address)}`));
    const verb = line.split(' ')[0];
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.failPending.add(fail);
      this.controller._send(line, () => {
        this.failPending.delete(fail);
        const reply = this.framed.replies.shift()!;
        if (reply.code >= 200 && reply.code < 300) resolve(reply);
        else reject(new TorError(`tor refused ${verb}: ${reply.code} ${reply.lines.join(' ')}`));
      });
    });
  }

  async protocolInfo(): Promise<ProtocolInfo> {
    const reply = await this.command('PROTOCOLINFO 1');
    const auth = reply.lines.find((l) => l.startsWith('AUTH ')) ?? '';
    const version = reply.lines.find((l) => l.startsWith('VERSION ')) ?? '';
    return {
      methods: (/METHODS=(\S+)/.exec(auth)?.[1] ?? '').split(',').filter(Boolean),
      cookieFile: quotedValue(auth, 'COOKIEFILE'),
      version: quotedValue(version, 'Tor'),
    };
  }

  /**
   * Authenticates with what tor offers (PROTOCOLINFO): a password when one is given, else SAFECOOKIE
   * (the cookie never crosses the socket, and tor proves it knows it too), COOKIE, or NULL.
   */
  async authenticate(password?: string): Promise<ProtocolInfo> {
    const info = await this.protocolInfo();
    const where = describeAddress(this.address);
    const has = (m: string) => info.methods.includes(m);
    if (password !== undefined && has('HASHEDPASSWORD')) {
      await this.command(`AUTHENTICATE ${quote(password)}`).catch(() => {
        throw new TorError(`tor at ${where} rejected the control password (--tor-password)`);
      });
    } else if ((has('SAFECOOKIE') || has('COOKIE')) && info.cookieFile) {
      const cookie = readCookie(info.cookieFile);
      if (has('SAFECOOKIE')) await this.safeCookie(cookie);
      else await this.command(`AUTHENTICATE ${cookie.toString('hex')}`);
    } else if (has('NULL')) {
      await this.command('AUTHENTICATE');
    } else if (has('HASHEDPASSWORD')) {
      throw new TorError(`tor at ${where} wants a control password: pass --tor-password`);
    } else {
      throw new TorError(`tor at ${where} offers no authentication method bitdrop supports (${info.methods.join(',')})`);
    }
    return info;
  }

  private async safeCookie(cookie: Buffer): Promise<void> {
    const clientNonce = crypto.randomBytes(32);
    const reply = await this.command(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString('hex')}`);
    const serverHash = /SERVERHASH=([0-9A-Fa-f]{64})/.exec(reply.lines[0])?.[1];
    const serverNonce = /SERVERNONCE=([0-9A-Fa-f]{64})/.exec(reply.lines[0])?.[1];
    if (!serverHash || !serverNonce) throw new TorError(`unexpected AUTHCHALLENGE reply: ${reply.lines[0]}`);
    const expected = crypto
      .createHmac('sha256', SERVER_TO_CONTROLLER)
      .update(Buffer.concat([cookie, clientNonce, Buffer.from(serverNonce, 'hex')]))
      .digest();
    // The server proves it read the same cookie: something else listening on the port cannot.
    if (!crypto.timingSafeEqual(expected, Buffer.from(serverHash, 'hex'))) {
      throw new TorError(`the control port ${describeAddress(this.address)} failed SAFECOOKIE: it is not the tor that wrote the cookie`);
    }
    const response = TorController.createChallengeResponse(cookie.toString('hex'), clientNonce.toString('hex'), serverNonce);
    await this.command(`AUTHENTICATE ${response}`);
  }

  async getInfo(key: string): Promise<string> {
    const value = replyValues(await this.command(`GETINFO ${key}`)).get(key);
    if (value === undefined) throw new TorError(`GETINFO ${key}: no value in tor's reply`);
    return value;
  }

  /** Bootstrap progress 0-100 from GETINFO status/bootstrap-phase. */
  async bootstrapProgress(): Promise<number> {
    return parseBootstrap(await this.getInfo('status/bootstrap-phase')) ?? 0;
  }

  async addOnion(opts: AddOnionOptions): Promise<{ serviceId: string; privateKey?: string }> {
    const args = ['ADD_ONION', checkToken(opts.key, /^(NEW:(ED25519-V3|BEST)|ED25519-V3:[A-Za-z0-9+/]+={0,2})$/, 'onion key')];
    const clients = opts.clientAuthV3 ?? [];
    // V3Auth must accompany ClientAuthV3 ("512 No auth type specified" otherwise).
    const flags = [...(opts.detach ? ['Detach'] : []), ...(clients.length ? ['V3Auth'] : []), ...(opts.maxStreams ? ['MaxStreamsCloseCircuit'] : [])];
    if (flags.length) args.push(`Flags=${flags.join(',')}`);
    if (opts.maxStreams) args.push(`MaxStreams=${wholeNumber(opts.maxStreams, 65535, 'MaxStreams')}`);
    if (opts.pow) {
      args.push('PoWDefensesEnabled=1', `PoWQueueRate=${wholeNumber(opts.pow.queueRate, 2 ** 31 - 1, 'PoWQueueRate')}`,
        `PoWQueueBurst=${wholeNumber(opts.pow.queueBurst, 2 ** 31 - 1, 'PoWQueueBurst')}`);
    }
    for (const p of opts.ports) {
      args.push(`Port=${p.virtualPort},${checkToken(p.target, /^(unix:\S+|[\w.:[\]-]+:\d+)$/, 'onion target')}`);
    }
    for (const key of clients) args.push(`ClientAuthV3=${checkToken(key, /^[A-Za-z2-7]{52}$/, 'client key')}`);
    const values = replyValues(await this.command(args.join(' ')));
    const serviceId = values.get('ServiceID');
    if (!serviceId) throw new TorError('ADD_ONION: tor sent no ServiceID');
    return { serviceId, privateKey: values.get('PrivateKey') };
  }

  async delOnion(serviceId: string): Promise<void> {
    await this.command(`DEL_ONION ${checkToken(serviceId, /^[a-z2-7]{56}$/, 'service id')}`);
  }

  /** The first TCP SocksPort tor listens on (GETINFO net/listeners/socks), if any. */
  async socksListener(): Promise<{ host: string; port: number } | undefined> {
    const list = await this.getInfo('net/listeners/socks');
    for (const m of list.matchAll(/"([^"]+)"/g)) {
      const hp = /^\[?([^\]]+?)\]?:(\d+)$/.exec(m[1]);
      if (hp && !m[1].startsWith('unix:')) return { host: hp[1], port: Number(hp[2]) };
    }
    return undefined;
  }

  close(): void {
    this.framed.destroy();
  }
}

function wholeNumber(n: number, max: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new TorError(`${what} ${n} is not a whole number from 0 to ${max}`);
  return n;
}

/** PROGRESS=NN of a bootstrap-phase value or STATUS_CLIENT BOOTSTRAP event. */
export function parseBootstrap(text: string): number | undefined {
  const m = /\bBOOTSTRAP\b.*\bPROGRESS=(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function checkToken(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new TorError(`invalid ${what} for the control port: ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

function readCookie(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EACCES') {
      throw new TorError(
        `cannot read tor's cookie ${file} (permission denied): add this user to tor's group (Debian: adduser $USER debian-tor) or use --tor-password`,
      );
    }
    throw new TorError(`cannot read tor's cookie ${file}: ${e.code ?? e.message}`);
  }
}
