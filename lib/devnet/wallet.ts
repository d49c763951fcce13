// The devnet's wallet and miner, for use from ANOTHER process than the devnet (the CLI, test helpers): only the
// devnet directory is shared. The wallet reads the faucet key from wallet.json and talks to the devnet like any
// Electrum wallet would (listunspent, transaction.get, broadcast); the miner uses bitcoind-style JSON-RPC.
// Transactions are real: version 2, p2wpkh, signed with bitcoinjs' Psbt.

import fs from 'fs';
import http from 'http';
import * as bitcoin from 'bitcoinjs-lib';
import { COINBASE_MATURITY, NETWORK, scriptHash } from './consensus';
import { ElectrumConnection } from '../payments/electrum';
import { faucetKey, readKeys } from './keys';
import { files } from './layout';
import type { DevnetInfo } from './index';
import { dustThreshold, txidOfInput } from './validation';

export interface PayOptions {
  /** sat/vB, default 2 */
  feeRate?: number;
  /** signal BIP125 replaceability (nSequence 0xfffffffd); default true */
  rbf?: boolean;
}

export interface BumpOptions {
  /** new amount for the payee (default: unchanged) */
  sats?: number | bigint;
  /** new payee (default: unchanged) */
  address?: string;
  /** sat/vB; the replacement pays at least this and always enough to replace (BIP125 rules 3, 4, 6) */
  feeRate?: number;
}

export interface ReorgOptions {
  /** payments (from the faucet) the new chain must not contain: a conflicting spend is mined in their place */
  dropTxids?: string[];
  /** false: the new blocks are empty, so the old blocks' transactions stay unconfirmed in the mempool */
  includeMempool?: boolean;
}

const DEFAULT_FEE_RATE = 2;
const SEQUENCE_RBF = 0xfffffffd;
const SEQUENCE_FINAL = 0xffffffff;

interface Utxo {
  tx_hash: string;
  tx_pos: number;
  height: number;
  value: bigint;
}

export function readDevnetInfo(dir: string): DevnetInfo {
  try {
    return JSON.parse(fs.readFileSync(files(dir).info, 'utf8')) as DevnetInfo;
  } catch (err) {
    throw new Error(`no devnet found in ${dir} (${(err as Error).message}); start one with Devnet.open or \`bitdrop devnet\``);
  }
}

/** A faucet session: the key, its script, and an Electrum connection to the devnet. */
class Faucet {
  readonly key;
  readonly script: Uint8Array;
  readonly sh: string;
  private readonly txCache = new Map<string, bitcoin.Transaction>();

  constructor(
    dir: string,
    readonly conn: ElectrumConnection,
  ) {
    this.key = faucetKey(readKeys(files(dir).wallet));
    this.script = bitcoin.payments.p2wpkh({ pubkey: this.key.publicKey, network: NETWORK }).output!;
    this.sh = scriptHash(this.script);
  }

  static async open(dir: string): Promise<Faucet> {
    const conn = await ElectrumConnection.connect(readDevnetInfo(dir).electrum);
    await conn.request('server.version', ['bitdrop-devnet-wallet', '1.4']);
    return new Faucet(dir, conn);
  }

  async tx(txid: string): Promise<bitcoin.Transaction> {
    let tx = this.txCache.get(txid);
    if (!tx) {
      tx = bitcoin.Transaction.fromHex(await this.conn.request<string>('blockchain.transaction.get', [txid]));
      this.txCache.set(txid, tx);
    }
    return tx;
  }

  async tipHeight(): Promise<number> {
    return (await this.conn.request<{ height: number }>('blockchain.headers.subscribe')).height;
  }

  /**
   * Spendable faucet coins, best first: mature confirmed coins oldest first, then unconfirmed change. Preferring
   * confirmed coins keeps consecutive payments independent, so replacing one does not evict the others.
   */
  async spendable(exclude: Set<string> = new Set()): Promise<Utxo[]> {
    const tip = await this.tipHeight();
    const listed = await this.conn.request<Array<Omit<Utxo, 'value'> & { value: number }>>('blockchain.scripthash.listunspent', [this.sh]);
    const coins: Utxo[] = [];
    for (const u of listed) {
      if (exclude.has(u.tx_hash)) continue;
      // Electrum does not flag coinbases; only a recent confirmed coin can be an immature one.
      if (u.height > 0 && tip + 1 - u.height < COINBASE_MATURITY && (await this.tx(u.tx_hash)).isCoinbase()) continue;
      coins.push({ ...u, value: BigInt(u.value) });
    }
    const rank = (u: Utxo) => (u.height > 0 ? u.height : Number.MAX_SAFE_INTEGER);
    return coins.sort((a, b) => rank(a) - rank(b));
  }

