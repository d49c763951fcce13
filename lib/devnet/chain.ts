// The devnet's block chain: active chain from Bitcoin's regtest genesis, UTXO set with undo data, the
// Electrum indexes (script hash → history, script hash → unspent outputs), and the mempool on top.
//
// Every mutation (submit, mine, generateBlock, invalidate) ends by emitting one 'update' event naming the
// script hashes whose history may have changed and whether the tip moved, so the Electrum server can notify.
// After any block change the mempool is rebuilt by offering its transactions again, parents first: what got
// confirmed or conflicted drops out and every height/-1 marker is recomputed rather than patched.

import { EventEmitter } from 'events';
import fs from 'fs';
import * as bitcoin from 'bitcoinjs-lib';
import { assembleBlock, checkBlockShape, outpointKey, scriptHash, subsidy } from './consensus';
import { BlockFile, files, writeFileAtomic } from './layout';
import { ChainView, Mempool, MempoolEntry } from './mempool';
import { BITCOIN_REGTEST, type ChainParams } from './params';
import { nameIndexScriptHash, parseNameScript } from '../names/script';
import { checkTransaction, Coin, isOpReturn, txidOfInput, TxRejected } from './validation';

export interface ChainUpdate {
  tipChanged: boolean;
  touched: Set<string>;
}

export interface HistoryItem {
  tx_hash: string;
  height: number;
  fee?: number;
}

export interface Unspent {
  tx_hash: string;
  tx_pos: number;
  height: number;
  value: bigint;
}

export class ChainError extends Error {}

export interface ChainOptions {
  /** where blocks.dat and mempool.json live; omit for a chain that lives in memory only */
  dir?: string;
  log?: (msg: string) => void;
  /** seconds since the epoch; block timestamps are max(clock(), previous + 1) */
  clock?: () => number;
  /** network, genesis, block codec and extra rules (default: Bitcoin regtest) */
  params?: ChainParams;
}

interface TxLocation {
  height: number;
  pos: number;
}

export class Chain extends EventEmitter {
  readonly mempool = new Mempool();
  readonly params: ChainParams;
  private readonly blocks: bitcoin.Block[];
  private readonly hashes: string[];
  private readonly heightOf: Map<string, number>;
  /** per height: the coins its transactions spent, to restore on disconnect */
  private readonly undo: Array<Array<[string, Coin]>> = [[]];
  private readonly utxos = new Map<string, Coin>();
  private readonly utxosByScript = new Map<string, Set<string>>();
  private readonly history = new Map<string, HistoryItem[]>();
  private readonly txIndex = new Map<string, TxLocation>();
  private readonly store?: BlockFile;
  private readonly log: (msg: string) => void;
  private readonly clock: () => number;
  private touched = new Set<string>();

  constructor(private readonly opts: ChainOptions = {}) {
    super();
    this.params = opts.params ?? BITCOIN_REGTEST;
    const genesis = this.params.genesis;
    this.blocks = [genesis];
    this.hashes = [genesis.getId()];
    this.heightOf = new Map([[genesis.getId(), 0]]);
    this.log = opts.log ?? (() => {});
    this.clock = opts.clock ?? (() => Math.floor(Date.now() / 1000));
    if (!opts.dir) return;
    fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    this.store = new BlockFile(files(opts.dir).blocks, this.params.magic);
    const raws = this.store.readAll(this.log);
    for (let i = 0; i < raws.length; i++) {
      try {
        const block = this.params.decodeBlock(raws[i]);
        checkBlockShape(block, this.blocks[this.height].getHash());
        this.connect(block);
      } catch (err) {
        this.log(`blocks.dat: block ${i + 1} does not connect (${(err as Error).message}); keeping ${i} blocks`);
        this.store.truncate(i);
        break;
      }
    }
    const saved = files(opts.dir).mempool;
    if (fs.existsSync(saved)) {
      try {
        const { txs } = JSON.parse(fs.readFileSync(saved, 'utf8')) as { txs: string[] };
        this.rebuildMempool(txs.map((hex) => bitcoin.Transaction.fromHex(hex)));
      } catch (err) {
        this.log(`mempool.json unreadable (${(err as Error).message}); starting with an empty mempool`);
      }
    }
    this.touched.clear();
  }

