// The devnet mempool: validated unconfirmed transactions, which outpoints they spend, and which scripts they
// touch (the Electrum index). Entries are kept in acceptance order, which is always parents-before-children:
// a child can only enter after its parent, and the chain rebuilds the pool in that order after blocks.
// Replacement follows BIP125 as Bitcoin Core implements it (rules 1, 3, 4 and 6, plus no spending of a
// transaction being replaced).

import * as bitcoin from 'bitcoinjs-lib';
import { MIN_RELAY_SAT_PER_KVB, outpointKey, satsToBtc, scriptHash } from './consensus';
import { checkTransaction, Coin, signalsRbf, txidOfInput, TxRejected, type TxRules } from './validation';

export interface MempoolEntry {
  tx: bitcoin.Transaction;
  txid: string;
  fee: bigint;
  vsize: number;
  /** the outputs it spends, in input order */
  coins: Coin[];
  /** in-mempool transactions it spends from; Electrum reports such an entry at height -1 */
  parents: Set<string>;
  /** script hashes of every output it pays and every coin it spends */
  scripthashes: Set<string>;
}

/** What the mempool needs to know about the chain it sits on. */
export interface ChainView {
  utxo(txid: string, vout: number): Coin | undefined;
  isConfirmed(txid: string): boolean;
  nextHeight: number;
  medianTimePast(height: number): number;
  /** the chain's extra consensus rules and relay fee floor */
  rules?: TxRules;
  minRelaySatPerKvB?: bigint;
  /** the Electrum scripthashes an output script is indexed under (default: the script's own) */
  keys?(script: Uint8Array): string[];
}

const btc = (sats: bigint) => satsToBtc(sats).toFixed(8);
/** For messages only: a feerate as people read it. */
const rate = (fee: bigint, vsize: number) => `${(Number(fee) / vsize).toFixed(2)} sat/vB`;

export class Mempool {
  private readonly entries = new Map<string, MempoolEntry>();
  private readonly spends = new Map<string, string>(); // outpoint → txid of the mempool tx spending it
  private readonly byScript = new Map<string, Set<string>>(); // script hash → txids

  get size() {
    return this.entries.size;
  }
  get(txid: string) {
    return this.entries.get(txid);
  }
  /** All entries, parents before children. */
  all(): MempoolEntry[] {
    return [...this.entries.values()];
  }
  forScript(sh: string): MempoolEntry[] {
    return [...(this.byScript.get(sh) ?? [])].map((txid) => this.entries.get(txid)!);
  }
  spender(txid: string, vout: number): string | undefined {
    return this.spends.get(outpointKey(txid, vout));
  }

  /**
   * Validates `tx` against the chain plus this pool and adds it, evicting what it replaces.
   * An identical transaction already in the pool is accepted again without change (bitcoind does the same).
   */
  accept(tx: bitcoin.Transaction, chain: ChainView): { entry: MempoolEntry; evicted: MempoolEntry[] } {
    const txid = tx.getId();
    const known = this.entries.get(txid);
    if (known) return { entry: known, evicted: [] };
    // Core: -27 only while one of its outputs is unspent; a confirmed transaction whose outputs are all spent
    // goes on to the input checks and fails there (-25 bad-txns-inputs-missingorspent), as nc31.1 answers
    if (chain.isConfirmed(txid) && tx.outs.some((_o, vout) => chain.utxo(txid, vout))) throw new TxRejected('Transaction outputs already in utxo set', -27);

    const conflicts = new Set<string>();
    for (const input of tx.ins) {
      const spender = this.spends.get(outpointKey(txidOfInput(input), input.index));
      if (spender) conflicts.add(spender);
    }
    const evicted = new Set<string>();
    for (const c of conflicts) for (const d of this.withDescendants(c)) evicted.add(d);

    const parents = new Set<string>();
    for (const input of tx.ins) {
      const parent = txidOfInput(input);
      if (evicted.has(parent)) throw new TxRejected('bad-txns-spends-conflicting-tx');
      if (this.entries.has(parent)) parents.add(parent);
    }
    const { fee, coins } = checkTransaction(tx, {
      nextHeight: chain.nextHeight,
      medianTimePast: (h) => chain.medianTimePast(h),
      rules: chain.rules,
      inBlock: false,
      coin: (prevTxid, vout) => {
        const confirmed = chain.utxo(prevTxid, vout);
        if (confirmed) return confirmed;
        const out = this.entries.get(prevTxid)?.tx.outs[vout];
        return out && { value: out.value, script: out.script, height: chain.nextHeight, coinbase: false };
      },
    });
    const vsize = tx.virtualSize();
    const minFee = (BigInt(vsize) * (chain.minRelaySatPerKvB ?? MIN_RELAY_SAT_PER_KVB)) / 1000n;
    if (fee < minFee) throw new TxRejected(`min relay fee not met, ${fee} < ${minFee}`);

    if (conflicts.size > 0) this.checkReplacement(txid, fee, vsize, conflicts, evicted);
    const removed = [...evicted].map((id) => this.entries.get(id)!);
    for (const id of evicted) this.drop(id);

    const keys = chain.keys ?? ((script: Uint8Array) => [scriptHash(script)]);
    const scripthashes = new Set<string>([...tx.outs.flatMap((o) => keys(o.script)), ...coins.flatMap((c) => keys(c.script))]);
    const entry: MempoolEntry = { tx, txid, fee, vsize, coins, parents, scripthashes };
    this.entries.set(txid, entry);
    tx.ins.forEach((input) => this.spends.set(outpointKey(txidOfInput(input), input.index), txid));
    for (const sh of scripthashes) {
      if (!this.byScript.has(sh)) this.byScript.set(sh, new Set());
      this.byScript.get(sh)!.add(txid);
    }
    return { entry, evicted: removed };
  }

