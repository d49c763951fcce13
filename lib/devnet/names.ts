// Namecoin's name rules for the devnet's Namecoin chain (Namecoin Core's CheckNameTransaction and name
// database, src/names/main.cpp), as ChainRules the chain applies to the mempool and to blocks:
//  - a transaction with a name input or output has version 0x7100 and then exactly one name output;
//  - the name output locks at least 0.01 NMC;
//  - name_firstupdate spends a name_new whose hash is Hash160(rand ‖ name), at least 12 blocks deep, of a
//    name that is unregistered or expired; name_update spends the name's previous output;
//  - a name expires 30 blocks (regtest) after its last update; names ≤ 255 bytes, values ≤ 520 bytes.
// The name database (name → value, outpoint, height, address) is derived from the blocks, with undo per
// height so a reorg recomputes it.

import * as bitcoin from 'bitcoinjs-lib';
import {
  MAX_NAME_LENGTH, MAX_VALUE_LENGTH, NAME_LOCKED_AMOUNT, NAMECOIN_TX_VERSION, addressScript, nameNewHash, parseNameScript, type NameOp,
} from '../names/script';
import type { ChainRules } from './params';
import { type Coin, type CoinView, TxRejected } from './validation';

/** Blocks a name_new must be buried before its name_firstupdate may be mined (MIN_FIRSTUPDATE_DEPTH). */
export const MIN_FIRSTUPDATE_DEPTH = 12;
/** Regtest's name lifetime (Namecoin Core's regtest NameExpirationDepth). */
export const REGTEST_EXPIRATION_DEPTH = 30;

export interface NameData {
  name: Buffer;
  value: Buffer;
  txid: string;
  vout: number;
  /** height of the last update */
  height: number;
  /** the full name script of the current output */
  script: Buffer;
}

const key = (name: Uint8Array) => Buffer.from(name).toString('hex');

/** The name output of a transaction, if any (the first; the rules allow only one). */
export function nameOutput(tx: bitcoin.Transaction): { vout: number; op: NameOp } | undefined {
  for (let vout = 0; vout < tx.outs.length; vout++) {
    const op = parseNameScript(tx.outs[vout].script);
    if (op) return { vout, op };
  }
  return undefined;
}

export class NameRules implements ChainRules {
  readonly extraTxVersions = [NAMECOIN_TX_VERSION];
  private readonly names = new Map<string, NameData>();
  /** per height: the entries its block replaced (undefined = the name was new) */
  private readonly undo = new Map<number, Array<[string, NameData | undefined]>>();

  constructor(readonly expirationDepth = REGTEST_EXPIRATION_DEPTH) {}

  addressScript(script: Uint8Array): Uint8Array {
    return addressScript(script);
  }

  get(name: Uint8Array): NameData | undefined {
    return this.names.get(key(name));
  }

  isExpired(data: NameData, height: number): boolean {
    return height - data.height >= this.expirationDepth;
  }

  all(): NameData[] {
    return [...this.names.values()].sort((a, b) => Buffer.compare(a.name, b.name));
  }

  check(tx: bitcoin.Transaction, coins: Coin[], view: CoinView): void {
    const nameIns = coins.map((c, i) => ({ i, op: parseNameScript(c.script), coin: c })).filter((x) => x.op);
    const nameOuts = tx.outs.map((o, vout) => ({ vout, op: parseNameScript(o.script), value: o.value })).filter((x) => x.op);
    if (tx.version !== NAMECOIN_TX_VERSION) {
      if (nameIns.length) throw new TxRejected('tx-nonname-with-name-input');
      if (nameOuts.length) throw new TxRejected('tx-nonname-with-name-output');
      return;
    }
    if (nameOuts.length === 0) throw new TxRejected('tx-namecoin-without-name-output');
    if (nameOuts.length > 1) throw new TxRejected('tx-multiple-name-outputs');
    if (nameIns.length > 1) throw new TxRejected('tx-multiple-name-inputs');
    const out = nameOuts[0];
    const op = out.op!;
    if (out.value < NAME_LOCKED_AMOUNT) throw new TxRejected('tx-name-insufficient-lockamount');
    const input = nameIns[0];

    if (op.op === 'name_new') {
      if (input) throw new TxRejected('tx-namenew-with-name-input');
      return;
    }
    if (op.name.length > MAX_NAME_LENGTH) throw new TxRejected('tx-name-invalid');
    if (op.value.length > MAX_VALUE_LENGTH) throw new TxRejected('tx-value-invalid');
    if (!input) throw new TxRejected('tx-nameupdate-without-name-input');
    const prev = input.op!;
    const existing = this.names.get(key(op.name));

    if (op.op === 'name_firstupdate') {
      if (prev.op !== 'name_new') throw new TxRejected('tx-firstupdate-nonnew-input');
      if (op.rand.length > 20) throw new TxRejected('tx-firstupdate-invalid-rand');
      if (!nameNewHash(op.name, op.rand).equals(prev.hash)) throw new TxRejected('tx-firstupdate-hash-mismatch');
      // In the mempool a firstupdate only needs a confirmed name_new; the 12-block depth is a block rule.
      if (input.coin.height >= view.nextHeight) throw new TxRejected('tx-firstupdate-unconfirmed-previous', -25);
      if (view.inBlock && view.nextHeight - input.coin.height < MIN_FIRSTUPDATE_DEPTH) throw new TxRejected('tx-firstupdate-immature');
      if (existing && !this.isExpired(existing, view.nextHeight)) throw new TxRejected('tx-firstupdate-existing-name');
      return;
    }
    // name_update
    if (prev.op === 'name_new') throw new TxRejected('tx-update-from-namenew');
    if (!prev.name.equals(op.name)) throw new TxRejected('tx-update-name-mismatch');
    if (existing && this.isExpired(existing, view.nextHeight)) throw new TxRejected('tx-update-expired-name');
  }

  mineable(tx: bitcoin.Transaction, coins: Coin[], height: number): boolean {
    if (tx.version !== NAMECOIN_TX_VERSION) return true;
    const out = nameOutput(tx);
    if (out?.op.op !== 'name_firstupdate') return true;
    const prev = coins.find((c) => parseNameScript(c.script)?.op === 'name_new');
    return prev !== undefined && height - prev.height >= MIN_FIRSTUPDATE_DEPTH;
  }

  connectBlock(block: bitcoin.Block, height: number): void {
    const changed: Array<[string, NameData | undefined]> = [];
    for (const tx of block.transactions ?? []) {
      if (tx.version !== NAMECOIN_TX_VERSION) continue;
      const out = nameOutput(tx);
      if (!out || out.op.op === 'name_new') continue;
      const k = key(out.op.name);
      changed.push([k, this.names.get(k)]);
      this.names.set(k, {
        name: Buffer.from(out.op.name),
        value: Buffer.from(out.op.value),
        txid: tx.getId(),
        vout: out.vout,
        height,
        script: Buffer.from(tx.outs[out.vout].script),
      });
    }
    if (changed.length) this.undo.set(height, changed);
  }

  disconnectBlock(height: number): void {
    const changed = this.undo.get(height) ?? [];
    for (const [k, old] of [...changed].reverse()) {
      if (old) this.names.set(k, old);
      else this.names.delete(k);
    }
    this.undo.delete(height);
  }
}