  get height(): number {
    return this.blocks.length - 1;
  }
  get tipHash(): string {
    return this.hashes[this.height];
  }
  hashAt(height: number): string | undefined {
    return this.hashes[height];
  }
  heightOfHash(hash: string): number | undefined {
    return this.heightOf.get(hash);
  }
  blockAt(height: number): bitcoin.Block | undefined {
    return this.blocks[height];
  }
  header(height: number): Buffer | undefined {
    const block = this.blocks[height];
    return block && this.params.encodeHeader(block);
  }

  medianTimePast(height: number): number {
    const times = this.blocks.slice(Math.max(0, height - 10), height + 1).map((b) => b.timestamp);
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }

  /** A transaction from the mempool or the active chain, with its block height when confirmed. */
  transaction(txid: string): { tx: bitcoin.Transaction; height?: number; pos?: number } | undefined {
    const entry = this.mempool.get(txid);
    if (entry) return { tx: entry.tx };
    const at = this.txIndex.get(txid);
    return at && { tx: this.blocks[at.height].transactions![at.pos], ...at };
  }

  /** An unspent output: a confirmed coin, or an output of a mempool transaction; undefined once spent (also by the mempool). */
  coin(txid: string, vout: number): Coin | undefined {
    if (this.mempool.spender(txid, vout)) return undefined;
    const confirmed = this.utxos.get(outpointKey(txid, vout));
    if (confirmed) return confirmed;
    const out = this.mempool.get(txid)?.tx.outs[vout];
    return out && { value: out.value, script: out.script, height: this.height + 1, coinbase: false };
  }

  /** Every confirmed unspent output, for wallets that scan by script (the devnet's Namecoin node wallet). */
  *confirmedCoins(): Generator<[string, Coin]> {
    yield* this.utxos.entries();
  }

  /** Electrum history of a script: confirmed in chain order, then mempool (height 0 before -1, then by txid). */
  scriptHistory(sh: string): { confirmed: HistoryItem[]; mempool: HistoryItem[] } {
    const confirmed = (this.history.get(sh) ?? []).map((h) => ({ ...h }));
    const mempool = this.mempool
      .forScript(sh)
      .map((e) => ({ tx_hash: e.txid, height: e.parents.size > 0 ? -1 : 0, fee: Number(e.fee) }))
      .sort((a, b) => b.height - a.height || (a.tx_hash < b.tx_hash ? -1 : a.tx_hash > b.tx_hash ? 1 : 0));
    return { confirmed, mempool };
  }

  /** Outputs paying `sh` that no transaction (confirmed or mempool) spends. */
  unspent(sh: string): Unspent[] {
    const out: Unspent[] = [];
    for (const key of this.utxosByScript.get(sh) ?? []) {
      const [txid, vout] = key.split(':');
      if (this.mempool.spender(txid, Number(vout))) continue;
      const coin = this.utxos.get(key)!;
      out.push({ tx_hash: txid, tx_pos: Number(vout), height: coin.height, value: coin.value });
    }
    out.sort((a, b) => a.height - b.height || this.txIndex.get(a.tx_hash)!.pos - this.txIndex.get(b.tx_hash)!.pos || a.tx_pos - b.tx_pos);
    for (const e of this.mempool.forScript(sh)) {
      e.tx.outs.forEach((o, vout) => {
        if (this.addressKey(o.script) === sh && !this.mempool.spender(e.txid, vout)) out.push({ tx_hash: e.txid, tx_pos: vout, height: 0, value: o.value });
      });
    }
    return out;
  }

  /** Confirmed = unspent confirmed outputs; unconfirmed = what the mempool adds and removes (may be negative). */
  balance(sh: string): { confirmed: bigint; unconfirmed: bigint } {
    let confirmed = 0n;
    for (const key of this.utxosByScript.get(sh) ?? []) confirmed += this.utxos.get(key)!.value;
    let unconfirmed = 0n;
    for (const e of this.mempool.forScript(sh)) {
      for (const o of e.tx.outs) if (this.addressKey(o.script) === sh) unconfirmed += o.value;
      for (const c of e.coins) if (this.addressKey(c.script) === sh) unconfirmed -= c.value;
    }
    return { confirmed, unconfirmed };
  }