  private checkReplacement(txid: string, fee: bigint, vsize: number, conflicts: Set<string>, evicted: Set<string>): void {
    for (const c of conflicts) {
      // Rule 1: every directly conflicting transaction (or one of its unconfirmed ancestors) opted in.
      if (!this.replaceable(c)) throw new TxRejected('txn-mempool-conflict');
      // Rule 6: the replacement's feerate beats each transaction it directly replaces.
      const old = this.entries.get(c)!;
      if (fee * BigInt(old.vsize) <= old.fee * BigInt(vsize)) {
        throw new TxRejected(`insufficient fee, rejecting replacement ${txid}; new feerate ${rate(fee, vsize)} <= old feerate ${rate(old.fee, old.vsize)}`);
      }
    }
    const evictedFees = [...evicted].reduce((sum, id) => sum + this.entries.get(id)!.fee, 0n);
    // Rule 3: at least the absolute fees of everything evicted.
    if (fee < evictedFees) {
      throw new TxRejected(`insufficient fee, rejecting replacement ${txid}, less fees than conflicting txs; ${btc(fee)} < ${btc(evictedFees)}`);
    }
    // Rule 4: and pays for its own relay on top, at the incremental relay feerate.
    const extra = (BigInt(vsize) * MIN_RELAY_SAT_PER_KVB) / 1000n;
    if (fee - evictedFees < extra) {
      throw new TxRejected(`insufficient fee, rejecting replacement ${txid}, not enough additional fees to relay; ${btc(fee - evictedFees)} < ${btc(extra)}`);
    }
  }

  private replaceable(txid: string, seen = new Set<string>()): boolean {
    const entry = this.entries.get(txid);
    if (!entry || seen.has(txid)) return false;
    seen.add(txid);
    return signalsRbf(entry.tx) || [...entry.parents].some((p) => this.replaceable(p, seen));
  }

  /** `txid` and every in-mempool transaction that spends from it, transitively. */
  withDescendants(txid: string): Set<string> {
    const out = new Set<string>();
    const visit = (id: string) => {
      const entry = this.entries.get(id);
      if (!entry || out.has(id)) return;
      out.add(id);
      entry.tx.outs.forEach((_, vout) => {
        const child = this.spends.get(outpointKey(id, vout));
        if (child) visit(child);
      });
    };
    visit(txid);
    return out;
  }

  /** Removes every entry; returns them parents-first, ready to be offered again. */
  clear(): MempoolEntry[] {
    const all = this.all();
    this.entries.clear();
    this.spends.clear();
    this.byScript.clear();
    return all;
  }

  private drop(txid: string): void {
    const entry = this.entries.get(txid);
    if (!entry) return;
    this.entries.delete(txid);
    for (const input of entry.tx.ins) this.spends.delete(outpointKey(txidOfInput(input), input.index));
    for (const sh of entry.scripthashes) {
      const set = this.byScript.get(sh)!;
      set.delete(txid);
      if (set.size === 0) this.byScript.delete(sh);
    }
  }
}
