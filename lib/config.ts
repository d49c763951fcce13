// One typed configuration for the whole daemon.
// Sources, highest first: command-line flags > BITDROP_* environment > config file (JSON) > defaults.
// Every option has one canonical camelCase key; the flag is its kebab-case form and the env variable
// is BITDROP_ + SCREAMING_SNAKE (dataDir → --data-dir → BITDROP_DATA_DIR).

import fs from 'fs';
import path from 'path';

export type NetworkName = 'bitcoin' | 'testnet' | 'signet' | 'regtest' | 'namecoin' | 'namecoin-regtest';
export type TorMode = 'managed' | 'attach' | 'off';

export interface Config {
  configFile?: string;
  dataDir: string;
  listen: { host: string; port: number };
  /** Allow a non-loopback --listen (the onion host should never be reachable on clearnet by accident). */
  listenPublic: boolean;
  /** The operator console's listener (loopback only; never published on the onion). */
  console: { host: string; port: number };
  /** Absolute base URL printed in upload answers; when unset it is derived from the request's Host. */
  publicUrl?: string;
  maxUploadBytes: number;
  /** hot standby: hold nothing and serve nothing until the data dir (on a shared volume) is free, then take over */
  standby: boolean;
  /** etcd endpoints (http://HOST:PORT) holding the leader lease: with them, one daemon of a deployment serves at a time (lib/lease) */
  etcd: string[];
  /** the deployment's key prefix in etcd (every daemon of one data dir uses the same) */
  etcdPrefix: string;
  /** seconds of the leader lease; the leader fences itself well before it runs out */
  leaseTtl: number;
  /** 'debug' also logs what is routine on the internet: clients gone mid-request, malformed requests */
  logLevel: 'info' | 'debug';
  /** text: readable lines; json: one JSON object a line (pino) */
  logFormat: 'text' | 'json';

  // payments (issue: pay per use)
  network: NetworkName;
  xpub?: string;
  electrum: string[];
  confirmations: number;
  /** satoshis per GiB per day of storage */
  storagePrice: number;
  /** satoshis per GiB sent */
  transferPrice: number;
  /** a free drop box: both prices 0 (pay per use is the default) */
  free: boolean;
  /** fixed: --storage-price and --transfer-price; cost: prices follow --costs (lib/economy) */
  pricing: 'fixed' | 'cost';
  /** what the box costs: a JSON file's path, or (config file) the object itself */
  costs?: string | Record<string, unknown>;
  /** paid in NMC too: the operator's Namecoin xpub, or "node" (addresses of the names' node wallet) */
  nmcXpub?: string;
  /** Electrum servers of the Namecoin chain (ElectrumX) */
  nmcElectrum: string[];
  /** sats per NMC, the operator's rate */
  nmcRate?: number;
  /** milliseconds a file may stay negative before it is deleted */
  grace: number;
  /** milliseconds an unpaid upload is kept */
  unpaidTtl: number;
  maxUnpaidBytes: number;
  /** most Electrum subscriptions held at once */
  watchBudget: number;
  /** file addresses derived ahead in a worker thread (0: derive each at upload) */
  addressPool: number;
  /** allow Electrum / Namecoin connections to non-loopback hosts outside Tor */
  clearnet: boolean;

  // tor
  tor: TorMode;
  torControl?: string;
  torPassword?: string;
  torBinary: string;
  /** a file of extra torrc lines appended to the managed tor's torrc (bridges, test networks) */
  torrcAppend?: string;
  /** onion DoS defences (tor's ADD_ONION): proof-of-work at the introduction, and its queue */
  onionPow: boolean;
  onionPowQueueRate: number;
  onionPowQueueBurst: number;
  /** most streams per rendezvous circuit; a circuit asking for more is closed (0: no limit) */
  onionMaxStreams: number;

  // names (Namecoin)
  namecoinRpc?: string;
  /** the node's .cookie file, when the URL carries no user:password */
  namecoinCookie?: string;
  /** how often the registrar asks the node (milliseconds); default 200 ms for a node on this machine, 10 s for others */
  namecoinPoll?: number;
  /** Namecoin names to register and renew, e.g. d/example for example.bit */
  name: string[];
  /** a file holding extra JSON merged into each name's value */
  nameValue?: string;

