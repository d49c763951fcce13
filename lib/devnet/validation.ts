// Context checks of one transaction against a view of spendable coins, with Bitcoin Core's reject reasons
// (Electrum's client matches on those strings to explain a failed broadcast).
// Scripts: the devnet verifies the spends real wallets make — p2wpkh, p2pkh and p2tr key path — and refuses
// anything else rather than accepting it unverified.

import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from '@bitcoinerlab/secp256k1';
import { COINBASE_MATURITY, DUST_RELAY_SAT_PER_KVB, MAX_MONEY } from './consensus';

export interface Coin {
  value: bigint;
  script: Uint8Array;
  /** height of the block holding it; for a mempool coin, the next block's height */
  height: number;
  coinbase: boolean;
}

export interface CoinView {
  coin(txid: string, vout: number): Coin | undefined;
  /** height of the block the transaction would be mined in */
  nextHeight: number;
  /** median time past of the block at `height` (BIP113) */
  medianTimePast(height: number): number;
  /** the chain's extra consensus rules (Namecoin's names), if any */
  rules?: TxRules;
  /** true when checking for a block at nextHeight, false for the mempool */
  inBlock?: boolean;
}

/** Extra consensus rules of a chain (see params.ts), applied by checkTransaction. */
export interface TxRules {
  /** transaction versions accepted besides 1..3 */
  extraTxVersions: number[];
  /** the part of an output script that is signed for (Namecoin: the script after the name prefix) */
  addressScript(script: Uint8Array): Uint8Array;
  /** throws TxRejected; `coins` are the spent coins in input order */
  check(tx: bitcoin.Transaction, coins: Coin[], view: CoinView): void;
}

/** A rejected transaction; `code` is the bitcoind RPC error code (-25 missing inputs, -26 policy/consensus, -27 known). */
export class TxRejected extends Error {
  constructor(
    readonly reason: string,
    readonly code = -26,
  ) {
    super(reason);
  }
}

const SEQUENCE_FINAL = 0xffffffff;
const LOCKTIME_THRESHOLD = 500_000_000;
const SEQ_DISABLE = 1 << 31;
const SEQ_TYPE_TIME = 1 << 22;

export const isOpReturn = (script: Uint8Array) => script.length > 0 && script[0] === bitcoin.opcodes.OP_RETURN;

function isWitnessProgram(script: Uint8Array): boolean {
  if (script.length < 4 || script.length > 42) return false;
  if (script[0] !== bitcoin.opcodes.OP_0 && (script[0] < bitcoin.opcodes.OP_1 || script[0] > bitcoin.opcodes.OP_16)) return false;
  return script[1] + 2 === script.length;
}

/** Core's GetDustThreshold: an output is dust when spending it costs more than a third of its value at 3 sat/vB. */
export function dustThreshold(script: Uint8Array): bigint {
  if (isOpReturn(script)) return 0n;
  const varint = script.length < 0xfd ? 1 : 3;
  const spendSize = 8 + varint + script.length + (isWitnessProgram(script) ? 32 + 4 + 1 + 26 + 4 : 32 + 4 + 1 + 107 + 4);
  return (BigInt(spendSize) * DUST_RELAY_SAT_PER_KVB) / 1000n;
}

/** BIP125: a transaction opts in to replacement when any input's nSequence is below 0xfffffffe. */
export const signalsRbf = (tx: bitcoin.Transaction) => tx.ins.some((i) => i.sequence < 0xfffffffe);

export const txidOfInput = (input: bitcoin.TxInput) => Buffer.from(input.hash).reverse().toString('hex');

/** Everything that does not need the coins: shape, amounts, standardness of outputs. */
export function checkTransactionShape(tx: bitcoin.Transaction, rules?: TxRules): void {
  if (tx.ins.length === 0) throw new TxRejected('bad-txns-vin-empty');
  if (tx.outs.length === 0) throw new TxRejected('bad-txns-vout-empty');
  if (tx.isCoinbase()) throw new TxRejected('coinbase');
  if ((tx.version < 1 || tx.version > 3) && !rules?.extraTxVersions.includes(tx.version)) throw new TxRejected('version');
  let total = 0n;
  for (const out of tx.outs) {
    if (out.value < 0n) throw new TxRejected('bad-txns-vout-negative');
    if (out.value > MAX_MONEY) throw new TxRejected('bad-txns-vout-toolarge');
    total += out.value;
    if (total > MAX_MONEY) throw new TxRejected('bad-txns-txouttotal-toolarge');
    if (out.value < dustThreshold(out.script)) throw new TxRejected('dust');
  }
  const seen = new Set<string>();
  for (const input of tx.ins) {
    const key = `${txidOfInput(input)}:${input.index}`;
    if (seen.has(key)) throw new TxRejected('bad-txns-inputs-duplicate');
    seen.add(key);
  }
}

function checkFinal(tx: bitcoin.Transaction, view: CoinView): void {
  if (tx.locktime === 0 || tx.ins.every((i) => i.sequence === SEQUENCE_FINAL)) return;
  const limit = tx.locktime < LOCKTIME_THRESHOLD ? view.nextHeight : view.medianTimePast(view.nextHeight - 1);
  if (tx.locktime >= limit) throw new TxRejected('non-final');
}

/** BIP68 relative lock times, checked against the block the transaction would enter. */
function checkSequenceLocks(tx: bitcoin.Transaction, coins: Coin[], view: CoinView): void {
  if (tx.version < 2) return;
  tx.ins.forEach((input, i) => {
    if (input.sequence & SEQ_DISABLE) return;
    const lock = input.sequence & 0xffff;
    const coinHeight = coins[i].height;
    if (input.sequence & SEQ_TYPE_TIME) {
      const coinTime = view.medianTimePast(Math.max(coinHeight - 1, 0));
      if (coinTime + lock * 512 - 1 >= view.medianTimePast(view.nextHeight - 1)) throw new TxRejected('non-BIP68-final');
    } else if (coinHeight + lock - 1 >= view.nextHeight) {
      throw new TxRejected('non-BIP68-final');
    }
  });
}

