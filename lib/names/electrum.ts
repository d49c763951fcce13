// .bit names without a Namecoin node: the name's latest update fetched from Namecoin Electrum servers
// (ElectrumX with its Namecoin name index, protocol 1.4.3's blockchain.name.get_value_proof) and checked
// before it is believed:
//  - the server's header chain is synced into our own HeaderChain (lib/chain): links, difficulty, and the
//    merge-mining AuxPoW of every block, as Namecoin Core checks them;
//  - the update's transaction is the one its txid names, and its merkle proof leads to our header's root;
//  - it carries a name_firstupdate/name_update output for exactly this name;
//  - the name has not expired at our checked tip (36,000 blocks on mainnet, 30 on regtest);
//  - with two or more servers, every one must give the same latest update: a server can hide a newer update
//    (proofs show what is in the chain, never what is missing), so agreement is what guards against that.
//
// The name index (ElectrumX's NameIndexMixin.build_name_index_script): a name's history is the history of
// the script OP_NAME_UPDATE <name> <empty> OP_2DROP OP_DROP OP_RETURN, under its Electrum scripthash.

import { Transaction } from 'bitcoinjs-lib';
import { ChainError, HeaderChain, LessWork, ProofError, parseTip, syncChain, type Anchor } from '../chain';
import { ElectrumConnection, ElectrumRpcError } from '../payments/electrum';
import { nameIndexScriptHash, parseNameScript } from './script';
import { nameOfDomain, resolution, ResolveError, type Resolution } from './resolve';
import type { NetworkName } from '../config';

export { nameIndexScript, nameIndexScriptHash } from './script';

export type NameFailure = 'unknown' | 'expired' | 'proof-invalid' | 'disagree' | 'unreachable';