  // mirrors and the operating wallet (lib/mirrors, lib/wallet)
  /** other drop boxes that keep copies of this one's files: onion, .bit or (tests) loopback URLs */
  mirror: string[];
  /** which files are mirrored: all, or downloads>=N (N whole downloads' worth of bytes sent) */
  mirrorPolicy: string;
  /** sats (amounts plus fees) the operating wallet may spend per rolling 24 hours; 0 spends nothing */
  spendLimit: number;
  /** how often the mirrors are brought up to date: uploads, payments (milliseconds) */
  mirrorSync: number;
  /** each mirrored file is audited once per this interval on average, at random times (milliseconds) */
  mirrorAudit: number;
  /** a mirror asking more than this (sats per GiB per day stored) is dropped */
  mirrorMaxPrice: number;
  /** CDN: percent of whole-file downloads served through mirrors (proxied, then redirected) */
  mirrorCdn: number;
  /** CDN: above this many downloads in flight, downloads are served through mirrors (0: never) */
  mirrorCdnOver: number;
}

export class ConfigError extends Error {}

type Kind = 'string' | 'int' | 'bytes' | 'duration' | 'bool' | 'list' | 'hostport' | 'fileOrObject';

interface OptionSpec {
  key: keyof Config;
  kind: Kind;
  describe: string;
  choices?: readonly string[];
}