function scriptFailure(detail: string): TxRejected {
  return new TxRejected(`mandatory-script-verify-flag-failed (${detail})`);
}

function verifyEcdsa(hash: Uint8Array, pubkey: Uint8Array, sigWithType: Uint8Array): void {
  let decoded: { signature: Uint8Array; hashType: number };
  try {
    decoded = bitcoin.script.signature.decode(sigWithType);
  } catch {
    throw scriptFailure('Non-canonical DER signature');
  }
  if (!ecc.verify(hash, pubkey, decoded.signature, true)) throw scriptFailure('Signature must be zero for failed CHECK(MULTI)SIG operation');
}

function hashTypeOf(sig: Uint8Array): number {
  return sig.length === 0 ? 0 : sig[sig.length - 1];
}

function verifyInput(tx: bitcoin.Transaction, i: number, coins: Coin[], rules?: TxRules): void {
  // A Namecoin name output is signed for like the address script after its prefix; legacy sighashes cover
  // the whole script (the prefix's pushes and drops run in the interpreter), segwit ones the address only.
  const fullScript = coins[i].script;
  const { value } = coins[i];
  const script = rules ? Buffer.from(rules.addressScript(fullScript)) : fullScript;
  const input = tx.ins[i];
  const p2wpkh = script.length === 22 && script[0] === 0x00 && script[1] === 0x14;
  const p2pkh = script.length === 25 && script[0] === 0x76 && script[1] === 0xa9 && script[2] === 0x14 && script[23] === 0x88 && script[24] === 0xac;
  const p2tr = script.length === 34 && script[0] === 0x51 && script[1] === 0x20;

  if (p2wpkh) {
    if (input.script.length !== 0) throw scriptFailure('Witness requires empty scriptSig');
    if (input.witness.length !== 2) throw scriptFailure('Witness program hash mismatch');
    const [sig, pubkey] = input.witness;
    if (pubkey.length !== 33) throw new TxRejected('non-mandatory-script-verify-flag (Using non-compressed keys in segwit)');
    if (Buffer.compare(Buffer.from(bitcoin.crypto.hash160(pubkey)), Buffer.from(script.subarray(2))) !== 0) {
      throw scriptFailure('Witness program hash mismatch');
    }
    const scriptCode = bitcoin.payments.p2pkh({ hash: script.subarray(2) }).output!;
    verifyEcdsa(tx.hashForWitnessV0(i, scriptCode, value, hashTypeOf(sig)), pubkey, sig);
  } else if (p2pkh) {
    const chunks = bitcoin.script.decompile(input.script);
    if (!chunks || chunks.length !== 2 || typeof chunks[0] === 'number' || typeof chunks[1] === 'number') {
      throw scriptFailure('Operation not valid with the current stack size');
    }
    const [sig, pubkey] = chunks as Uint8Array[];
    if (Buffer.compare(Buffer.from(bitcoin.crypto.hash160(pubkey)), Buffer.from(script.subarray(3, 23))) !== 0) {
      throw scriptFailure('Script failed an OP_EQUALVERIFY operation');
    }
    verifyEcdsa(tx.hashForSignature(i, fullScript, hashTypeOf(sig)), pubkey, sig);
  } else if (p2tr) {
    if (input.witness.length !== 1) throw new TxRejected('non-mandatory-script-verify-flag (devnet verifies only key-path taproot spends)');
    const sig = input.witness[0];
    if (sig.length !== 64 && sig.length !== 65) throw scriptFailure('Invalid Schnorr signature size');
    const hashType = sig.length === 65 ? sig[64] : bitcoin.Transaction.SIGHASH_DEFAULT;
    const hash = tx.hashForWitnessV1(i, coins.map((c) => c.script), coins.map((c) => c.value), hashType);
    if (!ecc.verifySchnorr(hash, script.subarray(2), sig.subarray(0, 64))) throw scriptFailure('Invalid Schnorr signature');
  } else {
    throw new TxRejected('non-mandatory-script-verify-flag (devnet verifies only p2pkh, p2wpkh and p2tr key-path spends)');
  }
}

/**
 * Full check of a transaction against `view`. Returns its fee and the coins it spends (in input order).
 * Throws TxRejected with Core's reason string.
 */
export function checkTransaction(tx: bitcoin.Transaction, view: CoinView): { fee: bigint; coins: Coin[] } {
  checkTransactionShape(tx, view.rules);
  checkFinal(tx, view);
  const coins: Coin[] = [];
  for (const input of tx.ins) {
    const coin = view.coin(txidOfInput(input), input.index);
    if (!coin) throw new TxRejected('bad-txns-inputs-missingorspent', -25);
    if (coin.coinbase && view.nextHeight - coin.height < COINBASE_MATURITY) {
      throw new TxRejected(`bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth ${view.nextHeight - coin.height}`);
    }
    coins.push(coin);
  }
  checkSequenceLocks(tx, coins, view);
  const valueIn = coins.reduce((sum, c) => sum + c.value, 0n);
  const valueOut = tx.outs.reduce((sum, o) => sum + o.value, 0n);
  if (valueIn < valueOut) throw new TxRejected(`bad-txns-in-belowout, value in (${valueIn}) < value out (${valueOut})`);
  view.rules?.check(tx, coins, view);
  for (let i = 0; i < tx.ins.length; i++) verifyInput(tx, i, coins, view.rules);
  return { fee: valueIn - valueOut, coins };
}
