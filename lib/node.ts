// The daemon: builds every subsystem from the config and starts/stops them in order.
//   store → (payments: devnet?, watcher, ledger) → http → tor → runtime file
// Subsystems get small typed interfaces from here; they do not import each other.

import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import type http from 'http';
import type { AddressInfo } from 'net';
import { Config, ConfigError, commandName, defaults, isLoopback, paymentsEnabled, type NetworkName } from './config';
import { Store, StoreLockedError, type BlobBackend } from './store';
import type { Leadership } from './lease';
import { takeTermDir } from './lease/term-dir';
import { describeVolume, fenceAfterMs, volumeWarnings, watchVolume } from './store/volume';
import { createApp, createServer } from './http/app';
import { createConsoleApp, createConsoleServer } from './http/console';
import { freeGate } from './http/gate';
import { humanBytes } from './http/pages';
import { Metrics } from './metrics';
import { createLogger, type Logger } from './log';
import { EventLog } from './events';
import type { PaymentGate } from './http/gate';
import { Ledger } from './ledger';
import { ledgerGate } from './http/ledger-gate';
import { AddressPool, Watcher, parseXpub, deriveFileAddress, addressScriptHash, networkOf, isMainnet, type ParsedXpub } from './payments';
import type { NmcOptions } from './ledger';
import type { Devnet } from './devnet';
import { HeaderChain } from './chain';
import { TorService } from './tor';
import { buildValue, NameValueError, NamecoinRpc, readExtraValue, redact, Registrar } from './names';
import { Economy, CostsError, readCosts, describePolicy, type Costs } from './economy';
import { booksRoute } from './http/books';
import { Wallet, walletKeyPath } from './wallet';
import { Mirrors, originOf, valueWithMirrors } from './mirrors';
import pkg from '../package.json';

export const VERSION: string = pkg.version;

export interface RuntimeInfo {
  pid: number;
  /** the machine the daemon runs on (a standby on another machine reads this through the shared volume) */
  host: string;
  version: string;
  url: string;
  /** the operator console (loopback only): where `bitdrop status` asks */
  console: string;
  onion?: string;
  started: string;
}

/** The embedded devnet, loaded only when used: a daemon on real servers (or a free box) never needs its code. */
async function openDevnet(opts: { dir: string }): Promise<Devnet> {
  const { Devnet } = await import('./devnet');
  return Devnet.open(opts);
}

/** Where a running daemon says how to reach it (read by `bitdrop status`, `bitdrop devnet …`). */
export const runtimePath = (dataDir: string) => path.join(dataDir, 'bitdrop.json');
export const adminTokenPath = (dataDir: string) => path.join(dataDir, 'admin-token');
/** The pid of the daemon holding the data dir (its LevelDB lock), written as soon as the lock is held. */
export const pidPath = (dataDir: string) => path.join(dataDir, 'bitdrop.pid');

export interface NodeOptions {
  /** routine lines (clients gone, malformed requests); default: printed with --log-level debug only */
  debug?: (line: string) => void;
  log?: (line: string) => void;
  blobBackend?: BlobBackend;
  /** the ledger's clock (tests move time forward without sleeping) */
  clock?: () => number;
  /** how often the ledger's expiry sweep runs (ms) */
  sweepEveryMs?: number;
  /** the watcher's cold-sweep period (ms); default one day */
  coldSweepPeriodMs?: number;
  /** the watcher's cap on sweep requests per second (default 20) */
  maxSweepRate?: number;
  /** how often a standby looks at the leader key in etcd (ms, default 500) */
  standbyPollMs?: number;
  /** on a GlusterFS volume: how long it may be unreachable before the daemon stops (default half its ping-timeout) */
  fenceAfterMs?: number;
  /** what a fenced daemon does last (default: exit with status 75) */
  onFenced?: (code: number) => void;
  /** with --etcd: start the lease watchdog process (default true; tests running a daemon in-process turn it off) */
  leaseWatchdog?: boolean;
}

/** With a leader lease, a primary that cannot reach its volume this long fences itself and hands the lease over. */
const LEASED_VOLUME_FENCE_MS = 5000;
/** With a leader lease, the start-up sweep leaves payloads younger than this (an upload of another term may hold them). */
const LEASED_ORPHAN_AGE_MS = 10 * 60_000;

/** What one name_update is counted to cost for the console's renewal count: its fee, at most ~0.005 NMC
 * (Namecoin's 0.001 NMC/kvB on a few hundred bytes, with room for busier blocks). */
const RENEWAL_NMC = 500_000;


export class BitdropNode {
  store?: Store;
  private server?: http.Server;
  private consoleServer?: http.Server;
  readonly events = new EventLog();
  /** bytes sent to downloaders since start (free or paid) */
  private bytesServed = 0;
  private gate?: PaymentGate;
  ledger?: Ledger;
  /** file addresses derived ahead in a worker thread (paid mode) */
  addressPool?: AddressPool;
  watcher?: Watcher;
  chain?: HeaderChain;
  /** paid in NMC too (--nmc-xpub): the Namecoin chain's watcher, with the same proof checks */
  nmcWatcher?: Watcher;
  nmcChain?: HeaderChain;
  private nmcRpcClient?: NamecoinRpc;
  registrar?: Registrar;
  /** costs, prices that follow them, the books (lib/economy); with payments on */
  economy?: Economy;
  metrics?: Metrics;
  private namesVia = '';
  private nameExtra: Record<string, unknown> = {};
  devnet?: Devnet;
  /** the operating wallet (pays mirrors) and the mirrors (lib/wallet, lib/mirrors) */
  wallet?: Wallet;
  mirrors?: Mirrors;
  tor?: TorService;
  private sweepTimer?: NodeJS.Timeout;
  private sharedWrites: Promise<void> = Promise.resolve();
  private sweeps?: Promise<void>;
  private simulated = false;
  private readonly log: (line: string) => void;
  private stopping?: Promise<void>;
  private volumeWatch?: { stop(): void };
  /** the leader lease in etcd (--etcd): decides whether this daemon may serve and write */
  leadership?: Leadership;
  private fencing = false;
  /** true once this process holds the data dir: only then may it write or remove its runtime files */
  private owner = false;
  private readonly debug: (line: string) => void;
  private readonly logger: Logger;
  url = '';
  consoleUrl = '';