/** Every option, in the order `bitdrop start --help` and the README list them. */
export const OPTIONS: readonly OptionSpec[] = [
  { key: 'dataDir', kind: 'string', describe: 'where files and state are stored' },
  { key: 'listen', kind: 'hostport', describe: 'HTTP listener HOST:PORT' },
  { key: 'listenPublic', kind: 'bool', describe: 'allow a non-loopback --listen address' },
  { key: 'console', kind: 'hostport', describe: 'operator console HOST:PORT (loopback only, admin token)' },
  { key: 'publicUrl', kind: 'string', describe: 'base URL printed in upload answers' },
  { key: 'maxUploadBytes', kind: 'bytes', describe: 'largest accepted upload (bytes, or 5GiB, 100MB …)' },
  { key: 'logFormat', kind: 'string', describe: 'log lines: text (readable) or json (one object a line)', choices: ['text', 'json'] },
  { key: 'logLevel', kind: 'string', describe: 'log level (debug adds dropped connections and malformed requests)', choices: ['info', 'debug'] },
  { key: 'standby', kind: 'bool', describe: 'wait as a hot standby until the leader lease in etcd is free, then take over (needs --etcd)' },
  { key: 'etcd', kind: 'list', describe: 'etcd endpoint http://HOST:PORT holding the leader lease (repeatable; one per member)' },
  { key: 'etcdPrefix', kind: 'string', describe: 'key prefix of this deployment in etcd (same for every daemon of one data dir)' },
  { key: 'leaseTtl', kind: 'int', describe: 'seconds of the leader lease (takeover after a failure ≤ this + a few s)' },
  { key: 'network', kind: 'string', describe: 'coin network', choices: ['bitcoin', 'testnet', 'signet', 'regtest', 'namecoin', 'namecoin-regtest'] },
  { key: 'xpub', kind: 'string', describe: 'watch-only extended public key (xpub/tpub/zpub/vpub)' },
  { key: 'electrum', kind: 'list', describe: 'Electrum server tcp://HOST:PORT or ssl://HOST:PORT (repeatable)' },
  { key: 'confirmations', kind: 'int', describe: 'confirmations before a payment counts' },
  { key: 'storagePrice', kind: 'int', describe: 'satoshis per GiB per day stored' },
  { key: 'transferPrice', kind: 'int', describe: 'satoshis per GiB downloaded' },
  { key: 'free', kind: 'bool', describe: 'run a free drop box (both prices 0)' },
  { key: 'pricing', kind: 'string', describe: 'fixed (the prices above) or cost (prices follow --costs)', choices: ['fixed', 'cost'] },
  { key: 'nmcXpub', kind: 'string', describe: 'accept NMC too: a Namecoin xpub for file addresses, or "node" (the names\' node wallet: NMC income pays for renewals)' },
  { key: 'nmcElectrum', kind: 'list', describe: 'Namecoin Electrum server (ElectrumX) tcp://HOST:PORT or ssl://HOST:PORT (repeatable)' },
  { key: 'nmcRate', kind: 'int', describe: 'sats per NMC, for files paid in NMC (no price oracle)' },
  { key: 'costs', kind: 'fileOrObject', describe: 'JSON file of what the box costs: {"monthlySats", "disk", "egressSatsPerGiB", "margin"} (the books; cost pricing)' },
  { key: 'grace', kind: 'duration', describe: 'how long a negative balance is kept before deletion (7d, 12h …)' },
  { key: 'unpaidTtl', kind: 'duration', describe: 'how long an unpaid upload is kept' },
  { key: 'maxUnpaidBytes', kind: 'bytes', describe: 'total bytes of uploads awaiting payment' },
  { key: 'watchBudget', kind: 'int', describe: 'most Electrum subscriptions held at once' },
  { key: 'addressPool', kind: 'int', describe: 'file addresses derived ahead in the background (0: each derived at its upload)' },
  { key: 'clearnet', kind: 'bool', describe: 'allow outbound connections outside Tor' },
  { key: 'tor', kind: 'string', describe: 'tor mode', choices: ['managed', 'attach', 'off'] },
  { key: 'torControl', kind: 'string', describe: 'control port of an existing tor (HOST:PORT or unix:PATH)' },
  { key: 'torPassword', kind: 'string', describe: 'control port password (attach mode)' },
  { key: 'torBinary', kind: 'string', describe: 'tor executable for managed mode' },
  { key: 'torrcAppend', kind: 'string', describe: 'file of extra torrc lines for the managed tor' },
  { key: 'onionPow', kind: 'bool', describe: 'proof-of-work DoS defence at the onion\'s introduction points (on|off)' },
  { key: 'onionPowQueueRate', kind: 'int', describe: 'introductions handled per second from the proof-of-work queue' },
  { key: 'onionPowQueueBurst', kind: 'int', describe: 'largest burst handled from the proof-of-work queue' },
  { key: 'onionMaxStreams', kind: 'int', describe: 'streams per Tor circuit before the circuit is closed (0: no limit)' },
  { key: 'namecoinRpc', kind: 'string', describe: 'Namecoin Core JSON-RPC URL http://user:pass@host:port[/wallet/NAME] (none: the embedded devnet)' },
  { key: 'namecoinCookie', kind: 'string', describe: "the Namecoin node's .cookie file (instead of user:pass in the URL)" },
  { key: 'namecoinPoll', kind: 'duration', describe: 'how often the Namecoin node is asked for its tip (default 200ms on loopback, 10s remote)' },
  { key: 'name', kind: 'list', describe: 'Namecoin name to register and renew, d/example for example.bit (repeatable)' },
  { key: 'nameValue', kind: 'string', describe: "file of extra JSON merged into the names' value (≤ 520 bytes in all)" },
  { key: 'mirror', kind: 'list', describe: 'another bitdrop that keeps copies of the files, paid from the operating wallet: an onion, a .bit name or a loopback URL (repeatable)' },
  { key: 'mirrorPolicy', kind: 'string', describe: "which files are mirrored: all, or downloads>=N" },
  { key: 'spendLimit', kind: 'int', describe: 'sats the operating wallet may spend per 24 hours, fees included (0: nothing)' },
  { key: 'mirrorSync', kind: 'duration', describe: 'how often mirrors are brought up to date (uploads, payments)' },
  { key: 'mirrorAudit', kind: 'duration', describe: 'each mirrored file is audited (a random byte range fetched) once per this interval on average' },
  { key: 'mirrorMaxPrice', kind: 'int', describe: 'drop a mirror asking more than this many sats per GiB per day stored' },
  { key: 'mirrorCdn', kind: 'int', describe: 'percent of downloads served through mirrors (proxied and checked, then redirected)' },
  { key: 'mirrorCdnOver', kind: 'int', describe: 'serve downloads through mirrors while more than this many are in flight here (0: never)' },
];

