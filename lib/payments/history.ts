// Pure functions from Electrum answers to bitdrop's view of a script: status hash, header hash, payments.
// Everything is recomputed from the full history each time (Electrum/Core style), so an RBF replacement or
// a reorg simply yields a different list — nothing is patched.

import crypto from 'crypto';
import { Transaction } from 'bitcoinjs-lib';
import { scriptHashOf } from './xpub';

/** One entry of blockchain.scripthash.get_history. height > 0 confirmed; 0 mempool; -1 mempool with unconfirmed parents. */
export interface HistoryEntry {
  tx_hash: string;
  height: number;
  fee?: number;
}

export interface Payment {
  txid: string;
  /** > 0 confirmed at that height; 0 or -1 in the mempool */
  height: number;
  /** integer satoshis paid to this script by this transaction */
  sats: number;
}

/** The Electrum status of a history: sha256 of "txid:height:" concatenated, hex; null when empty. */
export function statusOf(history: readonly HistoryEntry[]): string | null {
  if (history.length === 0) return null;
  const h = crypto.createHash('sha256');
  for (const e of history) h.update(`${e.tx_hash}:${e.height}:`);
  return h.digest('hex');
}

/** Block hash (display order) of a header as Electrum sends it; only the first 80 bytes (Namecoin appends AuxPoW). */
export function headerHash(hex: string): string {
  const header = Buffer.from(hex.slice(0, 160), 'hex');
  const once = crypto.createHash('sha256').update(header).digest();
  return crypto.createHash('sha256').update(once).digest().reverse().toString('hex');
}

/** What we keep of a transaction: each output's scripthash and value. */
export type TxOutputs = ReadonlyArray<readonly [scriptHash: string, sats: number]>;

/** Parses a raw transaction and checks it really is `txid` (a server must not substitute another one). */
export function parseTxOutputs(txid: string, rawHex: string): TxOutputs {
  const tx = Transaction.fromHex(rawHex);
  if (tx.getId() !== txid) throw new Error(`server returned transaction ${tx.getId()} for ${txid}`);
  return tx.outs.map((o) => [scriptHashOf(o.script), Number(o.value)] as const);
}

/** The payments a history represents for one script; transactions that pay it nothing (spends) are left out. */
export function paymentsOf(scriptHash: string, history: readonly HistoryEntry[], outputs: (txid: string) => TxOutputs): Payment[] {
  const seen = new Set<string>();
  const result: Payment[] = [];
  for (const e of history) {
    if (seen.has(e.tx_hash)) continue;
    seen.add(e.tx_hash);
    let sats = 0;
    for (const [sh, value] of outputs(e.tx_hash)) if (sh === scriptHash) sats += value;
    if (sats > 0) result.push({ txid: e.tx_hash, height: e.height, sats });
  }
  return result;
}

export function validHistory(x: unknown): x is HistoryEntry[] {
  return Array.isArray(x) && x.every((e) => e && typeof e.tx_hash === 'string' && /^[0-9a-f]{64}$/.test(e.tx_hash) && Number.isInteger(e.height));
}