  /** Validates and adds a transaction to the mempool (replacing per BIP125). Throws TxRejected. */
  submit(tx: bitcoin.Transaction): string {
    const { entry, evicted } = this.mempool.accept(tx, this.view());
    for (const e of [entry, ...evicted]) this.touch(e);
    if (evicted.length) this.log(`mempool: ${entry.txid} replaced ${evicted.map((e) => e.txid).join(', ')}`);
    this.commit(false);
    return entry.txid;
  }

  /** Mines `n` blocks paying `payout`, each taking the whole mempool unless `includeMempool` is false. */
  mine(n: number, payout: Uint8Array, includeMempool = true): string[] {
    const hashes = this.mineMany(n, payout, includeMempool);
    this.commit(n > 0);
    return hashes;
  }

  /**
   * A reorg as one step: the top `depth` blocks are replaced by `depth + 1` new ones, so watchers see a single
   * new, longer tip. Transactions of the old blocks are re-mined unless `includeMempool` is false.
   */
  reorg(depth: number, payout: Uint8Array, includeMempool = true): string[] {
    if (!Number.isSafeInteger(depth) || depth < 1 || depth > this.height) throw new ChainError(`reorg depth must be between 1 and ${this.height}`);
    this.disconnectFrom(this.height - depth + 1);
    const hashes = this.mineMany(depth + 1, payout, includeMempool);
    this.commit(true);
    return hashes;
  }

  private mineMany(n: number, payout: Uint8Array, includeMempool: boolean): string[] {
    const mined: bitcoin.Block[] = [];
    for (let i = 0; i < n; i++) {
      const entries = includeMempool ? this.mineable() : [];
      mined.push(this.mineBlock(payout, entries.map((e) => e.tx), entries.reduce((sum, e) => sum + e.fee, 0n)));
      if (includeMempool) this.rebuildMempool();
    }
    if (!includeMempool) this.rebuildMempool();
    this.store?.append(mined.map((b) => this.params.encodeBlock(b)));
    return mined.map((b) => b.getId());
  }

  /**
   * Mines one block holding exactly `txs` (bitcoind's generateblock): they are checked against the chain,
   * not the mempool, so a block can confirm a double spend of a mempool transaction, which then drops out.
   */
  generateBlock(payout: Uint8Array, txs: bitcoin.Transaction[]): string {
    const created = new Map<string, Coin>();
    const spent = new Set<string>();
    let fees = 0n;
    for (const tx of txs) {
      const { fee } = checkTransaction(tx, {
        nextHeight: this.height + 1,
        medianTimePast: (h) => this.medianTimePast(h),
        rules: this.params.rules,
        inBlock: true,
        coin: (txid, vout) => {
          const key = outpointKey(txid, vout);
          return spent.has(key) ? undefined : (created.get(key) ?? this.utxos.get(key));
        },
      });
      fees += fee;
      for (const input of tx.ins) spent.add(outpointKey(txidOfInput(input), input.index));
      const txid = tx.getId();
      if (this.txIndex.has(txid)) throw new TxRejected('Transaction outputs already in utxo set', -27);
      tx.outs.forEach((o, vout) => created.set(outpointKey(txid, vout), { value: o.value, script: o.script, height: this.height + 1, coinbase: false }));
    }
    const block = this.mineBlock(payout, txs, fees);
    this.rebuildMempool();
    this.store?.append([this.params.encodeBlock(block)]);
    this.commit(true);
    return block.getId();
  }

  /**
   * bitcoind's invalidateblock: disconnects `hash` and every block above it. Their transactions go back to the
   * mempool when still valid on the shorter chain; the blocks themselves are forgotten (nothing re-orgs back).
   */
  invalidate(hash: string): void {
    const height = this.heightOf.get(hash);
    if (height === undefined) throw new ChainError('Block not found');
    if (height === 0) throw new ChainError('Cannot invalidate the genesis block');
    this.disconnectFrom(height);
    this.commit(true);
  }