const GiB = 1024 ** 3;

/**
 * Default prices, from what storage and Tor bandwidth cost an operator (README, "Prices"): block storage on a
 * rented server is about $0.05 per GiB per month, egress about $0.01 per GiB; at $100,000 per bitcoin
 * (1 sat = $0.001) that is ~2 sats per GiB per day and 10 sats per GiB sent.
 */
export const DEFAULT_STORAGE_PRICE = 2;
export const DEFAULT_TRANSFER_PRICE = 10;

export function defaults(): Config {
  return {
    dataDir: './bitdrop-data',
    listen: { host: '127.0.0.1', port: 8080 },
    listenPublic: false,
    console: { host: '127.0.0.1', port: 8081 },
    maxUploadBytes: 5 * GiB,
    standby: false,
    etcd: [],
    etcdPrefix: '/bitdrop/default',
    leaseTtl: 10,
    logLevel: 'info',
    logFormat: 'text',
    network: 'regtest',
    electrum: [],
    nmcElectrum: [],
    confirmations: 1,
    storagePrice: DEFAULT_STORAGE_PRICE,
    transferPrice: DEFAULT_TRANSFER_PRICE,
    free: false,
    pricing: 'fixed',
    grace: 7 * 86400_000,
    unpaidTtl: 86400_000,
    maxUnpaidBytes: 10 * GiB,
    watchBudget: 500,
    addressPool: 1000,
    clearnet: false,
    tor: 'managed',
    name: [],
    torBinary: 'tor',
    // tor's own defaults for the queue (tor(1): HiddenServicePoWQueueRate 250, HiddenServicePoWQueueBurst 2500)
    onionPow: true,
    onionPowQueueRate: 250,
    onionPowQueueBurst: 2500,
    // A browser opens a handful of streams per circuit; a page with its assets stays far below this.
    onionMaxStreams: 64,
    mirror: [],
    mirrorPolicy: 'all',
    spendLimit: 0,
    mirrorSync: 300_000,
    mirrorAudit: 6 * 3_600_000,
    mirrorMaxPrice: 10 * DEFAULT_STORAGE_PRICE,
    mirrorCdn: 0,
    mirrorCdnOver: 0,
  };
}

export const flagName = (key: string) => key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
export const envName = (key: string) => 'BITDROP_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();

const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new ConfigError(`"${text}" is not a size (try 1048576, 100MB or 5GiB)`);
  return Math.floor(Number(m[1]) * unit);
}

const DURATIONS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "7d", "12h", "90m", "30s", "250ms"; a bare number is seconds. Returns milliseconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/i.exec(text);
  if (!m) throw new ConfigError(`"${text}" is not a duration (try 7d, 24h, 30m or 45s)`);
  return Math.round(Number(m[1]) * DURATIONS[(m[2] ?? 's').toLowerCase()]);
}

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(text.trim()) ?? /^()(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`"${text}" is not HOST:PORT (try 127.0.0.1:8080)`);
  return { host: m[1] || '127.0.0.1', port };
}