  /** Builds and signs a v2 p2wpkh transaction spending `inputs` (faucet coins) to `outputs` plus change. */
  build(inputs: Utxo[], outputs: Array<{ script: Uint8Array; value: bigint }>, fee: bigint, rbf: boolean): bitcoin.Transaction {
    const psbt = new bitcoin.Psbt({ network: NETWORK });
    psbt.setVersion(2);
    psbt.setLocktime(0);
    for (const u of inputs) {
      psbt.addInput({ hash: u.tx_hash, index: u.tx_pos, sequence: rbf ? SEQUENCE_RBF : SEQUENCE_FINAL, witnessUtxo: { script: this.script, value: u.value } });
    }
    for (const o of outputs) psbt.addOutput({ script: o.script, value: o.value });
    const change = inputs.reduce((s, u) => s + u.value, 0n) - outputs.reduce((s, o) => s + o.value, 0n) - fee;
    if (change < 0n) throw new Error(`faucet coins short by ${-change} sat`);
    if (change >= dustThreshold(this.script)) psbt.addOutput({ script: this.script, value: change });
    psbt.signAllInputs(this.key);
    psbt.finalizeAllInputs();
    return psbt.extractTransaction();
  }

  async broadcast(tx: bitcoin.Transaction): Promise<string> {
    const txid = await this.conn.request<string>('blockchain.transaction.broadcast', [tx.toHex()]);
    this.txCache.set(txid, tx);
    return txid;
  }

  /** The faucet coins a transaction spends; throws unless every input is the faucet's. */
  async inputsOf(tx: bitcoin.Transaction): Promise<Utxo[]> {
    const coins: Utxo[] = [];
    for (const input of tx.ins) {
      const prev = (await this.tx(txidOfInput(input))).outs[input.index];
      if (Buffer.compare(Buffer.from(prev.script), Buffer.from(this.script)) !== 0) {
        throw new Error(`transaction ${tx.getId()} spends coins that are not the devnet faucet's; only faucet payments can be replaced`);
      }
      coins.push({ tx_hash: txidOfInput(input), tx_pos: input.index, height: -1, value: prev.value });
    }
    return coins;
  }

  /** Fees of `txid` and of every faucet mempool transaction spending from it: what a replacement must outbid. */
  async evictedFees(txid: string): Promise<bigint> {
    const mempool = await this.conn.request<Array<{ tx_hash: string; fee: number }>>('blockchain.scripthash.get_mempool', [this.sh]);
    const fees = new Map(mempool.map((m) => [m.tx_hash, BigInt(m.fee)]));
    const evicted = new Set([txid]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const m of mempool) {
        if (evicted.has(m.tx_hash)) continue;
        if ((await this.tx(m.tx_hash)).ins.some((i) => evicted.has(txidOfInput(i)))) {
          evicted.add(m.tx_hash);
          grew = true;
        }
      }
    }
    return [...evicted].reduce((sum, id) => sum + (fees.get(id) ?? 0n), 0n);
  }

  close(): void {
    this.conn.close();
  }
}

/** Upper bound of a p2wpkh-input transaction's vsize: 10.5 vB overhead, 68 vB per input, the outputs, change. */
function estimateVsize(nInputs: number, outputs: Array<{ script: Uint8Array }>, changeScript: Uint8Array): number {
  const outSize = (s: Uint8Array) => 8 + 1 + s.length;
  return 11 + 68 * nInputs + outputs.reduce((n, o) => n + outSize(o.script), 0) + outSize(changeScript);
}

const feeFor = (vsize: number, feeRate: number) => BigInt(Math.ceil(vsize * feeRate));

function toSats(v: number | bigint): bigint {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new Error(`${v} is not a whole number of satoshis`);
  const sats = BigInt(v);
  if (sats <= 0n) throw new Error(`amount must be positive, got ${v}`);
  return sats;
}

async function withFaucet<T>(dir: string, fn: (f: Faucet) => Promise<T>): Promise<T> {
  const faucet = await Faucet.open(dir);
  try {
    return await fn(faucet);
  } finally {
    faucet.close();
  }
}