  constructor(readonly config: Config, private readonly opts: NodeOptions = {}) {
    this.logger = createLogger({ format: config.logFormat ?? 'text', level: config.logLevel ?? 'info' });
    const print = opts.log ?? this.logger.log;
    this.log = (line) => { this.events.add(line); print(line); };
    this.debug = opts.debug ?? (opts.log
      ? (config.logLevel === 'debug' ? (line) => print(`debug     ${line}`) : () => {})
      : this.logger.debug);
  }

  async start(): Promise<void> {
    const c = this.config;
    // Everything bitdrop writes (LevelDB, chunks, the devnet, tor's files) is for its own user only.
    process.umask(0o077);
    fs.mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
    try {
      this.store = c.etcd.length ? await this.openAsLeader() : await this.openStore();
    } catch (err) {
      throw err instanceof StoreLockedError ? heldBy(c.dataDir) : err;
    }
    if (!this.store) return; // stopped while standing by
    this.owner = true;
    if (this.leadership) {
      // Under a lease the event loop never waits on the volume (its turns renew the lease): these run in the
      // background, away from what a stopped daemon of the term before may hold (otherTermsFiles).
      const term = this.leadership.term;
      this.writeShared(pidPath(c.dataDir), `${process.pid}\n`);
      void tightenPermissions(c.dataDir, otherTermsFiles(term)).catch((err) => this.log(`store: tightening permissions: ${(err as Error).message}`));
    } else {
      fs.writeFileSync(pidPath(c.dataDir), `${process.pid}\n`, { mode: 0o600 });
      await tightenPermissions(c.dataDir);
    }
    const adminToken = readOrCreateSecret(adminTokenPath(c.dataDir));
    this.logger.addSecret(adminToken);
    this.checkNameValue();
    if (paymentsEnabled(c)) await this.startPayments();
    this.metrics = new Metrics({
      store: () => ({ ...this.store!.stats(), uploadSlots: this.store!.uploadSlots() }),
      ledger: () => this.ledger?.stats(),
      addressPool: () => this.addressPool?.size(),
      electrum: () => this.watcher?.status(),
      tor: () => this.tor?.status(),
      names: () => this.registrar?.status() ?? [],
      economy: () => this.economyGauges(),
    });
    const app = createApp({
      config: c,
      store: this.store,
      gate: this.gate,
      observe: this.metrics,
      served: (bytes) => { this.bytesServed += bytes; },
      onion: () => this.tor?.onionUrl(),
      simulated: this.simulated,
      pricing: () => this.economy && {
        mode: this.economy.mode,
        policy: this.economy.costs && this.economy.mode === 'cost' ? describePolicy(this.economy.costs) : undefined,
        history: this.economy.priceHistory(),
      },
      mirrors: c.mirror.length ? (id) => this.mirrors?.links(id) ?? [] : undefined,
      originOf: (url) => { const s = this.tor?.status().socks; return originOf(url, s ? `${s.host}:${s.port}` : undefined); },
      cdn: c.mirror.length && (c.mirrorCdn || c.mirrorCdnOver) ? {
        pick: (id, n) => this.mirrors?.cdnPick(id, n),
        open: (url) => this.mirrors!.cdnOpen(url),
        proxied: (id, mirror, ok, why) => this.mirrors?.cdnResult(id, mirror, ok, why),
      } : undefined,
      log: this.log,
      debug: this.debug,
    });
    this.server = createServer(app, undefined, this.debug);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(err.code === 'EADDRINUSE'
          ? `${c.listen.host}:${c.listen.port} is already in use; choose another with --listen HOST:PORT`
          : `cannot listen on ${c.listen.host}:${c.listen.port}: ${err.message}`)));
      this.server!.listen(c.listen.port, c.listen.host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    this.url = urlOf(addr);
    await this.startConsole(adminToken);
    this.writeRuntime();
    this.startSweeps();
    if (c.tor !== 'off') {
      this.tor = new TorService({
        mode: c.tor, dataDir: c.dataDir, torControl: c.torControl, torPassword: c.torPassword,
        torBinary: c.torBinary, torrcAppend: c.torrcAppend, target: { host: addr.address, port: addr.port }, log: this.log,
        defenses: { pow: c.onionPow, powQueueRate: c.onionPowQueueRate, powQueueBurst: c.onionPowQueueBurst, maxStreams: c.onionMaxStreams },
        term: this.leadership?.term,
      });
      await this.tor.start();
      this.writeRuntime(this.tor.onionUrl());
    }
    if (this.ledger) await this.startWatcher();
    if (c.name.length) await this.startNames();
    await this.startMirrors();
    this.fenceOnVolumeLoss();
    this.announce();
  }

  /**
   * On a GlusterFS volume, a primary that loses the bricks stops before they drop its lock, so a standby
   * that takes over never finds this one still serving or publishing the onion (docs/scale-out.md).
   */
  private fenceOnVolumeLoss() {
    const volume = this.store!.volume;
    if (volume.kind !== 'glusterfs') return;
    this.volumeWatch = watchVolume({
      // the term's own directory, not through the `db` symlink: after a rebalance of the volume the symlink's
      // lookups failed while the directory's did not (the volume watch then fenced a healthy leader)
      probe: path.join(this.store!.dbPath, 'CURRENT'),
      failAfterMs: this.opts.fenceAfterMs ?? (this.leadership ? LEASED_VOLUME_FENCE_MS : fenceAfterMs(volume)),
      onLost: (why) => {
        // With a lease: no write of this daemon can land any more (fenced below), so the lease is handed over.
        this.leadership?.fence(why);
        this.fence(why);
      },
    });
  }

  /**
   * Stops serving at once: the listener closed and its connections cut, the onion withdrawn, every store
   * write refused (the lease's fence); then the lease is given back and the process exits (status 75) — a
   * supervisor starts it again as a standby. The store cannot be closed cleanly when the volume is gone.
   */
  private fence(why: string) {
    if (this.fencing) return;
    this.fencing = true;
    const exit = this.opts.onFenced ?? ((code: number) => process.exit(code));
    this.log(`FATAL     ${why}: stopping, so that a standby can take over the data dir safely`);
    this.server?.close();
    this.server?.closeAllConnections();
    this.volumeWatch?.stop();
    // The onion withdrawn and the lease given back, for at most 1.2 s: a fence at the lease's deadline must
    // end before the watchdog's grace does (lib/lease); tor's control connection closes with the process anyway.
    const unpublished = this.tor?.stop().catch(() => undefined) ?? Promise.resolve();
    const released = unpublished.then(() => this.leadership?.release());
    Promise.race([released, new Promise((r) => setTimeout(r, 1200))]).then(() => exit(75));
  }

  /**
   * With --etcd: becomes the leader of the deployment (at once, or — with --standby — once the leader's lease
   * is gone), then opens the store under this term's fence. While it waits it holds no lock, writes nothing
   * and listens on nothing.
   */
  private async openAsLeader(): Promise<Store | undefined> {
    const c = this.config;
    // Loaded only here: etcd3 brings gRPC and protobufjs (15 MiB of resident memory) that a daemon without
    // --etcd never uses.
    const { Leadership } = await import('./lease');
    const lease = this.leadership = new Leadership({
      endpoints: c.etcd, prefix: c.etcdPrefix, ttlSec: c.leaseTtl, log: this.log, watchdog: this.opts.leaseWatchdog, pollMs: this.opts.standbyPollMs,
    });
    let waited = false;
    const leads = await lease.acquire({
      wait: c.standby,
      stopped: () => this.stopping !== undefined,
      onWaiting: (holder) => {
        waited = true;
        this.log(`standby   ${c.dataDir} is in use${holder ? ` by bitdrop pid ${holder.pid} on ${holder.host}` : ''} (leader of ${c.etcdPrefix} in etcd); ` +
          'serving nothing until its lease is gone');
      },
      onFenced: (why) => this.fence(why),
    });
    if (!leads || this.stopping) return undefined;
    if (waited) this.log(`standby   ${c.dataDir} is free: taking over`);
    try {
      return await Store.open({
        dir: c.dataDir,
        backend: this.opts.blobBackend ?? (process.env.BITDROP_BLOB_BACKEND as BlobBackend | undefined),
        lease: { term: lease.term, fence: lease.check },
      });
    } catch (err) {
      await lease.release();
      throw err;
    }
  }

  /**
   * The operator console on its own loopback listener. When the default address is taken (a second daemon
   * on this machine) it moves to a free loopback port and says so; an address the operator chose must work.
   */
  private async startConsole(adminToken: string) {
    const c = this.config;
    const metrics = this.metrics!;
    const app = createConsoleApp({
      adminToken,
      status: () => this.status(),
      log: this.log,
      admin: { store: this.store!, gate: this.gate ?? freeGate, downloads: async (id) => { const a = await this.ledger?.account(id); return a && a.size > 0 ? Math.floor(a.sentBytes / a.size) : undefined; }, publicUrl: () => this.url },
      // Prometheus text format; scrape with the admin token (authorization: bearer, or basic auth).
      routes: [async (ctx) => {
        if (ctx.path === '/wallet') {
          if (!this.wallet) return false;
          ctx.body = { ...(await this.wallet.balance()), history: await this.wallet.history() };
          return true;
        }
        if (ctx.path !== '/metrics') return false;
        ctx.type = metrics.contentType;
        ctx.body = await metrics.text();
        return true;
      }, booksRoute(() => this.economy)],
    });
    const listen = (port: number) => new Promise<void>((resolve, reject) => {
      const server = createConsoleServer(app);
      server.once('error', reject);
      server.listen(port, c.console.host, () => { server.off('error', reject); this.consoleServer = server; resolve(); });
    });
    try {
      await listen(c.console.port);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const d = defaults().console;
      if (code === 'EADDRINUSE' && c.console.host === d.host && c.console.port === d.port) {
        await listen(0);
        this.log(`console   ${d.host}:${d.port} is in use; the console moved to a free port (choose one with --console HOST:PORT)`);
      } else {
        throw new Error(code === 'EADDRINUSE'
          ? `the console address ${c.console.host}:${c.console.port} is already in use; choose another with --console HOST:PORT`
          : `cannot listen on ${c.console.host}:${c.console.port} for the console: ${(err as Error).message}`);
      }
    }
    this.consoleUrl = urlOf(this.consoleServer!.address() as AddressInfo);
  }

  private openStore(): Promise<Store> {
    return Store.open({
      dir: this.config.dataDir,
      backend: this.opts.blobBackend ?? (process.env.BITDROP_BLOB_BACKEND as BlobBackend | undefined),
    });
  }

  /** The names' value is checked (≤ 520 bytes) before anything starts, so a bad --name-value fails at once. */
  private checkNameValue() {
    const c = this.config;
    if (!c.name.length) return;
    try {
      this.nameExtra = c.nameValue ? readExtraValue(c.nameValue) : {};
      buildValue('a'.repeat(56) + '.onion', this.nameExtra); // every v3 onion has the same length
    } catch (err) {
      if (err instanceof NameValueError) throw new ConfigError(`--name ${c.name.join(', ')}: ${err.message}`);
      throw err;
    }
  }

  /**
   * Names: registered and renewed through the Namecoin node of --namecoin-rpc, or — when none is given — the
   * embedded devnet's Namecoin regtest node. Started after tor: the value carries the onion, and a remote
   * node is reached through tor's SocksPort.
   */
  private async startNames() {
    const c = this.config;
    let url = c.namecoinRpc;
    if (!url) {
      this.devnet ??= await openDevnet({ dir: path.join(c.dataDir, 'devnet') });
      url = this.devnet.namecoinRpcUrl;
      this.namesVia = `the embedded devnet's Namecoin regtest node (${redact(url)}): SIMULATED, no real NMC; mine with bitdrop devnet mine --data-dir ${c.dataDir}`;
    } else {
      this.namesVia = `the Namecoin node ${redact(url)}`;
    }
    let rpc: NamecoinRpc;
    try {
      rpc = new NamecoinRpc({ url, cookieFile: c.namecoinCookie, socks: this.tor?.status().socks, clearnet: c.clearnet });
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    const onion = () => this.tor?.status().onion ?? undefined;
    this.registrar = new Registrar({
      db: this.store!.db,
      rpc,
      names: c.name,
      desiredValue: () => {
        const o = onion();
        return o ? valueWithMirrors(o, this.nameExtra, this.mirrors?.inUse() ?? c.mirror) : undefined;
      },
      missingValueReason: () => (c.tor === 'off' ? 'tor is off (--tor off): there is no onion address to publish' : 'waiting for tor to publish the onion service'),
      // A poll is one getblockcount; the names are looked at when the tip moves or an operation is in flight.
      pollMs: c.namecoinPoll ?? (isLoopback(new URL(url).hostname) ? 200 : 10_000),
      log: this.log,
      paid: (p) => { this.bookNameFee(rpc, p).catch((err) => this.log(`books: the fee of ${p.op} ${p.txid}: ${(err as Error).message}`)); },
    });
    await this.registrar.start();
  }

  /**
   * Start-up reads a few keys whatever the number of files; the walks over the whole store — orphaned
   * chunks, files due for expiry — run once the listener is up, in bounded slices.
   */
  private startSweeps() {
    const stopped = () => this.stopping !== undefined;
    const startedAt = Date.now();
    this.sweeps = (async () => {
      const unfinished = await this.store!.removeUnfinishedDrops(startedAt, { stopped });
      if (unfinished) this.log(`store: removed ${unfinished} file${unfinished === 1 ? '' : 's'} of uploads never finished`);
      const orphans = await this.store!.removeOrphans({ stopped, ...(this.leadership ? { writtenBefore: startedAt - LEASED_ORPHAN_AGE_MS } : {}) });
      if (orphans) this.log(`store: removed ${orphans} orphaned chunk${orphans === 1 ? '' : 's'} (uploads that never finished)`);
      if (this.ledger && !stopped()) await this.ledger.sweep();
    })().catch((err) => this.log(`error: background sweep: ${err}`));
    // apart from the sweeps above: a removal that waits on a stopped daemon's lock must not hold them up
    if (this.leadership) {
      void this.store!.clearEarlierTerms({ stopped }).then((n) => { if (n) this.log(`store: removed ${n} chunk temp file${n === 1 ? '' : 's'} of earlier leader terms`); },
        (err) => this.log(`error: clearing earlier terms' temp files: ${err}`));
    }
  }

  /**
   * The operating wallet (when payments are on and there are mirrors, or its key exists) and the mirrors.
   * The wallet checks its coins against the header chain the watcher keeps.
   */
  private async startMirrors() {
    const c = this.config;
    const socks = () => { const s = this.tor?.status().socks; return s ? `${s.host}:${s.port}` : undefined; };
    if (this.chain && (c.mirror.length || await fs.promises.access(walletKeyPath(c.dataDir)).then(() => true, () => false))) {
      const pause = Number(process.env.BITDROP_TEST_SPEND_PAUSE_MS ?? 0); // tests: a window for kill -9 between record and broadcast
      this.wallet = new Wallet({
        dataDir: c.dataDir, network: c.network, servers: c.electrum, socks: this.tor?.status().socks, clearnet: c.clearnet, chain: this.chain,
        db: this.store!.db, write: (ops, o) => this.store!.write(ops, o), spendLimit: c.spendLimit, log: this.log,
        ...(pause ? { beforeBroadcast: () => new Promise<void>((r) => setTimeout(r, pause)) } : {}),
      });
      await this.wallet.start();
      this.log(`wallet    ${this.wallet.address}  (operating wallet; spends up to ${c.spendLimit} sats a day, --spend-limit)`);
    }
    if (!c.mirror.length) return;
    const ledger = this.ledger;
    this.mirrors = new Mirrors({
      urls: c.mirror, policy: c.mirrorPolicy, store: this.store!, wallet: this.wallet, socks, origin: () => this.tor?.onionUrl() ?? this.url,
      syncEveryMs: c.mirrorSync, auditEveryMs: c.mirrorAudit, maxPrice: c.mirrorMaxPrice, cdnShare: c.mirrorCdn, cdnOver: c.mirrorCdnOver, log: this.log,
      fileState: async (m) => {
        if (!ledger) return { active: true };
        const a = await ledger.account(m.drop ?? m.id);
        if (!a) return { active: false };
        const e = ledger.evaluate(a);
        return { active: e.state === 'active', paidThrough: e.paidThrough, sentBytes: a.sentBytes };
      },
    });
    await this.mirrors.start();
    this.log(`mirrors   ${c.mirror.join(', ')} (${c.mirrorPolicy} files; audits at random times, at most ${c.mirrorAudit / 1000} s apart)`);
  }

  /**
   * A header chain (its checked headers live in the data dir, so a restart does not download the chain again)
   * and an Electrum watcher over it: the same budget, sweeps and proof checks for every coin.
   */
  private async openWatcher(network: NetworkName, servers: string[], log: (line: string) => void, coldSource: ConstructorParameters<typeof Watcher>[0]['coldSource']) {
    const c = this.config;
    // under a lease the headers are in a directory of this term's own (lib/lease/term-dir.ts: the term
    // before's stopped client may hold the last term's file locked), written in the background (the event loop
    // never waits on the volume)
    const dir = this.leadership
      ? await takeTermDir(path.join(c.dataDir, 'chain'), network, this.leadership.term)
      : path.join(c.dataDir, 'chain', network);
    const chain = HeaderChain.open({ network, dir, log: this.log, writeBehind: !!this.leadership });
    const watcher = new Watcher({
      servers,
      chain,
      budget: c.watchBudget,
      ...(this.opts.coldSweepPeriodMs ? { sweepPeriodMs: this.opts.coldSweepPeriodMs } : {}),
      ...(this.opts.maxSweepRate ? { maxSweepRate: this.opts.maxSweepRate } : {}),
      socks: this.tor?.status().socks,
      clearnet: c.clearnet,
      log,
      coldSource,
    });
    return { chain, watcher };
  }

  /** The Electrum watcher starts after tor, so that its connections can go through tor's SocksPort. */
  private async startWatcher() {
    const c = this.config;
    const ledger = this.ledger!;
    ({ chain: this.chain, watcher: this.watcher } = await this.openWatcher(c.network, c.electrum, this.log, (after, limit) => ledger.scriptHashes(after, limit)));
    this.watcher.on('tip', (tip: { height: number }) => {
      ledger.onTip(tip.height).catch((err) => this.log(`error: ledger tip: ${err}`));
    });
    this.watcher.on('payments', (sh: string, payments) => {
      ledger.onPayments(sh, payments).catch((err) => this.log(`error: ledger payments: ${err}`));
    });
    ledger.attach(this.watcher);
    await this.watcher.start();
    if (c.nmcXpub) await this.startNmcWatcher();
  }

  /**
   * Payments: the operator's xpub and Electrum servers, or — when neither is given — an embedded devnet
   * with a generated test key, so a newcomer can try the whole payment story locally.
   */
  private async startPayments() {
    const c = this.config;
    if (!c.xpub && c.electrum.length === 0) {
      this.devnet = await openDevnet({ dir: path.join(c.dataDir, 'devnet') });
      c.xpub = this.devnet.xpub;
      c.electrum = [this.devnet.electrumUrl];
      c.network = 'regtest';
      this.simulated = true;
    } else if (!c.xpub) {
      throw new ConfigError('--electrum is set but --xpub is not: give the watch-only extended public key of your wallet');
    } else if (c.electrum.length === 0) {
      throw new ConfigError('--xpub is set but --electrum is not: give at least one Electrum server (tcp://HOST:PORT or ssl://HOST:PORT)');
    }
    let key: ParsedXpub;
    try {
      key = parseXpub(c.xpub!, c.network);
    } catch (err) {
      throw new ConfigError(`--xpub: ${(err as Error).message}`);
    }
    const clock = this.opts.clock ?? Date.now;
    let pool: AddressPool | undefined;
    this.ledger = await Ledger.open({
      db: this.store!.db,
      store: this.store!,
      policy: { storagePrice: c.storagePrice, transferPrice: c.transferPrice, confirmations: c.confirmations, grace: c.grace, unpaidTtl: c.unpaidTtl },
      maxUnpaidBytes: c.maxUnpaidBytes,
      // the pool opens once the ledger has read its next index; nothing is allocated before it
      allocate: (i) => pool!.allocate(i),
      uriScheme: c.network.startsWith('namecoin') ? 'namecoin' : 'bitcoin',
      clock,
      log: this.log,
      nmc: this.nmcOptions(),
      diskBytes: this.costs()?.disk,
    });
    pool = this.addressPool = await AddressPool.open({ db: this.store!.db, key, xpub: c.xpub!, target: c.addressPool, next: this.ledger.stats().nextIndex, log: this.log });
    this.gate = ledgerGate(this.ledger, c.maxUploadBytes, c.publicUrl);
    const ledger = this.ledger;
    await this.startEconomy(ledger, clock);
    this.sweepTimer = setInterval(() => {
      if (!ledger.sweepRunning) ledger.sweep().catch((err) => this.log(`error: expiry sweep: ${err}`));
      this.economy?.tick().then(() => this.refreshEconomyCache()).catch((err) => this.log(`error: books: ${err}`));
    }, this.opts.sweepEveryMs ?? 60_000);
    this.sweepTimer.unref();
  }

  /**
   * The books, and with --pricing cost the prices: the ledger keeps the config's fixed prices for accounts
   * activated before (Policy.basePrices), and quotes the day's prices (node mirrors them into the config,
   * which the pages quote from).
   */
  private async startEconomy(ledger: Ledger, clock: () => number) {
    const c = this.config;
    const costs = this.costs();
    const fixed = { storagePrice: c.storagePrice, transferPrice: c.transferPrice };
    if (c.pricing === 'cost') ledger.policy.basePrices = { ...fixed };
    this.economy = await Economy.open({
      db: this.store!.db,
      mode: c.pricing,
      costs,
      fixed,
      clock,
      log: this.log,
      snapshot: () => {
        const l = ledger.stats();
        return { creditsBtc: l.creditsEarned - l.creditsNmc, creditsNmc: l.creditsNmc, bytesSent: l.bytesSent, storedBytes: this.store!.stats().bytes };
      },
      onPrices: (p) => {
        ledger.setPrices(p);
        c.storagePrice = p.storagePrice;
        c.transferPrice = p.transferPrice;
      },
    });
    await this.economy.tick();
    await this.refreshEconomyCache();
    this.nmcSpent = (await this.economy.spentEntries()).reduce((n, e) => n + (e.coin === 'NMC' ? e.nmc ?? 0 : 0), 0);
  }

  /** The cost file, read once (a bad one stops the start with one line). */
  private costs(): Costs | undefined {
    if (this.costsRead === undefined) {
      try {
        this.costsRead = this.config.costs ? readCosts(this.config.costs) : null;
      } catch (err) {
        throw err instanceof CostsError ? new ConfigError(err.message) : err;
      }
    }
    return this.costsRead ?? undefined;
  }

  private costsRead?: Costs | null;

  /** What /metrics shows of the books (today's row and the summary of the last 30 days). */
  private economyGauges() {
    return this.economyCache;
  }

  private economyCache?: { revenueSats: number; costsSats: number; profitSats: number; cashSats: number; runwayDays: number | null; utilization: number; storagePrice: number; transferPrice: number };

  /** Refreshes economyCache (metrics gauges are read synchronously). */
  private async refreshEconomyCache() {
    if (!this.economy) return;
    const s = await this.economy.summary();
    const p = this.economy.prices();
    this.economyCache = { revenueSats: s.revenue, costsSats: s.costs, profitSats: s.profit, cashSats: s.cash, runwayDays: s.runwayDays, utilization: s.utilization, ...p };
  }

  /**
   * A name operation's fee, as the wallet reports it, is NMC the box spent: booked as a cost (at --nmc-rate;
   * 0 sats without one) and taken off the NMC on hand. The 0.01 NMC a name locks stays the wallet's.
   */
  private async bookNameFee(rpc: NamecoinRpc, p: { op: string; name: string; txid: string }) {
    const tx = await rpc.call<{ fee?: number }>('gettransaction', [p.txid]);
    const nmc = Math.round(Math.abs(tx.fee ?? 0) * 1e8);
    this.nmcSpent += nmc;
    const sats = this.config.nmcRate ? Number((BigInt(nmc) * BigInt(this.config.nmcRate)) / 100_000_000n) : 0;
    await this.economy?.spend({ coin: 'NMC', nmc, sats, what: `${p.op} ${p.name} ${p.txid} (fee)` });
  }

  /** NMC base units spent on names since the books began (read back from the spent entries at start) */
  private nmcSpent = 0;

  /**
   * What the console says of NMC: received for files, spent on names, on hand, and how many renewals that
   * pays for (a renewal costs its fee; with --nmc-xpub node the NMC is already in the names' wallet).
   */
  private nmcStatus() {
    const c = this.config;
    if (!c.nmcXpub || !this.ledger) return undefined;
    const received = this.ledger.stats().nmcReceived;
    const onHand = Math.max(0, received - this.nmcSpent);
    return {
      rate: c.nmcRate, wallet: c.nmcXpub === 'node' ? 'the names\' node wallet (income pays the renewals)' : 'the operator\'s (--nmc-xpub): move it to the names\' wallet',
      received, spent: this.nmcSpent, onHand,
      renewalsPaidFor: Math.floor(onHand / RENEWAL_NMC),
      tip: this.ledger.nmcTip(),
    };
  }

  /** The Namecoin chain NMC payments are watched on: mainnet with a mainnet bitcoin, regtest otherwise. */
  private get nmcNetwork() {
    return isMainnet(this.config.network) ? 'namecoin' as const : 'namecoin-regtest' as const;
  }

  /**
   * Paid in NMC too: a file's Namecoin address from the operator's xpub (watch-only, like bitcoin), or with
   * `--nmc-xpub node` a new address of the names' node wallet — NMC paid for files then lands in the wallet
   * that pays for the names' renewals (the operator allows the top-up by choosing it).
   */
  private nmcOptions(): NmcOptions | undefined {
    const c = this.config;
    if (!c.nmcXpub) return undefined;
    const net = networkOf(this.nmcNetwork);
    let allocate: NmcOptions['allocate'];
    if (c.nmcXpub === 'node') {
      allocate = async () => {
        const address = await (await this.namecoinRpc()).call<string>('getnewaddress', ['', 'bech32']);
        return { address, scriptHash: addressScriptHash(address, net) };
      };
    } else {
      let key: ParsedXpub;
      try {
        key = parseXpub(c.nmcXpub, this.nmcNetwork);
      } catch (err) {
        throw new ConfigError(`--nmc-xpub: ${(err as Error).message}`);
      }
      allocate = async (i) => {
        const f = deriveFileAddress(key, i);
        return { address: f.address, scriptHash: f.scriptHash };
      };
    }
    return { rate: c.nmcRate!, confirmations: c.confirmations, allocate };
  }

  /** The names' Namecoin node: --namecoin-rpc, or the embedded devnet's. */
  private async namecoinRpc(): Promise<NamecoinRpc> {
    if (this.nmcRpcClient) return this.nmcRpcClient;
    const c = this.config;
    let url = c.namecoinRpc;
    if (!url) {
      this.devnet ??= await openDevnet({ dir: path.join(c.dataDir, 'devnet') });
      url = this.devnet.namecoinRpcUrl;
    }
    this.nmcRpcClient = new NamecoinRpc({ url, cookieFile: c.namecoinCookie, socks: this.tor?.status().socks, clearnet: c.clearnet });
    return this.nmcRpcClient;
  }

  /** The Namecoin watcher: same budget, same header-chain proof checks as bitcoin's. */
  private async startNmcWatcher() {
    const c = this.config;
    const ledger = this.ledger!;
    let servers = c.nmcElectrum;
    if (servers.length === 0 && this.simulated) servers = [this.devnet!.namecoinElectrumUrl];
    if (servers.length === 0) throw new ConfigError('--nmc-xpub is set but --nmc-electrum is not: give a Namecoin Electrum server (ElectrumX) tcp://HOST:PORT or ssl://HOST:PORT');
    ({ chain: this.nmcChain, watcher: this.nmcWatcher } = await this.openWatcher(this.nmcNetwork, servers, (line) => this.log(`nmc ${line}`),
      (after, limit) => ledger.nmcScriptHashes(after, limit)));
    this.nmcWatcher.on('tip', (tip: { height: number }) => {
      ledger.onNmcTip(tip.height).catch((err) => this.log(`error: ledger nmc tip: ${err}`));
    });
    this.nmcWatcher.on('payments', (sh: string, payments) => {
      ledger.onNmcPayments(sh, payments).catch((err) => this.log(`error: ledger nmc payments: ${err}`));
    });
    ledger.attachNmc(this.nmcWatcher);
    await this.nmcWatcher.start();
  }

  private writeRuntime(onion?: string) {
    if (!this.owner) return;
    const info: RuntimeInfo = { pid: process.pid, host: os.hostname(), version: VERSION, url: this.url, console: this.consoleUrl, onion, started: new Date().toISOString() };
    const text = JSON.stringify(info, null, 2) + '\n';
    if (this.leadership) this.writeShared(runtimePath(this.config.dataDir), text);
    else fs.writeFileSync(runtimePath(this.config.dataDir), text, { mode: 0o600 });
  }

  /**
   * A file every leader of the deployment writes (pid, runtime): written in the background, in order, so that
   * the event loop never waits on the volume for it.
   */
  private writeShared(file: string, text: string) {
    this.sharedWrites = this.sharedWrites.then(() => fs.promises.writeFile(file, text, { mode: 0o600 }))
      .catch((err) => this.log(`store: writing ${path.basename(file)}: ${(err as Error).message}`));
  }

  private announce() {
    const c = this.config;
    const s = this.store!.stats();
    this.log(`bitdrop ${VERSION}`);
    if (!isLoopback(c.listen.host)) {
      this.log(`WARNING   listening on ${c.listen.host}, not loopback (--listen-public): this bitdrop is reachable without Tor`);
    }
    this.log(`serving   ${this.url}/  (curl -T FILE ${this.url}/)`);
    this.log(`storing   ${c.dataDir}  (${s.files} files, ${s.bytes} bytes, ${s.backend} chunk store)`);
    this.log(`console   ${this.consoleUrl}/  (operator only; password: the admin token in ${adminTokenPath(c.dataDir)})`);
    const volume = this.store!.volume;
    if (volume.kind === 'glusterfs') this.log(`volume    ${describeVolume(volume)}`);
    for (const warning of volumeWarnings(volume)) this.log(`WARNING   ${warning}`);
    this.log(`uploads   up to ${humanBytes(c.maxUploadBytes)}`);
    if (this.tor) {
      const t = this.tor.status();
      this.log(t.onion ? `onion     ${this.tor.onionUrl()}  (tor ${t.mode})` : `tor       ${t.mode}: no onion service`);
      if (t.bootstrap < 100) {
        this.log(`WARNING   tor has not reached the Tor network yet (bootstrapped ${t.bootstrap} %): the onion cannot be reached until "tor: bootstrapped 100%" is logged; if it stays, check this machine's network and tor's log`);
      }
    } else {
      this.log('tor       off: reachable on loopback only');
    }
    const missing: string[] = [];
    if (!paymentsEnabled(c)) {
      this.log('prices    none: a free drop box (--free); downloads cost nothing');
    } else {
      this.log(`prices    ${c.storagePrice} sats per GiB per day stored, ${c.transferPrice} sats per GiB sent (pay per use${c.pricing === 'cost' ? ', cost pricing: they follow --costs' : ''})`);
      if (c.pricing === 'cost' && this.economy?.costs) this.log(`          ${describePolicy(this.economy.costs)}`);
      if (this.simulated) {
        this.log(`payments  SIMULATED on an embedded regtest devnet (${this.devnet!.electrumUrl}): nothing real moves, no real coins are asked for or paid`);
        this.log(`          pay a file: ${commandName()} devnet pay <file URL> <sats> --data-dir ${c.dataDir}; then: ${commandName()} devnet mine --data-dir ${c.dataDir}`);
        missing.push('--xpub and --electrum (payments are simulated)');
      } else {
        this.log(`payments  ${c.network} via ${c.electrum.join(', ')}`);
      }
    }
    if (!c.name.length) missing.push('--name (.bit name)');
    else this.log(`names     ${c.name.join(', ')} via ${this.namesVia}`);
    if (missing.length) this.log(`not configured yet: ${missing.join('; ')}`);
    this.log('ready     (Ctrl-C or SIGTERM stops)');
  }

  /** The daemon's state: what the console shows and `bitdrop status` prints (one source for both). */
  async status(): Promise<Record<string, unknown>> {
    const s = this.store!.stats();
    return {
      version: VERSION,
      pid: process.pid,
      uptime: Math.round(process.uptime()),
      listen: this.url,
      console: this.consoleUrl,
      dataDir: this.config.dataDir,
      files: s.files,
      bytes: s.bytes,
      store: { backend: s.backend, chunkSize: s.chunkSize, chunks: s.chunks, chunkBytes: s.chunkBytes },
      payments: this.ledger
        ? {
            mode: this.simulated ? 'simulated' : 'live',
            network: this.config.network,
            storagePrice: this.config.storagePrice,
            transferPrice: this.config.transferPrice,
            pricing: this.config.pricing,
            ...(this.economy ? { books: await this.economy.summary(30) } : {}),
            ...this.ledger.stats(),
            addressPool: this.addressPool?.status(),
            electrum: this.watcher?.status(),
          }
        : { mode: 'free' },
      tor: this.tor ? this.tor.status() : { mode: 'off', bootstrap: 0 },
      onion: this.tor?.status().onion ?? null,
      ...(this.leadership ? { lease: { prefix: this.config.etcdPrefix, term: this.leadership.term, leading: this.leadership.leading() } } : {}),
      names: this.registrar?.status() ?? [],
      ...(this.nmcStatus() ? { nmc: this.nmcStatus() } : {}),
      ...(this.wallet ? { wallet: this.wallet.status() } : {}),
      ...(this.mirrors ? { mirrors: this.mirrors.status() } : {}),
      totals: {
        files: s.files,
        bytes: s.bytes,
        bytesServedSinceStart: this.bytesServed,
        ...(this.ledger ? await this.ledger.totals() : {}),
      },
      events: this.events.recent(50),
    };
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (!this.store) {
        await this.leadership?.release();
        return; // a standby that never took over made nothing to undo
      }
      this.volumeWatch?.stop();
      clearInterval(this.sweepTimer);
      await this.registrar?.stop();
      await this.mirrors?.stop();
      await this.wallet?.stop();
      this.ledger?.stop();
      await this.addressPool?.stop();
      await this.tor?.stop().catch((err) => this.log(`tor: ${err.message}`));
      await this.watcher?.stop();
      await this.nmcWatcher?.stop();
      this.nmcChain?.close();
      if (this.consoleServer) {
        this.consoleServer.close();
        this.consoleServer.closeAllConnections();
      }
      this.chain?.close();
      if (this.server) {
        await new Promise<void>((resolve) => {
          this.server!.close(() => resolve());
          this.server!.closeIdleConnections();
          // Give transfers in flight a moment, then cut them: a stop must not hang on a slow client.
          setTimeout(() => this.server!.closeAllConnections(), 2000).unref();
        });
      }
      await this.sweeps;
      await this.ledger?.settled();
      await this.store?.close();
      // after the store is closed: the next leader may open it as soon as the lease is gone
      await this.leadership?.release();
      await this.devnet?.close();
      // A daemon that never got the data dir (another one holds it) leaves that one's files alone; so does a
      // leader whose lease is given back: the next leader may have written them already.
      if (this.owner && !this.leadership) {
        fs.rmSync(runtimePath(this.config.dataDir), { force: true });
        fs.rmSync(pidPath(this.config.dataDir), { force: true });
      }
    })();
    return this.stopping;
  }
}