function convert(spec: OptionSpec, raw: unknown, source: string): unknown {
  const where = source;
  try {
    switch (spec.kind) {
      case 'string': {
        const s = String(raw);
        if (spec.choices && !spec.choices.includes(s)) {
          throw new ConfigError(`"${s}" is not one of ${spec.choices.join(', ')}`);
        }
        return s;
      }
      case 'int': {
        const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
        if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`"${raw}" is not a whole number ≥ 0`);
        return n;
      }
      case 'bytes':
        return typeof raw === 'number' ? raw : parseBytes(String(raw));
      case 'duration':
        return typeof raw === 'number' ? raw * 1000 : parseDuration(String(raw));
      case 'bool': {
        if (typeof raw === 'boolean') return raw;
        const s = String(raw).toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(s)) return true;
        if (['0', 'false', 'no', 'off'].includes(s)) return false;
        throw new ConfigError(`"${raw}" is not true or false`);
      }
      case 'list':
        if (Array.isArray(raw)) return raw.map(String);
        return String(raw).split(',').map((s) => s.trim()).filter(Boolean);
      case 'hostport':
        return parseHostPort(String(raw));
      case 'fileOrObject':
        return raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : String(raw);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${where}: ${err.message}`);
    throw err;
  }
}

export interface ConfigSources {
  /** already-parsed command-line values keyed by camelCase option name (undefined = not given) */
  flags?: Partial<Record<keyof Config, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** path of a JSON config file; also taken from flags.configFile / BITDROP_CONFIG */
  file?: string;
}

/** Builds the effective configuration. Throws ConfigError with one readable line on bad input. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const flags = sources.flags ?? {};
  const cfg = defaults() as unknown as Record<string, unknown>;
  /** option keys some source set (so --free can tell a default price from a chosen one) */
  const given = new Set<string>();
  const file = (flags.configFile as string | undefined) ?? env.BITDROP_CONFIG ?? sources.file;
  if (file) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    for (const [k, v] of Object.entries(parsed)) {
      const spec = OPTIONS.find((o) => o.key === k || flagName(o.key) === k);
      if (!spec) throw new ConfigError(`config file ${file}: unknown key "${k}"`);
      cfg[spec.key] = convert(spec, v, `config file ${file}: ${k}`);
      given.add(spec.key);
    }
    cfg.configFile = path.resolve(file);
  }
  for (const spec of OPTIONS) {
    const v = env[envName(spec.key)];
    if (v !== undefined && v !== '') { cfg[spec.key] = convert(spec, v, envName(spec.key)); given.add(spec.key); }
  }
  for (const spec of OPTIONS) {
    const v = flags[spec.key];
    if (v !== undefined) { cfg[spec.key] = convert(spec, v, `--${flagName(spec.key)}`); given.add(spec.key); }
  }
  if (cfg.free) {
    for (const key of ['storagePrice', 'transferPrice'] as const) {
      if (given.has(key) && cfg[key] !== 0) {
        throw new ConfigError(`--free and --${flagName(key)} ${cfg[key]} contradict each other: a free drop box has no prices`);
      }
      cfg[key] = 0;
    }
  } else if (cfg.storagePrice === 0 && cfg.transferPrice === 0) {
    cfg.free = true;
  }
  const config = cfg as unknown as Config;
  config.dataDir = path.resolve(config.dataDir);
  validate(config);
  return config;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
/** How the operator ran us, for commands we print: `npx bitdrop` when started through npx (npm sets
 * npm_command=exec), plain `bitdrop` when it is on PATH. */
export function commandName(env: NodeJS.ProcessEnv = process.env): string {
  return env.npm_command === 'exec' ? 'npx bitdrop' : 'bitdrop';
}

export const isLoopback = (host: string) => LOOPBACK.test(host);

function validate(c: Config): void {
  // example.bit is accepted for d/example; anything else must be a d/ name a .bit domain maps to.
  c.name = c.name.map((n) => {
    const m = /^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.bit$/.exec(n.toLowerCase());
    const name = m ? `d/${m[1]}` : n;
    if (!/^d\/[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new ConfigError(`--name ${n}: expected d/NAME (d/example is example.bit), lowercase letters, digits and -`);
    return name;
  });
  c.name = [...new Set(c.name)];
  if (c.namecoinRpc && !/^https?:\/\/[^/]+(\/wallet\/[^/]*)?\/?$/.test(c.namecoinRpc)) {
    throw new ConfigError(`--namecoin-rpc: expected http://user:password@HOST:PORT[/wallet/NAME]`);
  }
  if (!isLoopback(c.listen.host) && !c.listenPublic) {
    throw new ConfigError(
      `--listen ${c.listen.host}:${c.listen.port} is not a loopback address; add --listen-public if you really want clearnet exposure`,
    );
  }
  if (!isLoopback(c.console.host)) {
    throw new ConfigError(`--console ${c.console.host}:${c.console.port} is not a loopback address: the console is for the operator on this machine only`);
  }
  if (c.nmcXpub && !c.nmcRate) throw new ConfigError('--nmc-xpub needs --nmc-rate (sats per NMC): bitdrop uses no price oracle');
  if (c.nmcXpub === 'node' && c.name.length === 0) throw new ConfigError('--nmc-xpub node pays NMC into the names\' node wallet: give --name (and --namecoin-rpc)');
  for (const url of c.nmcElectrum) {
    if (!/^(tcp|ssl):\/\/([^:/#\[\]]+|\[[^\]]+\]):\d+(#sha256=[0-9A-Fa-f:]+)?$/.test(url)) throw new ConfigError(`--nmc-electrum ${url}: expected tcp://HOST:PORT or ssl://HOST:PORT[#sha256=FINGERPRINT]`);
  }
  if (c.pricing === 'cost' && !c.costs) throw new ConfigError('--pricing cost needs --costs FILE (what the box costs: monthlySats, disk, egressSatsPerGiB, margin)');
  if (c.pricing === 'cost' && c.free) throw new ConfigError('--pricing cost and --free contradict each other: a free drop box has no prices');
  if (c.maxUploadBytes < 1) throw new ConfigError('maxUploadBytes must be at least 1');
  if (c.tor === 'attach' && !c.torControl) throw new ConfigError('--tor attach needs --tor-control HOST:PORT or unix:PATH');
  for (const url of c.electrum) {
    // ssl:// may pin a self-signed certificate: ssl://HOST:PORT#sha256=<fingerprint> (lib/payments/electrum.ts)
    if (!/^(tcp|ssl):\/\/([^:/#\[\]]+|\[[^\]]+\]):\d+$/.test(url) && !/^ssl:\/\/([^:/#\[\]]+|\[[^\]]+\]):\d+#sha256=[0-9A-Fa-f:]+$/.test(url)) {
      throw new ConfigError(`--electrum ${url}: expected tcp://HOST:PORT or ssl://HOST:PORT[#sha256=FINGERPRINT]`);
    }
  }
  if (c.standby && c.etcd.length === 0) {
    throw new ConfigError('--standby needs --etcd: without a leader lease in etcd two daemons could serve the same data dir at once (docs/scale-out.md)');
  }
  for (const url of c.etcd) {
    if (!/^https?:\/\/([^:/\[\]]+|\[[^\]]+\]):\d+\/?$/.test(url)) throw new ConfigError(`--etcd ${url}: expected http://HOST:PORT (an etcd member's client URL)`);
  }
  if (!/^\/[\x21-\x7e]*$/.test(c.etcdPrefix)) throw new ConfigError(`--etcd-prefix ${c.etcdPrefix}: expected a key prefix starting with /, e.g. /bitdrop/site1`);
  if (c.leaseTtl < 5 || c.leaseTtl > 300) throw new ConfigError(`--lease-ttl ${c.leaseTtl}: expected 5 to 300 seconds`);
  if (c.mirrorCdn > 100) throw new ConfigError(`--mirror-cdn ${c.mirrorCdn}: a percentage, 0 to 100`);
  if (!/^(all|downloads>=\d+)$/.test(c.mirrorPolicy)) throw new ConfigError(`--mirror-policy ${c.mirrorPolicy}: expected all or downloads>=N`);
  c.mirror = c.mirror.map((u) => {
    const url = /^[a-z0-9.-]+\.(onion|bit)$/i.test(u) ? `http://${u}` : u.replace(/\/+$/, '');
    let parsed: URL;
    try { parsed = new URL(url); } catch { throw new ConfigError(`--mirror ${u}: expected an onion, a .bit name or http://HOST:PORT`); }
    if (!/^https?:$/.test(parsed.protocol) || !(/\.(onion|bit)$/i.test(parsed.hostname) || isLoopback(parsed.hostname.replace(/^\[|\]$/g, '')) || c.clearnet)) {
      throw new ConfigError(`--mirror ${u}: expected an .onion or .bit address (a loopback URL for tests; others need --clearnet)`);
    }
    return url;
  });
  c.mirror = [...new Set(c.mirror)];
  if (c.publicUrl && !/^https?:\/\/[^/]+/.test(c.publicUrl)) throw new ConfigError(`--public-url ${c.publicUrl}: expected http://HOST[:PORT]`);
}

/** Payments are on unless the box is free (--free, or both prices 0). */
export const paymentsEnabled = (c: Config) => !c.free && (c.storagePrice > 0 || c.transferPrice > 0);
