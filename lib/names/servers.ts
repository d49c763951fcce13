// Where .bit names are resolved when the user names no node and no server: the public Namecoin ElectrumX
// servers Electrum-NMC ships (namecoin/electrum-nmc, electrum_nmc/electrum/servers.json; same shape: host →
// "s" TLS port, "t" plain TCP port, protocol version). By default two of its onion servers that speak protocol
// 1.4.3 (blockchain.name.get_value_proof) are asked over TLS through tor, and they must agree (lookupName).
// An onion address authenticates the server by itself, so their (usually self-signed) certificates are not
// checked against a CA (lib/payments/electrum.ts); every answer is checked by proofs anyway.
//
// chooseNameResolver is the one place that decides which path a `bitdrop resolve` / `bitdrop names-proxy`
// takes given its flags, so the choice is tested without reaching any network.

interface ServerEntry {
  /** TLS port */
  s?: string;
  /** plain TCP port */
  t?: string;
  pruning: string;
  version: string;
}

/** Electrum-NMC's servers.json, as shipped. */
export const ELECTRUM_NMC_SERVERS: Readonly<Record<string, ServerEntry>> = {
  '188.167.144.126': { pruning: '-', s: '50002', version: '1.4' },
  '198.50.223.25': { pruning: '-', s: '50002', version: '1.4.3' },
  '198.50.223.26': { pruning: '-', s: '50002', version: '1.4.3' },
  '198.50.223.27': { pruning: '-', s: '50002', version: '1.4.3' },
  '198.50.223.28': { pruning: '-', s: '50002', version: '1.4.3' },
  '2607:5300:203:7ac5:198:50:223:25': { pruning: '-', s: '50002', version: '1.4.3' },
  '2607:5300:203:7ac5:198:50:223:26': { pruning: '-', s: '50002', version: '1.4.3' },
  '2607:5300:203:7ac5:198:50:223:27': { pruning: '-', s: '50002', version: '1.4.3' },
  '2607:5300:203:7ac5:198:50:223:28': { pruning: '-', s: '50002', version: '1.4.3' },
  '46.229.238.187': { pruning: '-', s: '57002', version: '1.4' },
  'h6qrnwxtwiaahsw4qhk2nbutswwb54vnqso6jrxeuk6nwtfbos7jkoqd.onion': { pruning: '-', s: '50002', version: '1.4.3' },
  '82.119.233.36': { pruning: '-', s: '50002', version: '1.4' },
  'electrum.namebrow.se': { pruning: '-', s: '50002', version: '1.4' },
  'electrum-nmc.le-space.de': { pruning: '-', s: '50002', version: '1.4' },
  'electrumx1.nmc.dotbit.zone': { pruning: '-', s: '50002', version: '1.4.3' },
  'electrumx2.nmc.dotbit.zone': { pruning: '-', s: '50002', version: '1.4.3' },
  'electrumx3.nmc.dotbit.zone': { pruning: '-', s: '50002', version: '1.4.3' },
  'electrumx4.nmc.dotbit.zone': { pruning: '-', s: '50002', version: '1.4.3' },
  'mqhok2edqcxdpklwovquuvvl2q5or4g2o777qwrinydgzfxjbixq76yd.onion': { pruning: '-', s: '50002', version: '1.4.3' },
  'nmc.bitcoins.sk': { pruning: '-', s: '50002', version: '1.4' },
  'nmc2.bitcoins.sk': { pruning: '-', s: '57002', version: '1.4' },
  'wirg2tsto7rme7n26lkd3ivbvxmjyy2pktlozwjuep22jcsfsghfqbqd.onion': { pruning: '-', s: '50002', version: '1.4.3' },
  'ulrichard.ch': { pruning: '-', s: '50006', t: '50005', version: '1.4' },
  'quuzpffsddq3aim3gk4oiczzyt5okjjzf4zpe6okzo6qidao6rshynqd.onion': { pruning: '-', s: '50002', version: '1.4.3' },
};

/** How many servers the default asks; all must give the same answer. */
export const DEFAULT_SERVER_COUNT = 2;

const versionAtLeast = (v: string, min: number[]) => {
  const parts = v.split('.').map(Number);
  for (let i = 0; i < min.length; i++) {
    const a = parts[i] ?? 0;
    if (a !== min[i]) return a > min[i];
  }
  return true;
};

/** One server entry → its URL: ssl://HOST:PORT when it has a TLS port, else tcp://HOST:PORT; IPv6 in brackets. */
export function entryUrl(host: string, e: ServerEntry): string | undefined {
  const h = host.includes(':') ? `[${host}]` : host;
  if (e.s) return `ssl://${h}:${e.s}`;
  if (e.t) return `tcp://${h}:${e.t}`;
  return undefined;
}

/**
 * The servers a default lookup may ask: onion services that speak protocol 1.4.3 (name proofs), TLS preferred.
 * Clearnet servers of the list are left out: a .bit lookup should not show an exit relay or a server's ISP
 * which name you open.
 */
export function defaultServerPool(list: Readonly<Record<string, ServerEntry>> = ELECTRUM_NMC_SERVERS): string[] {
  return Object.entries(list)
    .filter(([host, e]) => host.endsWith('.onion') && versionAtLeast(e.version, [1, 4, 3]))
    .map(([host, e]) => entryUrl(host, e))
    .filter((u): u is string => u !== undefined);
}

/** `count` distinct servers of the pool, picked at random (a fresh pick per lookup spreads load and outages). */
export function pickServers(pool: string[], count = DEFAULT_SERVER_COUNT, random: () => number = Math.random): string[] {
  const left = [...pool];
  const out: string[] = [];
  while (out.length < count && left.length > 0) out.push(left.splice(Math.floor(random() * left.length), 1)[0]);
  return out;
}

export type NameResolverChoice =
  | { kind: 'electrum'; servers: string[]; builtIn: false }
  /** the built-in list: `pick()` chooses DEFAULT_SERVER_COUNT of `pool` for each lookup */
  | { kind: 'electrum'; pool: string[]; pick: () => string[]; builtIn: true }
  /** a Namecoin node: `url` when one was named, else the node of the data dir's devnet */
  | { kind: 'node'; url?: string };

export interface ResolverFlags {
  /** --electrum-nmc (or BITDROP_ELECTRUM_NMC) */
  electrumNmc?: string[];
  /** --namecoin-rpc (or BITDROP_NAMECOIN_RPC / the config file) */
  namecoinRpc?: string;
  /** --data-dir (or BITDROP_DATA_DIR) was given: ask its devnet's node */
  dataDir?: string;
  network: 'namecoin' | 'namecoin-regtest';
  random?: () => number;
}

/**
 * Which path resolves a name: the Electrum servers given; else the node given; else the node of the given
 * data dir's devnet; else, by default, proof-checked Electrum over the built-in onion servers (mainnet only).
 */
export function chooseNameResolver(f: ResolverFlags): NameResolverChoice {
  const servers = (f.electrumNmc ?? []).map((s) => s.trim()).filter(Boolean);
  if (servers.length > 0) return { kind: 'electrum', servers, builtIn: false };
  if (f.namecoinRpc) return { kind: 'node', url: f.namecoinRpc };
  if (f.dataDir) return { kind: 'node' };
  if (f.network !== 'namecoin') {
    throw new Error(`no Namecoin Electrum server is built in for ${f.network}: give --electrum-nmc tcp://HOST:PORT, --namecoin-rpc or --data-dir`);
  }
  const pool = defaultServerPool();
  return { kind: 'electrum', pool, pick: () => pickServers(pool, DEFAULT_SERVER_COUNT, f.random), builtIn: true };
}
