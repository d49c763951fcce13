// TorService: the one owner of everything about Tor in bitdrop (compare OnionShare's onion.py).
//
//   managed  we run Debian's tor as our child (torrc from hs-config/), restart it with backoff when
//            it dies and publish the onion again
//   attach   we use a tor someone else runs (--tor-control HOST:PORT | unix:PATH), cookie or password
//   off      no onion: the HTTP listener on loopback is all there is
//
// The onion is added with Flags=Detach, so it does not vanish when a control connection blips; the
// price is that we must DEL_ONION it ourselves: on stop(), and on start() when a crashed run left it
// behind on an attached tor (re-adding a live key fails with "Onion address collision").

import fs from 'fs';
import { ControlAddress, ControlPort, Reply, TorError, describeAddress, parseBootstrap, parseControlAddress } from './control';
import { clientPublicKeys, clientsDir } from './client-auth';
import { readOnionKey, writeOnionKey, writeServiceId } from './onion-key';
import { ManagedTor, findExecutable, privateDir, sleep, torPaths } from './process';
import { takeTermDir } from '../lease/term-dir';

export { addClient, listClients, removeClient, ClientAuthError } from './client-auth';
export type { OnionClient } from './client-auth';
export { TorError } from './control';

export type TorMode = 'managed' | 'attach' | 'off';

export interface TorServiceOptions {
  mode: TorMode;
  dataDir: string;
  torControl?: string;
  torPassword?: string;
  torBinary: string;
  torrcAppend?: string;
  /** the HTTP listener the onion's port 80 forwards to */
  target: { host: string; port: number };
  /** DoS defences asked of tor for the onion (default: all on, tor's queue defaults, 64 streams) */
  defenses?: OnionDefenses;
  /**
   * A leader term (lib/lease): a managed tor then works in files of the term's own (torPaths), its
   * DataDirectory seeded with a copy of the last term's (consensus cache, guards: no cold start)
   */
  term?: number;
  log: (line: string) => void;
}

export interface OnionDefenses {
  pow: boolean;
  powQueueRate: number;
  powQueueBurst: number;
  /** 0: no limit */
  maxStreams: number;
}

export const DEFAULT_DEFENSES: OnionDefenses = { pow: true, powQueueRate: 250, powQueueBurst: 2500, maxStreams: 64 };

/** What tor took of the defences we asked for, as it answered ADD_ONION (and why not, when it did not). */
export interface DefensesStatus {
  pow: { on: boolean; queueRate?: number; queueBurst?: number; why?: string };
  maxStreams: { on: boolean; limit?: number; closeCircuit?: boolean; why?: string };
  introDoS: { on: boolean; why: string };
}

/** tor(1), 0.4.9: HiddenServiceEnableIntroDoSDefense and its rates are torrc options of a HiddenServiceDir
 * service; ADD_ONION has no keyword for them (it does for PoW and MaxStreams). */
const INTRO_DOS_WHY = 'ADD_ONION has no keyword for HiddenServiceEnableIntroDoSDefense (torrc HiddenServiceDir only): ' +
  'the introduction points apply the consensus rate limits';

export interface TorStatus {
  mode: TorMode;
  bootstrap: number;
  onion?: string;
  /** the SocksPort every outbound connection of the daemon must use; undefined = no way out */
  socks?: { host: string; port: number };
  /** the onion DoS defences tor accepted with the onion (absent before it is published) */
  defenses?: DefensesStatus;
}

const INSTALL_HINT = 'install it with: apt-get install tor';
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
/** A tor that stayed up this long was healthy: the next failure starts the backoff again. */
const HEALTHY_MS = 60_000;

