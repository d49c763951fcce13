// The wallets of the devnet's Namecoin node, as Namecoin Core's wallet behaves toward JSON-RPC callers:
// keys made on demand (bech32 for coins, legacy P2PKH for name outputs, as observed on a real node), coins
// found by scanning the chain for the wallet's scripts, name transactions built, signed and submitted to the
// chain's mempool, an encrypted wallet that must be unlocked with walletpassphrase before it signs.
//
//   <dir>/wallets/<name>.json   0600: { keys: [wif…], passphrase?: scrypt hash } (a devnet wallet: the keys are
//                               NOT encrypted on disk; "encryption" here only models the lock state)

import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import { Chain } from './chain';
import { COINBASE_MATURITY } from './consensus';
import { ECPair } from './keys';
import { writeFileAtomic } from './layout';
import { RpcError } from './rpc-error';
import { dustThreshold, txidOfInput, type Coin } from './validation';
import { NAME_LOCKED_AMOUNT, NAMECOIN_TX_VERSION, addressScript, parseNameScript } from '../names/script';

// Bitcoin Core's wallet error codes (src/rpc/protocol.h)
export const WALLET = {
  WALLET_ERROR: -4,
  INSUFFICIENT_FUNDS: -6,
  UNLOCK_NEEDED: -13,
  PASSPHRASE_INCORRECT: -14,
  WRONG_ENC_STATE: -15,
  NOT_FOUND: -18,
  NOT_SPECIFIED: -19,
  ALREADY_LOADED: -35,
} as const;

const FEE_SAT_PER_KVB = 100_000n; // Namecoin's 0.001 NMC/kvB
const SEQUENCE = 0xfffffffd;

type Key = ReturnType<typeof ECPair.fromWIF>;

interface WalletFile {
  keys: string[];
  passphrase?: { salt: string; hash: string };
}

export interface WalletCoin extends Coin {
  txid: string;
  vout: number;
}

const hashPassphrase = (pass: string, salt: Buffer) => crypto.scryptSync(pass, salt, 32).toString('hex');

