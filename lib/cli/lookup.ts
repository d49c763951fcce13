// A .bit name to its onion, as `bitdrop resolve` and `bitdrop get` do it: proof-checked Namecoin Electrum
// servers (by default two of Electrum-NMC's onion servers, through tor), or a Namecoin node.

import path from 'path';
import { loadConfig } from '../config';
import { NamecoinRpc, chooseNameResolver, resolveName, resolveNameElectrum, type Resolution } from '../names';
import { tcpReachable } from '../net/reachable';
import { readDevnetInfo } from '../devnet/wallet';

export interface LookupOptions {
  namecoinRpc?: string;
  namecoinCookie?: string;
  dataDir?: string;
  socks?: { host: string; port: number };
  clearnet?: boolean;
  electrumNmc?: string[];
  /** undefined: the given servers' genesis hash (server.features) says which network they serve */
  nmcNetwork?: 'namecoin' | 'namecoin-regtest';
}

export async function lookupName(domain: string, opts: LookupOptions): Promise<Resolution> {
  const config = loadConfig({ flags: { dataDir: opts.dataDir, namecoinRpc: opts.namecoinRpc, namecoinCookie: opts.namecoinCookie } });
  const { socks } = opts;
  const clearnet = opts.clearnet ?? config.clearnet;
  const envList = process.env.BITDROP_ELECTRUM_NMC?.split(',').map((s) => s.trim()).filter(Boolean);
  const choice = chooseNameResolver({ electrumNmc: opts.electrumNmc ?? envList, namecoinRpc: config.namecoinRpc,
    dataDir: opts.dataDir ?? process.env.BITDROP_DATA_DIR, network: opts.nmcNetwork ?? 'namecoin' });
  // checked headers are kept in the data dir, so the next lookup only fetches new ones
  const chainDirFor = (network: string) => path.join(config.dataDir, 'chain', network);
  const chainDir = chainDirFor(opts.nmcNetwork ?? 'namecoin');
  if (choice.kind === 'electrum' && !choice.builtIn) {
    // without --nmc-network the first server's genesis hash (server.features) says which network it is
    return resolveNameElectrum(domain, { servers: choice.servers, network: opts.nmcNetwork, chainDir: opts.nmcNetwork && chainDir, chainDirFor, socks, clearnet, timeoutMs: 30_000 });
  }
  if (choice.kind === 'electrum') {
    // the default: Electrum-NMC's onion servers, reached through tor
    const tor = socks ?? { host: '127.0.0.1', port: 9050 };
    if (!(await tcpReachable(tor.host, tor.port))) {
      throw new Error(`tor is not reachable at ${tor.host}:${tor.port}: start tor or give its SocksPort (--socks HOST:PORT), or resolve through --electrum-nmc URL or --namecoin-rpc URL`);
    }
    return resolveNameElectrum(domain, { servers: choice.pick(), network: opts.nmcNetwork ?? 'namecoin', chainDir, socks: tor, clearnet, timeoutMs: 60_000 });
  }
  const url = choice.url ?? namecoinNodeOf(config.dataDir);
  const rpc = new NamecoinRpc({ url, cookieFile: config.namecoinCookie, socks, clearnet, timeoutMs: 15_000, retries: 1 });
  return resolveName(domain, rpc);
}

/** The Namecoin node a daemon's data dir uses when no --namecoin-rpc is given: its embedded devnet's. */
export function namecoinNodeOf(dataDir: string): string {
  let info;
  try {
    info = readDevnetInfo(path.join(dataDir, 'devnet'));
  } catch {
    throw new Error(`no Namecoin node to ask: give --namecoin-rpc http://user:pass@HOST:PORT, or --data-dir of a daemon that ran with its devnet (none in ${dataDir})`);
  }
  if (!info.namecoinRpc) throw new Error(`the devnet in ${dataDir} has no Namecoin node; give --namecoin-rpc`);
  return info.namecoinRpc;
}
