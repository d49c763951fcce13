// .bit resolution through a Namecoin node: example.bit → d/example → name_show → the onion in its value.
// An expired name is an error, never an answer. (The node is trusted for what it says; see README.)

import { NamecoinError, NamecoinRpc, RPC_CODE } from './rpc';
import { domainToName, mirrorsFromValue, NameValueError, onionFromValue } from './value';

export interface Resolution {
  domain: string;
  name: string;
  onion: string;
  /** the onions of the box's mirrors its value lists (the top level of the value only) */
  mirrors: string[];
  value: string;
  txid: string;
  height: number;
  expiresIn: number;
}

export class ResolveError extends Error {
  constructor(
    message: string,
    /** unknown | expired | no-onion | node: what a caller (names-proxy) tells the user; the Electrum path adds
     *  proof-invalid (a server's answer did not check) and disagree (servers gave different answers) */
    readonly reason: 'unknown' | 'expired' | 'no-onion' | 'invalid' | 'node' | 'proof-invalid' | 'disagree',
  ) {
    super(message);
  }
}

/** The name a domain stands for (and the labels left of it); a malformed domain is a ResolveError 'invalid'. */
export function nameOfDomain(domain: string): { name: string; labels: string[] } {
  try {
    return domainToName(domain);
  } catch (err) {
    throw new ResolveError((err as Error).message, 'invalid');
  }
}

/** The answer for a name's current record: the onion its value gives for the domain's labels. */
export function resolution(domain: string, target: { name: string; labels: string[] },
  record: { value: string; txid: string; height: number; expiresIn: number }): Resolution {
  let onion: string;
  try {
    onion = onionFromValue(record.value, target.labels, domain);
  } catch (err) {
    if (err instanceof NameValueError) throw new ResolveError(err.message, 'no-onion');
    throw err;
  }
  return { domain, name: target.name, onion, mirrors: target.labels.length ? [] : mirrorsFromValue(record.value), value: record.value, txid: record.txid, height: record.height, expiresIn: record.expiresIn };
}

export async function resolveName(domain: string, rpc: NamecoinRpc): Promise<Resolution> {
  const target = nameOfDomain(domain);
  let show: { value: string; txid: string; height: number; expires_in: number; expired: boolean };
  try {
    show = await rpc.call('name_show', [target.name]);
  } catch (err) {
    if (err instanceof NamecoinError && err.code === RPC_CODE.WALLET_ERROR && /never existed|not found/.test(err.rpcMessage ?? '')) {
      throw new ResolveError(`${domain} is not registered (${target.name} never existed on the Namecoin chain)`, 'unknown');
    }
    if (err instanceof NamecoinError && err.code === RPC_CODE.WALLET_ERROR && /expired/.test(err.rpcMessage ?? '')) {
      throw new ResolveError(`${domain} has expired (${target.name})`, 'expired');
    }
    throw new ResolveError((err as Error).message, 'node');
  }
  if (show.expired) {
    throw new ResolveError(`${domain} has expired (${target.name} was last updated at height ${show.height}, ${-show.expires_in} blocks ago its lifetime ended)`, 'expired');
  }
  return resolution(domain, target, { value: show.value, txid: show.txid, height: show.height, expiresIn: show.expires_in });
}