export class NodeWallet {
  private readonly keys: Key[] = [];
  /** address script (hex) → key */
  private readonly byScript = new Map<string, Key>();
  private unlockedUntil = 0;

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly chain: Chain,
    private data: WalletFile,
  ) {
    for (const wif of data.keys) this.addKey(ECPair.fromWIF(wif, chain.params.network));
  }

  static create(dir: string, name: string, chain: Chain): NodeWallet {
    const file = walletFile(dir, name);
    if (fs.existsSync(file)) throw new RpcError(WALLET.WALLET_ERROR, `Wallet file verification failed. Failed to create database path '${path.dirname(file)}/${name}'. Database already exists.`);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const w = new NodeWallet(name, file, chain, { keys: [] });
    w.save();
    return w;
  }

  static load(dir: string, name: string, chain: Chain): NodeWallet {
    const file = walletFile(dir, name);
    if (!fs.existsSync(file)) throw new RpcError(WALLET.NOT_FOUND, `Wallet file verification failed. Failed to load database path '${path.dirname(file)}/${name}'. Path does not exist.`);
    return new NodeWallet(name, file, chain, JSON.parse(fs.readFileSync(file, 'utf8')) as WalletFile);
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.data, null, 2) + '\n', 0o600);
  }

  private addKey(key: Key): void {
    this.keys.push(key);
    const network = this.chain.params.network;
    for (const script of [bitcoin.payments.p2wpkh({ pubkey: key.publicKey, network }).output!, bitcoin.payments.p2pkh({ pubkey: key.publicKey, network }).output!]) {
      this.byScript.set(Buffer.from(script).toString('hex'), key);
    }
  }

  private newKey(): Key {
    const key = ECPair.makeRandom({ network: this.chain.params.network });
    this.data.keys.push(key.toWIF());
    this.save();
    this.addKey(key);
    return key;
  }

  /** getnewaddress: bech32 (default) or legacy */
  newAddress(type: 'bech32' | 'legacy' = 'bech32'): string {
    const key = this.newKey();
    const network = this.chain.params.network;
    return (type === 'legacy' ? bitcoin.payments.p2pkh({ pubkey: key.publicKey, network }) : bitcoin.payments.p2wpkh({ pubkey: key.publicKey, network })).address!;
  }

  isMine(script: Uint8Array): boolean {
    return this.byScript.has(Buffer.from(addressScript(script)).toString('hex'));
  }

  // ---- encryption (lock state) ----

  get encrypted(): boolean {
    return this.data.passphrase !== undefined;
  }
  get locked(): boolean {
    return this.encrypted && Date.now() >= this.unlockedUntil;
  }
  get unlockedUntilSeconds(): number | undefined {
    return this.encrypted ? (this.locked ? 0 : Math.floor(this.unlockedUntil / 1000)) : undefined;
  }

  encrypt(pass: string): void {
    if (this.encrypted) throw new RpcError(WALLET.WRONG_ENC_STATE, 'Error: running with an encrypted wallet, but encryptwallet was called.');
    if (!pass) throw new RpcError(-8, 'passphrase cannot be empty');
    const salt = crypto.randomBytes(16);
    this.data.passphrase = { salt: salt.toString('hex'), hash: hashPassphrase(pass, salt) };
    this.save();
    this.unlockedUntil = 0;
  }

  unlock(pass: string, seconds: number): void {
    if (!this.data.passphrase) throw new RpcError(WALLET.WRONG_ENC_STATE, 'Error: running with an unencrypted wallet, but walletpassphrase was called.');
    if (hashPassphrase(pass, Buffer.from(this.data.passphrase.salt, 'hex')) !== this.data.passphrase.hash) {
      throw new RpcError(WALLET.PASSPHRASE_INCORRECT, 'Error: The wallet passphrase entered was incorrect.');
    }
    this.unlockedUntil = Date.now() + seconds * 1000;
  }

  lock(): void {
    if (!this.encrypted) throw new RpcError(WALLET.WRONG_ENC_STATE, 'Error: running with an unencrypted wallet, but walletlock was called.');
    this.unlockedUntil = 0;
  }

  ensureUnlocked(): void {
    if (this.locked) throw new RpcError(WALLET.UNLOCK_NEEDED, 'Error: Please enter the wallet passphrase with walletpassphrase first.');
  }

  // ---- coins ----

  /** Spendable plain coins (no name outputs): mature confirmed ones, then the wallet's unconfirmed change. */
  spendable(): WalletCoin[] {
    const tip = this.chain.height;
    const coins: WalletCoin[] = [];
    for (const [key, coin] of this.chain.confirmedCoins()) {
      if (!this.byScript.has(Buffer.from(coin.script).toString('hex'))) continue; // name outputs have a prefix: never here
      if (coin.coinbase && tip + 1 - coin.height < COINBASE_MATURITY) continue;
      const [txid, vout] = key.split(':');
      if (this.chain.mempool.spender(txid, Number(vout))) continue;
      coins.push({ ...coin, txid, vout: Number(vout) });
    }
    for (const e of this.chain.mempool.all()) {
      e.tx.outs.forEach((o, vout) => {
        if (this.byScript.has(Buffer.from(o.script).toString('hex')) && !this.chain.mempool.spender(e.txid, vout)) {
          coins.push({ value: o.value, script: o.script, height: tip + 1, coinbase: false, txid: e.txid, vout });
        }
      });
    }
    return coins.sort((a, b) => a.height - b.height);
  }

  balance(): bigint {
    return this.spendable().reduce((s, c) => s + c.value, 0n);
  }

  /**
   * Builds, signs and submits a transaction paying `outputs` (the name output first), spending `nameInput`
   * when given plus wallet coins for the amount and the fee. Returns the txid.
   */
  send(outputs: Array<{ script: Uint8Array; value: bigint }>, nameInput?: WalletCoin): string {
    this.ensureUnlocked();
    const isName = outputs.some((o) => parseNameScript(o.script)) || nameInput !== undefined;
    const target = outputs.reduce((s, o) => s + o.value, 0n) - (nameInput?.value ?? 0n);
    const changeScript = bitcoin.payments.p2wpkh({ pubkey: (this.keys[0] ?? this.newKey()).publicKey, network: this.chain.params.network }).output!;
    const available = this.spendable();
    const chosen: WalletCoin[] = [];
    let total = 0n;
    let fee = 0n;
    for (;;) {
      fee = (BigInt(this.estimateVsize(chosen.length + (nameInput ? 1 : 0), outputs, changeScript)) * FEE_SAT_PER_KVB) / 1000n + 1n;
      if (total >= target + fee) break;
      const next = available.shift();
      if (!next) throw new RpcError(WALLET.INSUFFICIENT_FUNDS, 'Insufficient funds');
      chosen.push(next);
      total += next.value;
    }
    const tx = new bitcoin.Transaction();
    tx.version = isName ? NAMECOIN_TX_VERSION : 2;
    const inputs = nameInput ? [nameInput, ...chosen] : chosen;
    for (const c of inputs) tx.addInput(Buffer.from(c.txid, 'hex').reverse(), c.vout, SEQUENCE);
    const outs = [...outputs];
    const change = total - target - fee;
    if (change >= dustThreshold(changeScript)) {
      // Like Core, the change goes to a random position, so the name output is at vout 0 or 1.
      outs.splice(crypto.randomInt(outs.length + 1), 0, { script: changeScript, value: change });
    }
    for (const o of outs) tx.addOutput(o.script, o.value);
    this.sign(tx, inputs);
    return this.chain.submit(tx);
  }

  /**
   * fundrawtransaction: adds wallet coins (and a change output at a random position) to `tx` so that it pays
   * its outputs and the fee. Inputs already in `tx` are kept and counted. Nothing is signed or sent.
   */
  fund(tx: bitcoin.Transaction): { tx: bitcoin.Transaction; fee: bigint; changepos: number } {
    const given = tx.ins.map((i) => this.coinOf(txidOfInput(i), i.index));
    if (given.some((c) => !c)) throw new RpcError(WALLET.WALLET_ERROR, 'Insufficient funds'); // (Core: "Unable to find UTXO for external input")
    const have = given.reduce((s, c) => s + c!.value, 0n);
    const outputs = tx.outs.map((o) => ({ script: o.script, value: BigInt(o.value) }));
    const target = outputs.reduce((s, o) => s + o.value, 0n) - have;
    const changeScript = bitcoin.payments.p2wpkh({ pubkey: (this.keys[0] ?? this.newKey()).publicKey, network: this.chain.params.network }).output!;
    const taken = new Set(tx.ins.map((i) => `${txidOfInput(i)}:${i.index}`));
    const available = this.spendable().filter((c) => !taken.has(`${c.txid}:${c.vout}`));
    const chosen: WalletCoin[] = [];
    let total = 0n;
    let fee = 0n;
    for (;;) {
      fee = (BigInt(this.estimateVsize(chosen.length + given.length, outputs, changeScript)) * FEE_SAT_PER_KVB) / 1000n + 1n;
      if (total >= target + fee) break;
      const next = available.shift();
      if (!next) throw new RpcError(WALLET.INSUFFICIENT_FUNDS, 'Insufficient funds');
      chosen.push(next);
      total += next.value;
    }
    const out = new bitcoin.Transaction();
    out.version = tx.version;
    out.locktime = tx.locktime;
    for (const i of tx.ins) out.addInput(i.hash, i.index, i.sequence);
    for (const c of chosen) out.addInput(Buffer.from(c.txid, 'hex').reverse(), c.vout, SEQUENCE);
    const outs = [...outputs];
    const change = total - target - fee;
    let changepos = -1;
    if (change >= dustThreshold(changeScript)) {
      changepos = crypto.randomInt(outs.length + 1);
      outs.splice(changepos, 0, { script: changeScript, value: change });
    } else {
      fee += change;
    }
    for (const o of outs) out.addOutput(o.script, o.value);
    return { tx: out, fee, changepos };
  }

  /** signrawtransactionwithwallet: signs every input whose coin the wallet holds; complete when all are signed. */
  signRaw(tx: bitcoin.Transaction): { tx: bitcoin.Transaction; complete: boolean } {
    this.ensureUnlocked();
    const coins = tx.ins.map((i) => this.coinOf(txidOfInput(i), i.index));
    const ours = coins.every((c) => c && this.byScript.has(Buffer.from(addressScript(c.script)).toString('hex')));
    if (!ours) return { tx, complete: false };
    this.sign(tx, coins as WalletCoin[]);
    return { tx, complete: true };
  }

  /** An unspent output in the chain or the mempool. */
  private coinOf(txid: string, vout: number): WalletCoin | undefined {
    const coin = this.chain.coin(txid, vout);
    if (coin) return { ...coin, txid, vout };
    const e = this.chain.mempool.all().find((m) => m.txid === txid);
    const o = e?.tx.outs[vout];
    return o && !this.chain.mempool.spender(txid, vout) ? { value: BigInt(o.value), script: o.script, height: this.chain.height + 1, coinbase: false, txid, vout } : undefined;
  }

  private estimateVsize(nInputs: number, outputs: Array<{ script: Uint8Array }>, change: Uint8Array): number {
    const outSize = (s: Uint8Array) => 8 + 3 + s.length;
    return 11 + 149 * nInputs + outputs.reduce((n, o) => n + outSize(o.script), 0) + outSize(change);
  }

  private sign(tx: bitcoin.Transaction, coins: WalletCoin[]): void {
    coins.forEach((coin, i) => {
      const addr = Buffer.from(addressScript(coin.script));
      const key = this.byScript.get(addr.toString('hex'));
      if (!key) throw new RpcError(WALLET.WALLET_ERROR, `Not solvable pre-selected input ${coin.txid}:${coin.vout}`);
      if (addr.length === 22 && addr[0] === 0) {
        const scriptCode = bitcoin.payments.p2pkh({ hash: addr.subarray(2) }).output!;
        const hash = tx.hashForWitnessV0(i, scriptCode, coin.value, bitcoin.Transaction.SIGHASH_ALL);
        tx.setWitness(i, [bitcoin.script.signature.encode(Buffer.from(key.sign(hash)), bitcoin.Transaction.SIGHASH_ALL), Buffer.from(key.publicKey)]);
      } else {
        const hash = tx.hashForSignature(i, coin.script, bitcoin.Transaction.SIGHASH_ALL);
        const sig = bitcoin.script.signature.encode(Buffer.from(key.sign(hash)), bitcoin.Transaction.SIGHASH_ALL);
        tx.setInputScript(i, bitcoin.script.compile([sig, Buffer.from(key.publicKey)]));
      }
    });
  }

  /** A legacy P2PKH script of a fresh key: where name outputs go. */
  nameDestination(): Buffer {
    const key = this.newKey();
    return Buffer.from(bitcoin.payments.p2pkh({ pubkey: key.publicKey, network: this.chain.params.network }).output!);
  }

  // ---- transactions ----

  /** Every transaction touching the wallet, confirmed ones in chain order, then the mempool's. */
  transactions(): Array<{ tx: bitcoin.Transaction; txid: string; height?: number; pos?: number }> {
    const out: Array<{ tx: bitcoin.Transaction; txid: string; height?: number; pos?: number }> = [];
    const prevOut = (input: bitcoin.TxInput) => this.chain.transaction(txidOfInput(input))?.tx.outs[input.index];
    const touches = (tx: bitcoin.Transaction) =>
      tx.outs.some((o) => this.isMine(o.script)) || (!tx.isCoinbase() && tx.ins.some((i) => { const p = prevOut(i); return p !== undefined && this.isMine(p.script); }));
    for (let h = 1; h <= this.chain.height; h++) {
      this.chain.blockAt(h)!.transactions!.forEach((tx, pos) => {
        if (touches(tx)) out.push({ tx, txid: tx.getId(), height: h, pos });
      });
    }
    for (const e of this.chain.mempool.all()) if (touches(e.tx)) out.push({ tx: e.tx, txid: e.txid });
    return out;
  }

  /** Net effect of a transaction on the wallet, and its fee when the wallet paid it. */
  amounts(tx: bitcoin.Transaction): { received: bigint; sent: bigint; fee?: bigint } {
    let received = 0n;
    let sent = 0n;
    let allMine = !tx.isCoinbase();
    let valueIn = 0n;
    for (const o of tx.outs) if (this.isMine(o.script)) received += o.value;
    if (!tx.isCoinbase()) {
      for (const input of tx.ins) {
        const prev = this.chain.transaction(txidOfInput(input))?.tx.outs[input.index];
        if (prev && this.isMine(prev.script)) sent += prev.value;
        else allMine = false;
        valueIn += prev?.value ?? 0n;
      }
    }
    const fee = allMine ? valueIn - tx.outs.reduce((s, o) => s + o.value, 0n) : undefined;
    return { received, sent, fee };
  }
}

export function walletFile(dir: string, name: string): string {
  if (!/^[A-Za-z0-9_.-]*$/.test(name) || name === '.' || name === '..') throw new RpcError(-8, `Invalid wallet name "${name}"`);
  return path.join(dir, 'wallets', `${name || 'default'}.json`);
}

export { NAME_LOCKED_AMOUNT };