  /** Disconnects the block at `height` and all above it; their transactions are offered to the mempool. */
  private disconnectFrom(height: number): void {
    const returned: bitcoin.Transaction[][] = [];
    while (this.height >= height) returned.unshift(this.disconnectTip().slice(1));
    this.store?.truncate(height - 1);
    this.rebuildMempool(returned.flat());
  }

  private mineBlock(payout: Uint8Array, txs: bitcoin.Transaction[], fees: bigint): bitcoin.Block {
    const tip = this.blocks[this.height];
    const block = assembleBlock({
      prevHash: tip.getHash(),
      height: this.height + 1,
      time: Math.max(this.clock(), tip.timestamp + 1),
      version: this.params.blockVersion,
      payout,
      fees,
      txs,
    });
    this.connect(block);
    return block;
  }

  private view(): ChainView {
    return {
      utxo: (txid, vout) => this.utxos.get(outpointKey(txid, vout)),
      isConfirmed: (txid) => this.txIndex.has(txid),
      nextHeight: this.height + 1,
      medianTimePast: (h) => this.medianTimePast(h),
      rules: this.params.rules,
      minRelaySatPerKvB: this.params.minRelaySatPerKvB,
      keys: (script) => this.keys(script),
    };
  }

  /** Mempool entries the next block may hold: all of them, less what the chain's rules hold back and its descendants. */
  private mineable(): MempoolEntry[] {
    const rules = this.params.rules;
    const all = this.mempool.all();
    if (!rules) return all;
    const taken = new Set<string>();
    return all.filter((e) => {
      const ok = [...e.parents].every((p) => taken.has(p)) && rules.mineable(e.tx, e.coins, this.height + 1);
      if (ok) taken.add(e.txid);
      return ok;
    });
  }

  /** Applies a block whose shape is already checked: spends inputs, creates outputs, indexes scripts. */
  private connect(block: bitcoin.Block): void {
    const height = this.blocks.length;
    const txs = block.transactions!;
    const undo: Array<[string, Coin]> = [];
    const txids = txs.map((tx) => tx.getId());
    let fees = 0n;
    // Check every input first so a bad block leaves the state untouched.
    const pending = new Map<string, Coin>();
    const spent = new Set<string>();
    txs.forEach((tx, pos) => {
      if (pos === 0) return;
      let valueIn = 0n;
      for (const input of tx.ins) {
        const key = outpointKey(txidOfInput(input), input.index);
        const coin = spent.has(key) ? undefined : (pending.get(key) ?? this.utxos.get(key));
        if (!coin) throw new ChainError(`tx ${txids[pos]} spends missing output ${key}`);
        spent.add(key);
        valueIn += coin.value;
      }
      fees += valueIn - tx.outs.reduce((s, o) => s + o.value, 0n);
      tx.outs.forEach((o, vout) => pending.set(outpointKey(txids[pos], vout), { value: o.value, script: o.script, height, coinbase: false }));
    });
    const claimed = txs[0].outs.reduce((s, o) => s + o.value, 0n);
    if (claimed > subsidy(height) + fees) throw new ChainError(`coinbase pays ${claimed}, more than subsidy plus fees`);

    const spentCoins: Coin[][] = [];
    txs.forEach((tx, pos) => {
      const touched = new Set<string>();
      spentCoins.push([]);
      if (pos > 0) {
        for (const input of tx.ins) {
          const key = outpointKey(txidOfInput(input), input.index);
          const coin = this.utxos.get(key)!;
          spentCoins[pos].push(coin);
          this.removeCoin(key, coin);
          undo.push([key, coin]);
          for (const k of this.keys(coin.script)) touched.add(k);
        }
      }
      tx.outs.forEach((o, vout) => {
        if (isOpReturn(o.script)) return; // provably unspendable: never in the UTXO set
        this.addCoin(outpointKey(txids[pos], vout), { value: o.value, script: o.script, height, coinbase: pos === 0 });
        for (const k of this.keys(o.script)) touched.add(k);
      });
      for (const sh of touched) {
        if (!this.history.has(sh)) this.history.set(sh, []);
        this.history.get(sh)!.push({ tx_hash: txids[pos], height });
        this.touched.add(sh);
      }
      this.txIndex.set(txids[pos], { height, pos });
    });
    this.blocks.push(block);
    this.hashes.push(block.getId());
    this.heightOf.set(block.getId(), height);
    this.undo.push(undo);
    this.params.rules?.connectBlock(block, height, spentCoins);
  }