/** Picks faucet coins for `outputs` at `feeRate`; returns them with the fee to pay. */
async function select(f: Faucet, outputs: Array<{ script: Uint8Array; value: bigint }>, feeRate: number, exclude?: Set<string>) {
  const target = outputs.reduce((s, o) => s + o.value, 0n);
  const chosen: Utxo[] = [];
  let total = 0n;
  for (const coin of await f.spendable(exclude)) {
    chosen.push(coin);
    total += coin.value;
    const fee = feeFor(estimateVsize(chosen.length, outputs, f.script), feeRate);
    if (total >= target + fee) return { chosen, fee };
  }
  throw new Error(`the devnet faucet has ${total} sat spendable, not enough for ${target} sat plus fee (mine some blocks)`);
}

/** Pays `sats` to `address` from the faucet; returns the txid once the devnet accepted it into its mempool. */
export async function devnetPay(dir: string, address: string, sats: number | bigint, opts: PayOptions = {}): Promise<string> {
  const outputs = [{ script: bitcoin.address.toOutputScript(address, NETWORK), value: toSats(sats) }];
  return withFaucet(dir, async (f) => {
    const { chosen, fee } = await select(f, outputs, opts.feeRate ?? DEFAULT_FEE_RATE);
    return f.broadcast(f.build(chosen, outputs, fee, opts.rbf ?? true));
  });
}

/**
 * Replaces faucet payment `txid` (BIP125): same inputs, the payee paid `sats` and/or a different `address`.
 * Replacing it also evicts later faucet payments that spent its change.
 */
export async function devnetBump(dir: string, txid: string, change: BumpOptions = {}): Promise<string> {
  return withFaucet(dir, async (f) => {
    const orig = await f.tx(txid);
    const payee = orig.outs.find((o) => Buffer.compare(Buffer.from(o.script), Buffer.from(f.script)) !== 0);
    if (!payee) throw new Error(`transaction ${txid} pays only the faucet; nothing to bump`);
    const outputs = [
      {
        script: change.address ? bitcoin.address.toOutputScript(change.address, NETWORK) : payee.script,
        value: change.sats !== undefined ? toSats(change.sats) : payee.value,
      },
    ];
    return replace(f, orig, outputs, change.feeRate ?? DEFAULT_FEE_RATE);
  });
}

/** Replaces faucet payment `txid` with one paying everything back to the faucet: the payment disappears. */
export async function devnetCancel(dir: string, txid: string, feeRate = DEFAULT_FEE_RATE): Promise<string> {
  return withFaucet(dir, async (f) => replace(f, await f.tx(txid), [], feeRate));
}

async function replace(f: Faucet, orig: bitcoin.Transaction, outputs: Array<{ script: Uint8Array; value: bigint }>, feeRate: number): Promise<string> {
  const txid = orig.getId();
  const inputs = await f.inputsOf(orig);
  const outsum = outputs.reduce((s, o) => s + o.value, 0n);
  let insum = inputs.reduce((s, u) => s + u.value, 0n);
  const origFee = insum - orig.outs.reduce((s, o) => s + o.value, 0n);
  const evicted = await f.evictedFees(txid);
  const fee = (n: number) => {
    const vsize = estimateVsize(n, outputs, f.script);
    const beatsRate = (origFee * BigInt(vsize)) / BigInt(orig.virtualSize()) + 1n; // rule 6
    const pays = [feeFor(vsize, feeRate), evicted + BigInt(vsize), beatsRate]; // rule 3 + 4 at 1 sat/vB
    return pays.reduce((a, b) => (a > b ? a : b));
  };
  // A larger payment may need more coins; never ones created by the transaction being replaced.
  for (const coin of insum >= outsum + fee(inputs.length) ? [] : await f.spendable(new Set([txid]))) {
    if (inputs.some((u) => u.tx_hash === coin.tx_hash && u.tx_pos === coin.tx_pos)) continue;
    inputs.push(coin);
    insum += coin.value;
    if (insum >= outsum + fee(inputs.length)) break;
  }
  return f.broadcast(f.build(inputs, outputs, fee(inputs.length), true));
}

// ---- the miner side: bitcoind-style JSON-RPC ----

