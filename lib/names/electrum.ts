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

export type NameFailure = 'unknown' | 'expired' | 'proof-invalid' | 'disagree' | 'unreachable' | 'wrong-network';

export type NmcNetwork = Extract<NetworkName, 'namecoin' | 'namecoin-regtest'>;

/**
 * Genesis block hash (server.features' genesis_hash) → network. Namecoin's regtest genesis is Bitcoin's regtest
 * genesis, so a Bitcoin regtest server passes this check and then fails on the name index.
 */
export const NMC_GENESIS: Readonly<Record<NmcNetwork, string>> = {
  namecoin: '000000000062b72c5e2ceb45fbc8587e807c155b0da735e6483dfba2f0a9c770',
  'namecoin-regtest': '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206',
};

const networkOfGenesis = (genesis: unknown): NmcNetwork | undefined =>
  (Object.keys(NMC_GENESIS) as NmcNetwork[]).find((n) => NMC_GENESIS[n] === genesis);

/**
 * The protocol version we ask for: exactly 1.4.3. It has blockchain.name.get_value_proof, and ElectrumX 1.20
 * under 1.6 splits blockchain.block.headers' `headers` array at 80-byte offsets counted from height 0, which
 * cuts variable-size AuxPoW headers wrongly; 1.4.3's concatenated `hex` is right.
 */
export const NMC_PROTOCOL = '1.4.3';

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
  /** the network the servers must serve; when absent, the first server's genesis hash (server.features) says */
  network?: NmcNetwork;
  /** where the checked headers are kept (a second lookup only fetches new ones); in memory when absent */
  chainDir?: string;
  /** chainDir for the network found, when `network` is left to the server */
  chainDirFor?: (network: NmcNetwork) => string;
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
  if (!opts.network) {
    const network = await serverNetwork(opts.servers[0], opts);
    opts = { ...opts, network, chainDir: opts.chainDir ?? opts.chainDirFor?.(network) };
    opts.log?.(`names: ${opts.servers[0]} serves ${network} (its genesis hash says so)`);
  }
  const chain = HeaderChain.open({ network: opts.network!, dir: opts.chainDir, log: opts.log, anchor: opts.anchor });
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

/** Connects and asks server.version (protocol 1.4.3 only) and server.features; returns the connection and the network. */
async function open(url: string, opts: ElectrumNameOptions): Promise<{ conn: ElectrumConnection; network: NmcNetwork }> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let conn: ElectrumConnection;
  try {
    conn = await ElectrumConnection.connect(url, { socks: opts.socks, clearnet: opts.clearnet, timeoutMs, connectTimeoutMs: timeoutMs });
  } catch (err) {
    throw new NameLookupError('unreachable', (err as Error).message);
  }
  try {
    let version: unknown;
    try {
      version = await conn.request('server.version', ['bitdrop', NMC_PROTOCOL]);
    } catch (err) {
      if (err instanceof ElectrumRpcError) throw new NameLookupError('unreachable', `${url} does not speak Electrum protocol ${NMC_PROTOCOL} (${err.message}), which Namecoin name lookups need`);
      throw err;
    }
    if (!Array.isArray(version) || typeof version[1] !== 'string') throw new NameLookupError('unreachable', `${url}: unexpected server.version answer`);
    const features = (await conn.request('server.features', [])) as { genesis_hash?: unknown } | null;
    const genesis = features && typeof features === 'object' ? features.genesis_hash : undefined;
    const network = networkOfGenesis(genesis);
    if (!network) throw new NameLookupError('wrong-network', `${url} serves a chain with genesis ${String(genesis)}, which is neither Namecoin mainnet nor Namecoin regtest`);
    if (opts.network && network !== opts.network) {
      throw new NameLookupError('wrong-network', `${url} serves ${network}, not ${opts.network} (its genesis is ${genesis}); give --nmc-network ${network} or another server`);
    }
    return { conn, network };
  } catch (err) {
    conn.close();
    if (err instanceof NameLookupError) throw err;
    throw new NameLookupError('unreachable', `${url}: ${(err as Error).message}`);
  }
}

/** The Namecoin network a server serves, from its genesis hash. */
export async function serverNetwork(url: string, opts: Omit<ElectrumNameOptions, 'servers'>): Promise<NmcNetwork> {
  const { conn, network } = await open(url, { ...opts, network: undefined, servers: [url] });
  conn.close();
  return network;
}

async function askServer(chain: HeaderChain, url: string, name: string, opts: ElectrumNameOptions): Promise<Omit<NameRecord, 'servers'>> {
  const { conn } = await open(url, opts);
  const lie = (detail: string) => new NameLookupError('proof-invalid', `${name}: proof invalid from ${url}: ${detail}`);
  try {
    const request = (m: string, p: unknown[]) => conn.request(m, p);
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
    const reason = err.kind === 'unknown' ? 'unknown' : err.kind === 'expired' ? 'expired' : err.kind === 'unreachable' || err.kind === 'wrong-network' ? 'node' : err.kind;
    throw new ResolveError(err.message.replace(target.name, `${domain} (${target.name})`), reason as ResolveError['reason']);
  }
  return resolution(domain, target, record);
}