  /** Reverses connect() for the tip block; returns its transactions. */
  private disconnectTip(): bitcoin.Transaction[] {
    const height = this.height;
    const block = this.blocks.pop()!;
    const undo = this.undo.pop()!;
    const hash = this.hashes.pop()!;
    this.params.rules?.disconnectBlock(height);
    this.heightOf.delete(hash);
    const txs = block.transactions!;
    for (const tx of [...txs].reverse()) {
      const txid = tx.getId();
      tx.outs.forEach((o, vout) => {
        const key = outpointKey(txid, vout);
        const coin = this.utxos.get(key);
        if (coin) this.removeCoin(key, coin);
        if (!isOpReturn(o.script)) for (const k of this.keys(o.script)) this.touched.add(k);
      });
      this.txIndex.delete(txid);
    }
    for (const [key, coin] of undo) {
      this.addCoin(key, coin);
      for (const k of this.keys(coin.script)) this.touched.add(k);
    }
    for (const sh of this.touched) {
      const items = this.history.get(sh);
      while (items?.length && items[items.length - 1].height === height) items.pop();
      if (items?.length === 0) this.history.delete(sh);
    }
    return txs;
  }

  /**
   * The Electrum scripthash an output is indexed under, as ElectrumX's Namecoin coin class does: a name
   * script by its address part (the name prefix stripped), anything else as it is.
   */
  private addressKey(script: Uint8Array): string {
    const rules = this.params.rules;
    return scriptHash(rules ? rules.addressScript(script) : script);
  }

  /** Every history an output belongs to: its address, and for a name operation also the name's index script. */
  private keys(script: Uint8Array): string[] {
    const keys = [this.addressKey(script)];
    if (this.params.rules) {
      const op = parseNameScript(script);
      if (op && op.op !== 'name_new') keys.push(nameIndexScriptHash(op.name));
    }
    return keys;
  }

  private addCoin(key: string, coin: Coin): void {
    this.utxos.set(key, coin);
    const sh = this.addressKey(coin.script);
    if (!this.utxosByScript.has(sh)) this.utxosByScript.set(sh, new Set());
    this.utxosByScript.get(sh)!.add(key);
  }

  private removeCoin(key: string, coin: Coin): void {
    this.utxos.delete(key);
    const sh = this.addressKey(coin.script);
    const set = this.utxosByScript.get(sh);
    set?.delete(key);
    if (set?.size === 0) this.utxosByScript.delete(sh);
  }

  /** Offers `first`, then the current mempool, to an empty mempool; what no longer fits is dropped. */
  private rebuildMempool(first: bitcoin.Transaction[] = []): void {
    const old = this.mempool.clear();
    old.forEach((e) => this.touch(e));
    for (const tx of [...first, ...old.map((e) => e.tx)]) {
      try {
        this.touch(this.mempool.accept(tx, this.view()).entry);
      } catch (err) {
        if (!(err instanceof TxRejected)) throw err;
        if (!this.txIndex.has(tx.getId())) this.log(`mempool: dropped ${tx.getId()}: ${err.reason}`);
      }
    }
  }

  private touch(entry: MempoolEntry): void {
    for (const sh of entry.scripthashes) this.touched.add(sh);
  }

  private commit(tipChanged: boolean): void {
    if (this.opts.dir) {
      const txs = this.mempool.all().map((e) => e.tx.toHex());
      writeFileAtomic(files(this.opts.dir).mempool, JSON.stringify({ txs }) + '\n');
    }
    const update: ChainUpdate = { tipChanged, touched: this.touched };
    this.touched = new Set();
    this.emit('update', update);
  }
}