function urlOf(addr: AddressInfo): string {
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

/** The runtime file of the daemon using `dataDir`, if any (it may be stale after a kill -9). */
export function readRuntime(dataDir: string): RuntimeInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(runtimePath(dataDir), 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
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

/** The data dir's LevelDB is locked by another process: say which bitdrop holds it. */
function heldBy(dataDir: string): Error {
  let pid = '';
  try { pid = fs.readFileSync(pidPath(dataDir), 'utf8').trim(); } catch { /* not written yet */ }
  const runtime = readRuntime(dataDir);
  pid ||= runtime?.pid ? String(runtime.pid) : '';
  const where = runtime?.host && runtime.host !== os.hostname() ? ` on ${runtime.host}` : '';
  return new Error(`another bitdrop${pid ? ` (pid ${pid}${where})` : ''} is using ${dataDir}; stop it first, choose another --data-dir, or wait with --standby`);
}

/**
 * A data dir made before (by hand, or by an older bitdrop) may be readable by others: the dir and what
 * bitdrop keeps in it become its user's only. Chunk payloads are not walked one by one: their
 * directories are closed, which is enough, and a large store would take long to walk.
 */
export async function tightenPermissions(dataDir: string, skip: (relative: string) => boolean = () => false): Promise<void> {
  const fsp = fs.promises;
  const walk = async (dir: string, depth: number) => {
    await chmodIfOpen(dir, 0o700);
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (skip(path.relative(dataDir, full))) continue;
      if (entry.isDirectory()) {
        const payloads = path.relative(dataDir, dir) === 'chunks' && /^[0-9a-f]{2}$/.test(entry.name);
        if (payloads) await chmodIfOpen(full, 0o700);
        else if (depth < 8) await walk(full, depth + 1);
      } else if (entry.isFile()) {
        await chmodIfOpen(full, 0o600);
      }
    }
  };
  await walk(dataDir, 0);
}

/**
 * With a leader lease, what the start-up permission walk leaves alone: the database directories of other
 * terms and every chunk temp dir — files a stopped daemon of an earlier term may be writing. A lookup there
 * can wait as long as that daemon's GlusterFS client is stopped (lib/store/blobs.ts#prepare).
 */
const otherTermsFiles = (term: number) => (relative: string) =>
  relative === path.join('chunks', 'tmp') || (/^db\.t\d+/.test(relative) && relative !== `db.t${term}`) || relative === 'db';

async function chmodIfOpen(file: string, mode: number) {
  try {
    if (((await fs.promises.stat(file)).mode & 0o077) !== 0) await fs.promises.chmod(file, mode);
  } catch { /* gone meanwhile, or not ours to change: tor checks its own dir */ }
}