export function rpcCall<T = unknown>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const u = new URL(url);
  const body = JSON.stringify({ jsonrpc: '1.0', id: 'devnet', method, params });
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: u.pathname || '/',
        agent: false, // one connection per call: a devnet restarted on the same port must not meet a stale socket
        auth: `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 401) return reject(new Error(`${method}: devnet RPC refused the credentials`));
          try {
            const answer = JSON.parse(text) as { result: T; error: { code: number; message: string } | null };
            if (answer.error) reject(Object.assign(new Error(`${method}: ${answer.error.message}`), { code: answer.error.code }));
            else resolve(answer.result);
          } catch {
            reject(new Error(`${method}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.on('error', (err) => reject(new Error(`cannot reach the devnet RPC at ${u.host}: ${err.message}`)));
    req.end(body);
  });
}

/** Mines `n` blocks (with the mempool) paying `address`, by default the faucet. Returns the block hashes. */
export async function devnetMine(dir: string, n = 1, address?: string): Promise<string[]> {
  const info = readDevnetInfo(dir);
  const hashes = await rpcCall<string[]>(info.rpc, 'generatetoaddress', [n, address ?? info.faucetAddress]);
  await devnetMineNames(dir, n);
  return hashes;
}

/** Pause between Namecoin blocks while names live on the chain, so daemons see each block as on a real network. */
export const NAME_BLOCK_PACE_MS = 500;

/**
 * Mines `n` blocks of the devnet's Namecoin chain (with its mempool), paying the node's default wallet. While
 * names exist or name operations are pending, the blocks come one at a time, NAME_BLOCK_PACE_MS apart: a daemon
 * gets to send its name_firstupdate at the twelfth confirmation and its renewals in time, as it would between
 * real blocks. Without names the blocks are mined at once.
 */
export async function devnetMineNames(dir: string, n = 1, paceMs = NAME_BLOCK_PACE_MS): Promise<string[]> {
  const info = readDevnetInfo(dir);
  if (!info.namecoinRpc) return [];
  const address = await rpcCall<string>(`${info.namecoinRpc}/wallet/default`, 'getnewaddress');
  const active = async () =>
    (await rpcCall<unknown[]>(info.namecoinRpc, 'name_scan', ['', 1])).length > 0 || (await rpcCall<unknown[]>(info.namecoinRpc, 'getrawmempool')).length > 0;
  if (n <= 1 || !(await active())) return rpcCall<string[]>(info.namecoinRpc, 'generatetoaddress', [n, address]);
  const hashes: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, paceMs));
    hashes.push(...(await rpcCall<string[]>(info.namecoinRpc, 'generatetoaddress', [1, address])));
  }
  return hashes;
}

/**
 * Reorganises the top `depth` blocks as a miner would: invalidateblock on the block at tip - depth + 1, then
 * depth + 1 new blocks. `dropTxids` (faucet payments) are double-spent back to the faucet in the first new
 * block, so the payment vanishes from the chain; `includeMempool: false` leaves the old blocks' other
 * transactions unconfirmed. Returns the new blocks' hashes.
 */
export async function devnetReorg(dir: string, depth: number, opts: ReorgOptions = {}): Promise<string[]> {
  const info = readDevnetInfo(dir);
  const height = await rpcCall<number>(info.rpc, 'getblockcount');
  if (!Number.isSafeInteger(depth) || depth < 1 || depth > height) throw new Error(`reorg depth must be between 1 and ${height}`);
  // Sign the conflicting spends before touching the chain, so a refusal leaves the chain as it was.
  const conflicts = opts.dropTxids?.length
    ? await withFaucet(dir, async (f) => {
        const txs: string[] = [];
        for (const txid of opts.dropTxids!) {
          const inputs = await f.inputsOf(await f.tx(txid));
          txs.push(f.build(inputs, [], feeFor(estimateVsize(inputs.length, [], f.script), DEFAULT_FEE_RATE), false).toHex());
        }
        return txs;
      })
    : [];
  await rpcCall(info.rpc, 'invalidateblock', [await rpcCall<string>(info.rpc, 'getblockhash', [height - depth + 1])]);
  const hashes: string[] = [];
  for (let i = 0; i <= depth; i++) {
    if (i === 0 && conflicts.length) hashes.push((await rpcCall<{ hash: string }>(info.rpc, 'generateblock', [info.faucetAddress, conflicts])).hash);
    else if (opts.includeMempool === false) hashes.push((await rpcCall<{ hash: string }>(info.rpc, 'generateblock', [info.faucetAddress, []])).hash);
    else hashes.push(...(await rpcCall<string[]>(info.rpc, 'generatetoaddress', [1, info.faucetAddress])));
  }
  return hashes;
}