export class TorService {
  private mode: TorMode;
  /** the term's DataDirectory was made (once: a restart of tor after a crash keeps it) */
  private seeded = false;
  private control?: ControlPort;
  private tor?: ManagedTor;
  private serviceId?: string;
  private clientKeys: string[] = [];
  private defenses?: DefensesStatus;
  private bootstrap = 0;
  private socks?: { host: string; port: number };
  /** the managed tor's SocksPort before it died, asked for again on restart */
  private lostSocks?: { host: string; port: number };
  private stopping = false;
  /** the onion is published and tor is being watched; a loss now means recovery */
  private up = false;
  private retryMs = FIRST_RETRY_MS;
  private upSince = 0;
  private retryTimer?: NodeJS.Timeout;
  private watcher?: fs.FSWatcher;
  private reloadTimer?: NodeJS.Timeout;
  /** publish / re-add / stop run one at a time */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private opts: TorServiceOptions) {
    this.mode = opts.mode;
  }

  /** Resolves once ADD_ONION succeeded (bootstrap goes on in the background); throws one readable line. */
  async start(): Promise<void> {
    if (this.mode === 'managed' && !findExecutable(this.opts.torBinary)) {
      this.mode = 'off';
      this.opts.log(`tor: "${this.opts.torBinary}" not found, so there is no onion service, only http://${hostPort(this.opts.target)} (${INSTALL_HINT})`);
    }
    if (this.mode === 'off') {
      this.opts.log(`tor: off; the drop box is only on http://${hostPort(this.opts.target)}`);
      return;
    }
    const paths = torPaths(this.opts.dataDir);
    privateDir(paths.dir);
    privateDir(clientsDir(this.opts.dataDir));
    try {
      await this.run(() => this.connectAndPublish());
    } catch (err) {
      await this.stop();
      throw oneLine(err);
    }
    this.watchClients();
  }

  /** DEL_ONION, then stop the managed tor. */
  stop(): Promise<void> {
    this.stopping = true;
    this.up = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.reloadTimer);
    this.watcher?.close();
    this.watcher = undefined;
    return this.run(async () => {
      const control = this.control;
      if (control && this.serviceId && !control.closed) {
        await control.delOnion(this.serviceId).catch((err) => this.opts.log(`tor: DEL_ONION failed: ${(err as Error).message}`));
      }
      control?.close();
      this.control = undefined;
      this.serviceId = undefined;
      this.socks = undefined;
      await this.tor?.stop();
      this.tor = undefined;
    });
  }

  status(): TorStatus {
    return {
      mode: this.mode,
      bootstrap: this.bootstrap,
      onion: this.serviceId ? `${this.serviceId}.onion` : undefined,
      socks: this.socks ? { ...this.socks } : undefined,
      defenses: this.defenses,
    };
  }

  onionUrl(): string | undefined {
    return this.serviceId ? `http://${this.serviceId}.onion` : undefined;
  }

  /** Re-reads the authorized clients and re-adds the onion if they changed (also done on file changes). */
  reload(): Promise<void> {
    return this.run(async () => {
      if (this.stopping || !this.control || this.control.closed) return;
      const keys = clientPublicKeys(this.opts.dataDir);
      if (keys.join() === this.clientKeys.join()) return;
      this.opts.log(`tor: client authorization changed (${describe(keys)}); publishing the onion again`);
      await this.publish(this.control);
    });
  }

  private run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => {});
    return result;
  }

  /**
   * Starts or reaches tor, authenticates, follows bootstrap and adds the onion.
   * socksPort: after a crash, ask the new tor for the old SocksPort, so the daemon's proxy settings stay right.
   */
  private async connectAndPublish(socksPort?: number): Promise<void> {
    let address: ControlAddress;
    if (this.mode === 'managed') {
      if (this.opts.term !== undefined && !this.seeded) {
        await takeTermDir(torPaths(this.opts.dataDir).dir, 'data', this.opts.term);
        this.seeded = true;
      }
      const tor = new ManagedTor({ binary: this.opts.torBinary, dataDir: this.opts.dataDir, term: this.opts.term, torrcAppend: this.opts.torrcAppend, log: this.opts.log });
      this.tor = tor;
      tor.on('exit', (code: number | null, signal: string | null) => {
        if (this.tor === tor) this.lost(`tor exited (${signal ?? `code ${code}`})`);
      });
      address = await tor.start(socksPort);
    } else {
      address = parseControlAddress(this.opts.torControl ?? '');
    }

    const control = await this.authenticated(address);
    this.control = control;
    control.on('close', () => {
      if (this.control === control && this.mode === 'attach') this.lost(`lost the control connection to ${describeAddress(address)}`);
    });
    control.on('event', (event: Reply) => this.onEvent(event));
    if (this.mode === 'managed') {
      // tor exits as soon as this connection closes: a crashed daemon leaves no tor behind.
      await control.command('TAKEOWNERSHIP');
    }
    this.setBootstrap(await control.bootstrapProgress());
    await control.command('SETEVENTS STATUS_CLIENT');
    await this.refreshSocks(control);
    if (this.mode === 'attach' && !this.socks) {
      this.opts.log(`tor: the tor at ${describeAddress(address)} has no SocksPort, so the daemon has no way to reach the outside`);
    }
    await this.publish(control);
    this.up = true;
    this.upSince = Date.now();
  }

  /** Authenticates, retrying while a managed tor has not yet written its cookie. */
  private async authenticated(address: ControlAddress): Promise<ControlPort> {
    for (let attempt = 1; ; attempt++) {
      const control = await ControlPort.connect(address);
      try {
        await control.authenticate(this.opts.torPassword);
        return control;
      } catch (err) {
        control.close();
        const missingCookie = /cookie .* ENOENT/.test((err as Error).message);
        if (!(this.mode === 'managed' && missingCookie && attempt < 50)) throw err;
        await sleep(100);
      }
    }
  }

  private async publish(control: ControlPort): Promise<void> {
    const torDir = torPaths(this.opts.dataDir).dir;
    const stored = readOnionKey(torDir, this.opts.log);
    const clients = clientPublicKeys(this.opts.dataDir);
    const known = this.serviceId ?? stored?.serviceId;
    if (known) {
      // Ours from before (a re-add, or a crashed run on an attached tor): remove it, or ADD_ONION collides.
      const detached = (await control.getInfo('onions/detached')).split('\n');
      if (detached.includes(known)) await control.delOnion(known);
    }
    const d = this.opts.defenses ?? DEFAULT_DEFENSES;
    const base = {
      key: stored?.blob ?? 'NEW:ED25519-V3',
      ports: [{ virtualPort: 80, target: onionTarget(this.opts.target) }],
      clientAuthV3: clients,
      detach: true,
      maxStreams: d.maxStreams || undefined,
    };
    const pow = d.pow ? { queueRate: d.powQueueRate, queueBurst: d.powQueueBurst } : undefined;
    let added: { serviceId: string; privateKey?: string };
    let powWhy = d.pow ? undefined : 'off (--onion-pow off)';
    try {
      added = await control.addOnion({ ...base, pow });
    } catch (err) {
      // tor refuses a keyword it does not know (512 Unrecognized keyword argument): an attached tor older
      // than 0.4.8 has no PoW. Publish without it, and say so.
      if (!pow || !/Unrecognized keyword argument "PoW/i.test((err as Error).message)) throw err;
      powWhy = `this tor does not know ADD_ONION PoWDefensesEnabled (${(err as Error).message.replace(/^.*?: /, '')}); tor ≥ 0.4.8 has it`;
      this.opts.log(`tor: proof-of-work defence not available: ${powWhy}`);
      added = await control.addOnion(base);
    }
    this.defenses = {
      pow: powWhy ? { on: false, why: powWhy } : { on: true, queueRate: d.powQueueRate, queueBurst: d.powQueueBurst },
      maxStreams: d.maxStreams ? { on: true, limit: d.maxStreams, closeCircuit: true } : { on: false, why: 'off (--onion-max-streams 0)' },
      introDoS: { on: false, why: INTRO_DOS_WHY },
    };
    if (!stored) {
      if (!added.privateKey) throw new TorError('ADD_ONION NEW:ED25519-V3: tor sent no private key');
      writeOnionKey(torDir, added.privateKey);
    }
    if (added.serviceId !== stored?.serviceId) writeServiceId(torDir, added.serviceId);
    this.serviceId = added.serviceId;
    this.clientKeys = clients;
    this.opts.log(
      `tor: onion service http://${added.serviceId}.onion → ${onionTarget(this.opts.target)}` +
        (clients.length ? ` (private: ${describe(clients)})` : '') + `; DoS defences: ${describeDefenses(this.defenses)}`,
    );
  }

  private onEvent(event: Reply): void {
    const progress = parseBootstrap(event.lines[0] ?? '');
    if (progress !== undefined) this.setBootstrap(progress, /SUMMARY="([^"]*)"/.exec(event.lines[0])?.[1]);
    if (!this.socks && this.control) this.refreshSocks(this.control).catch(() => {});
  }

  private setBootstrap(progress: number, summary?: string): void {
    if (progress !== this.bootstrap) this.opts.log(`tor: bootstrapped ${progress}%${summary ? ` (${summary})` : ''}`);
    this.bootstrap = progress;
  }

  private async refreshSocks(control: ControlPort): Promise<void> {
    this.socks = await control.socksListener();
  }

  /** tor went away while we were up: start over, and keep trying with backoff until the onion is back. */
  private lost(why: string): void {
    if (this.stopping || !this.up) return;
    this.up = false;
    if (Date.now() - this.upSince > HEALTHY_MS) this.retryMs = FIRST_RETRY_MS;
    this.control?.close();
    this.control = undefined;
    this.bootstrap = 0;
    if (this.mode === 'managed') this.lostSocks = this.socks;
    this.socks = undefined;
    this.retry(why);
  }

  private retry(why: string): void {
    this.opts.log(`tor: ${why}; trying again in ${this.retryMs / 1000} s`);
    // The first try asks for the old SocksPort; if that fails (taken meanwhile?) later tries take any.
    const socksPort = this.lostSocks?.port;
    this.lostSocks = undefined;
    this.retryTimer = setTimeout(() => {
      this.run(async () => {
        if (this.stopping) return;
        await this.tor?.stop();
        this.tor = undefined;
        await this.connectAndPublish(socksPort);
        this.opts.log('tor: back, and the onion is published again');
      }).catch((err) => {
        if (this.stopping) return;
        this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
        this.retry(oneLine(err).message);
      });
    }, this.retryMs);
  }

  /** Picks up `bitdrop auth add/remove` from another process: fs.watch on the clients folder. */
  private watchClients(): void {
    if (this.mode === 'off' || this.stopping) return;
    this.watcher = fs.watch(clientsDir(this.opts.dataDir), () => {
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => this.reload().catch((err) => this.opts.log(`tor: ${oneLine(err).message}`)), 250);
    });
    this.watcher.on('error', () => {}); // the folder was removed: clients are simply gone
  }
}

const hostPort = (t: { host: string; port: number }) => (t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`);

/** Where tor should connect: a wildcard or "localhost" listener is reached on 127.0.0.1. */
function onionTarget(t: { host: string; port: number }): string {
  const host = ['0.0.0.0', '::', 'localhost', ''].includes(t.host) ? '127.0.0.1' : t.host;
  return hostPort({ host, port: t.port });
}

function describeDefenses(d: DefensesStatus): string {
  const on = [
    d.pow.on ? `proof-of-work (queue ${d.pow.queueRate}/s, burst ${d.pow.queueBurst})` : undefined,
    d.maxStreams.on ? `at most ${d.maxStreams.limit} streams a circuit` : undefined,
  ].filter(Boolean);
  return on.length ? on.join(', ') : 'none';
}

const describe = (keys: string[]) => (keys.length === 1 ? '1 client' : `${keys.length} clients`);

function oneLine(err: unknown): TorError {
  if (err instanceof TorError) return err;
  const e = err as NodeJS.ErrnoException;
  return new TorError(`tor: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`.split('\n')[0]);
}