/** Why a name did not resolve; `message` is one readable line. */
export class NameLookupError extends Error {
  constructor(
    readonly kind: NameFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface NameRecord {
  name: string;
  /** the value as text (UTF-8) */
  value: string;
  txid: string;
  height: number;
  /** blocks until it expires, counted from our checked tip */
  expiresIn: number;
  /** the servers that gave (and proved) this answer */
  servers: string[];
}

export interface ElectrumNameOptions {
  /** tcp://HOST:PORT or ssl://HOST:PORT[#sha256=…]; ask them all, they must agree */
  servers: string[];
  network: Extract<NetworkName, 'namecoin' | 'namecoin-regtest'>;
  /** where the checked headers are kept (a second lookup only fetches new ones); in memory when absent */
  chainDir?: string;
  /** Tor's SOCKS port, for servers not on this machine */
  socks?: { host: string; port: number };
  clearnet?: boolean;
  timeoutMs?: number;
  log?: (line: string) => void;
  /** start the header chain here instead of the network's built-in anchor (a newer checkpoint) */
  anchor?: Anchor;
}

/** Looks up `name` (e.g. "d/example") through every server, checks each answer, and returns the agreed record. */
export async function lookupName(name: string, opts: ElectrumNameOptions): Promise<NameRecord> {
  if (opts.servers.length === 0) throw new NameLookupError('unreachable', 'no Namecoin Electrum server given (--electrum-nmc tcp://HOST:PORT)');
  const chain = HeaderChain.open({ network: opts.network, dir: opts.chainDir, log: opts.log, anchor: opts.anchor });
  try {
    const answers: Array<{ server: string; record?: Omit<NameRecord, 'servers'>; error?: NameLookupError }> = [];
    // one server at a time: they share one header chain, and a forged chain from one must not race another
    for (const server of opts.servers) {
      try {
        answers.push({ server, record: await askServer(chain, server, name, opts) });
      } catch (err) {
        if (!(err instanceof NameLookupError)) throw err;
        answers.push({ server, error: err });
      }
    }
    const invalid = answers.find((a) => a.error?.kind === 'proof-invalid');
    if (invalid) throw invalid.error!;
    const unreachable = answers.filter((a) => a.error?.kind === 'unreachable');
    const heard = answers.filter((a) => a.error?.kind !== 'unreachable');
    if (heard.length === 0) throw unreachable[0].error!;
    if (unreachable.length) {
      // a quorum of one is no quorum when two were asked for: say so rather than trust the one
      throw new NameLookupError('unreachable', `${unreachable.map((a) => a.error!.message).join('; ')} (all ${opts.servers.length} servers must answer)`);
    }
    const said = (a: (typeof answers)[number]) => (a.record ? `${a.record.txid}@${a.record.height}` : a.error!.kind);
    const first = heard[0];
    const disagree = heard.find((a) => said(a) !== said(first));
    if (disagree) {
      throw new NameLookupError('disagree', `${name}: servers disagree: ${first.server} says ${describe(first)}, ${disagree.server} says ${describe(disagree)}`);
    }
    if (first.error) throw first.error;
    // recompute expiry at the final tip (a later server may have moved it)
    const record = first.record!;
    const expiresIn = record.height + expiry(chain) - chain.height;
    if (expiresIn <= 0) throw expired(name, record.height, chain);
    return { ...record, expiresIn, servers: heard.map((a) => a.server) };
  } finally {
    chain.close();
  }
}

function describe(a: { record?: { txid: string; height: number }; error?: NameLookupError }): string {
  return a.record ? `update ${a.record.txid} at height ${a.record.height}` : a.error!.kind;
}

const expiry = (chain: HeaderChain) => chain.params.nameExpiry ?? 36_000;

function expired(name: string, height: number, chain: HeaderChain): NameLookupError {
  return new NameLookupError('expired', `${name} expired at block ${height + expiry(chain)} (last updated at ${height}; the chain is at ${chain.height})`);
}

interface ValueProofEntry {
  height: number;
  tx: string;
  tx_merkle: { merkle: string[]; pos: number };
}

async function askServer(chain: HeaderChain, url: string, name: string, opts: ElectrumNameOptions): Promise<Omit<NameRecord, 'servers'>> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let conn: ElectrumConnection;
  try {
    conn = await ElectrumConnection.connect(url, { socks: opts.socks, clearnet: opts.clearnet, timeoutMs, connectTimeoutMs: timeoutMs });
  } catch (err) {
    throw new NameLookupError('unreachable', (err as Error).message);
  }
  const lie = (detail: string) => new NameLookupError('proof-invalid', `${name}: proof invalid from ${url}: ${detail}`);
  try {
    const request = (m: string, p: unknown[]) => conn.request(m, p);
    // blockchain.name.get_value_proof is a protocol 1.4.3 method
    const version = await request('server.version', ['bitdrop', ['1.4.3', '1.6']]);
    if (!Array.isArray(version) || typeof version[1] !== 'string') throw new NameLookupError('unreachable', `${url}: unexpected server.version answer`);
    try {
      await syncChain(chain, request, parseTip(chain, await request('blockchain.headers.subscribe', [])));
    } catch (err) {
      if (err instanceof ChainError) throw lie(err.message);
      if (!(err instanceof LessWork)) throw err;
      opts.log?.(`names: ${url} follows a branch with less work than ours; checking against ours`);
    }
    const sh = nameIndexScriptHash(Buffer.from(name, 'utf8'));
    const answer = (await request('blockchain.name.get_value_proof', [sh])) as Record<string, unknown> | null;
    const list = answer && typeof answer === 'object' ? answer[sh] : undefined;
    if (!Array.isArray(list)) throw lie('get_value_proof: malformed answer');
    const updates = (list as ValueProofEntry[]).filter((u) => u && Number.isSafeInteger(u.height) && u.height > 0);
    if (updates.length === 0) throw new NameLookupError('unknown', `${name} is not registered (${url} knows no update of it)`);
    // newest first; a server that orders otherwise is not following ElectrumX
    const latest = updates[0];
    if (updates.some((u) => u.height > latest.height)) throw lie('get_value_proof: updates not newest first');
    if (typeof latest.tx !== 'string' || !latest.tx_merkle || typeof latest.tx_merkle !== 'object') throw lie('get_value_proof: malformed update');
    if (latest.tx.length === 128) throw lie('a 64-byte transaction is refused');
    let tx: Transaction;
    try {
      tx = Transaction.fromHex(latest.tx);
    } catch (err) {
      throw lie(`the update's transaction does not parse (${(err as Error).message})`);
    }
    const txid = tx.getId();
    if (latest.height > chain.height) throw lie(`update at height ${latest.height} is above the server's own tip ${chain.height}`);
    try {
      chain.verifyTxProof(txid, latest.height, { block_height: latest.height, ...latest.tx_merkle });
    } catch (err) {
      if (err instanceof ProofError) throw lie(err.message);
      throw err;
    }
    const op = tx.outs.map((o) => parseNameScript(o.script)).find((o) => o && o.op !== 'name_new' && o.name.equals(Buffer.from(name, 'utf8')));
    if (!op || op.op === 'name_new') throw lie(`transaction ${txid} carries no update of ${name}`);
    const expiresIn = latest.height + expiry(chain) - chain.height;
    if (expiresIn <= 0) throw expired(name, latest.height, chain);
    return { name, value: op.value.toString('utf8'), txid, height: latest.height, expiresIn };
  } catch (err) {
    if (err instanceof NameLookupError) throw err;
    if (err instanceof ElectrumRpcError) throw new NameLookupError('unreachable', `${url}: ${err.message}`);
    throw new NameLookupError('unreachable', `${url}: ${(err as Error).message}`);
  } finally {
    conn.close();
  }
}

/**
 * example.bit (or files.example.bit, or d/example) → the onion address, through Namecoin Electrum servers with
 * every answer checked (lookupName). The same Resolution shape and ResolveError reasons as the node path.
 */
export async function resolveNameElectrum(domain: string, opts: ElectrumNameOptions): Promise<Resolution> {
  const target = nameOfDomain(domain);
  let record: NameRecord;
  try {
    record = await lookupName(target.name, opts);
  } catch (err) {
    if (!(err instanceof NameLookupError)) throw err;
    const reason = err.kind === 'unknown' ? 'unknown' : err.kind === 'expired' ? 'expired' : err.kind === 'unreachable' ? 'node' : err.kind;
    throw new ResolveError(err.message.replace(target.name, `${domain} (${target.name})`), reason as ResolveError['reason']);
  }
  return resolution(domain, target, record);
}
