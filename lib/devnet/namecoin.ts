// The devnet's Namecoin node: a Namecoin regtest chain (name rules in names.ts) with Namecoin Core's wallet
// and name JSON-RPC over HTTP — the methods, argument forms, result shapes, error codes and messages of
// Namecoin Core (src/rpc/names.cpp, src/wallet/rpc/walletnames.cpp; observed shapes in
// shared/notes/namecoin-rpc.md). Name operations are real transactions in real blocks, so anything indexing
// the chain (an Electrum server) sees them.
//
//   <dir>/blocks.dat, mempool.json   the chain (as the Bitcoin devnet keeps its own)
//   <dir>/wallets/<name>.json        the node's wallets (namecoin-wallet.ts); "default" is made on first open

import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import { Chain } from './chain';
import { satsToBtc } from './consensus';
import { NameRules, nameOutput, type NameData } from './names';
import { NodeWallet, WALLET, walletFile, type WalletCoin } from './namecoin-wallet';
import { namecoinRegtest } from './params';
import { RpcError } from './rpc-error';
import { bitcoindMethods, decodeTx, outputScript, RPC, RpcContext, RpcCredentials, RpcHandler, RpcServer } from './rpc-server';
import {
  MAX_NAME_LENGTH, MAX_VALUE_LENGTH, NAME_LOCKED_AMOUNT, NAMECOIN_TX_VERSION, buildNameFirstupdate, buildNameNew, buildNameUpdate, nameNewHash, parseNameScript,
} from '../names/script';

const RPC_TRANSACTION_ERROR = -25;
const DEFAULT_WALLET = 'default';


/** Core's EncodeNameForMessage for ASCII names: the name in single quotes. */
const quoted = (name: Buffer) => `'${name.toString('latin1')}'`;

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new RpcError(RPC.TYPE_ERROR, `JSON value of type ${v === null ? 'null' : typeof v} is not of expected type string (${what})`);
  return v;
}

function options(v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new RpcError(RPC.TYPE_ERROR, 'JSON value is not an object as expected');
  return v as Record<string, unknown>;
}

const hex = (v: unknown, what: string) => {
  const s = str(v, what);
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new RpcError(RPC.INVALID_PARAMETER, `${what} must be hexadecimal string (not '${s}')`);
  return Buffer.from(s, 'hex');
};

export class NamecoinNode {
  readonly chain: Chain;
  readonly names: NameRules;
  readonly rpc: RpcServer;
  private readonly wallets = new Map<string, NodeWallet>();

  constructor(
    readonly dir: string,
    credentials: RpcCredentials,
    log: (msg: string) => void = () => {},
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.names = new NameRules();
    this.chain = new Chain({ dir, log: (m) => log(`namecoin: ${m}`), params: namecoinRegtest(this.names) });
    const walletDir = path.join(dir, 'wallets');
    fs.mkdirSync(walletDir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(walletDir)) {
      if (f.endsWith('.json')) this.wallets.set(f.slice(0, -5), NodeWallet.load(dir, f.slice(0, -5), this.chain));
    }
    if (!this.wallets.has(DEFAULT_WALLET) && this.wallets.size === 0) this.wallets.set(DEFAULT_WALLET, NodeWallet.create(dir, DEFAULT_WALLET, this.chain));
    this.rpc = new RpcServer(credentials, log).register(bitcoindMethods(this.chain)).register(this.methods());
  }

  wallet(name = DEFAULT_WALLET): NodeWallet {
    const w = this.wallets.get(name);
    if (!w) throw new RpcError(WALLET.NOT_FOUND, 'Requested wallet does not exist or is not loaded');
    return w;
  }

  /** The wallet of a request, as bitcoind's GetWalletForJSONRPCRequest picks it. */
  private walletFor(ctx: RpcContext): NodeWallet {
    if (ctx.wallet !== undefined) return this.wallet(ctx.wallet);
    if (this.wallets.size === 1) return [...this.wallets.values()][0];
    if (this.wallets.size === 0) {
      throw new RpcError(WALLET.NOT_FOUND, 'No wallet is loaded. Load a wallet using loadwallet or create a new one with createwallet. (Note: A default wallet is no longer automatically created)');
    }
    throw new RpcError(WALLET.NOT_SPECIFIED, 'Wallet file not specified (must request wallet RPC through /wallet/<filename> uri-path).');
  }

  /** For the non-wallet name calls: the wallet when one is unambiguous (adds "ismine"), else none. */
  private maybeWallet(ctx: RpcContext): NodeWallet | undefined {
    try {
      return this.walletFor(ctx);
    } catch (err) {
      if (ctx.wallet !== undefined) throw err;
      return undefined;
    }
  }

  private address(script: Uint8Array): string {
    try {
      return bitcoin.address.fromOutputScript(Buffer.from(parseNameScript(script)?.address ?? script), this.chain.params.network);
    } catch {
      return '<nonstandard>';
    }
  }

  private nameInfo(d: NameData, wallet?: NodeWallet) {
    const expiresIn = d.height + this.names.expirationDepth - this.chain.height;
    return {
      name: d.name.toString('latin1'),
      name_encoding: 'ascii',
      value: d.value.toString('latin1'),
      value_encoding: 'ascii',
      txid: d.txid,
      vout: d.vout,
      address: this.address(d.script),
      height: d.height,
      expires_in: expiresIn,
      expired: expiresIn <= 0,
      ...(wallet ? { ismine: wallet.isMine(d.script) } : {}),
    };
  }

  private nameArg(v: unknown): Buffer {
    const name = Buffer.from(str(v, 'name'), 'latin1');
    if (name.length > MAX_NAME_LENGTH) throw new RpcError(RPC.INVALID_PARAMETER, 'the name is too long');
    return name;
  }

  private valueArg(v: unknown): Buffer {
    const value = Buffer.from(str(v, 'value'), 'latin1');
    if (value.length > MAX_VALUE_LENGTH) throw new RpcError(RPC.INVALID_PARAMETER, 'the value is too long');
    return value;
  }

  private isActive(name: Buffer): boolean {
    const d = this.names.get(name);
    return d !== undefined && !this.names.isExpired(d, this.chain.height);
  }

  /** Mempool name operations (firstupdate / update), oldest first. */
  private pending(): Array<{ txid: string; vout: number; script: Buffer; op: 'name_firstupdate' | 'name_update'; name: Buffer; value: Buffer }> {
    const out = [];
    for (const e of this.chain.mempool.all()) {
      if (e.tx.version !== NAMECOIN_TX_VERSION) continue;
      const n = nameOutput(e.tx);
      if (!n || n.op.op === 'name_new') continue;
      out.push({ txid: e.txid, vout: n.vout, script: Buffer.from(e.tx.outs[n.vout].script), op: n.op.op, name: n.op.name, value: n.op.value });
    }
    return out;
  }

  private walletCoin(txid: string, vout: number): WalletCoin | undefined {
    const coin = this.chain.coin(txid, vout);
    return coin && { ...coin, txid, vout };
  }

  private methods(): Record<string, RpcHandler> {
    return {
      getblockchaininfo: () => ({
        chain: 'regtest',
        blocks: this.chain.height,
        headers: this.chain.height,
        bestblockhash: this.chain.tipHash,
        difficulty: 4.656542373906925e-10,
        time: this.chain.blockAt(this.chain.height)!.timestamp,
        mediantime: this.chain.medianTimePast(this.chain.height),
        verificationprogress: 1,
        initialblockdownload: false,
        chainwork: (BigInt(this.chain.height + 1) * 2n).toString(16).padStart(64, '0'),
        size_on_disk: 0,
        pruned: false,
        warnings: [],
      }),

      // ---- wallets ----
      listwallets: () => [...this.wallets.keys()],
      createwallet: ([name]) => {
        const n = str(name, 'wallet_name');
        if (this.wallets.has(n)) throw new RpcError(WALLET.WALLET_ERROR, `Wallet file verification failed. Failed to create database path '${path.dirname(walletFile(this.dir, n))}/${n}'. Database already exists.`);
        this.wallets.set(n, NodeWallet.create(this.dir, n, this.chain));
        return { name: n };
      },
      loadwallet: ([name]) => {
        const n = str(name, 'filename');
        if (this.wallets.has(n)) throw new RpcError(WALLET.ALREADY_LOADED, `Wallet "${n}" is already loaded.`);
        this.wallets.set(n, NodeWallet.load(this.dir, n, this.chain));
        return { name: n };
      },
      unloadwallet: ([name], ctx) => {
        const w = name === undefined || name === null ? this.walletFor(ctx) : this.wallet(str(name, 'wallet_name'));
        this.wallets.delete(w.name);
        return {};
      },
      getwalletinfo: (_p, ctx) => {
        const w = this.walletFor(ctx);
        const unlocked = w.unlockedUntilSeconds;
        return { walletname: w.name, walletversion: 169900, format: 'sqlite', balance: satsToBtc(w.balance()), txcount: w.transactions().length, descriptors: true, ...(unlocked !== undefined ? { unlocked_until: unlocked } : {}) };
      },
      encryptwallet: ([pass], ctx) => {
        this.walletFor(ctx).encrypt(str(pass, 'passphrase'));
        return 'wallet encrypted; The keypool has been flushed and a new HD seed was generated. You need to make a new backup with the backupwallet RPC.';
      },
      walletpassphrase: ([pass, timeout], ctx) => {
        if (typeof timeout !== 'number' || timeout < 0) throw new RpcError(RPC.INVALID_PARAMETER, 'Timeout cannot be negative.');
        this.walletFor(ctx).unlock(str(pass, 'passphrase'), Math.min(timeout, 100_000_000));
        return null;
      },
      walletlock: (_p, ctx) => {
        this.walletFor(ctx).lock();
        return null;
      },
      getnewaddress: ([, type], ctx) => {
        const t = type === undefined || type === null ? 'bech32' : str(type, 'address_type');
        if (t !== 'bech32' && t !== 'legacy') throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, `Unknown address type '${t}'`);
        return this.walletFor(ctx).newAddress(t);
      },
      getbalance: (_p, ctx) => satsToBtc(this.walletFor(ctx).balance()),
      sendtoaddress: ([address, amount], ctx) => {
        const sats = BigInt(Math.round(Number(amount) * 1e8));
        if (!(sats > 0n)) throw new RpcError(RPC.TYPE_ERROR, 'Invalid amount for send');
        return this.walletFor(ctx).send([{ script: outputScript(address, this.chain.params.network), value: sats }]);
      },
      gettransaction: ([txid], ctx) => {
        const w = this.walletFor(ctx);
        const id = str(txid, 'txid').toLowerCase();
        const found = w.transactions().find((t) => t.txid === id);
        if (!found) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'Invalid or non-wallet transaction id');
        return this.walletTx(w, found);
      },
      listtransactions: ([, count, skip], ctx) => {
        const w = this.walletFor(ctx);
        const n = typeof count === 'number' ? count : 10;
        const from = typeof skip === 'number' ? skip : 0;
        const entries = w.transactions().flatMap((t) => this.walletEntries(w, t));
        return entries.slice(Math.max(0, entries.length - from - n), entries.length - from);
      },

      // ---- names ----
      name_show: ([name, opts], ctx) => {
        const n = this.nameArg(name);
        const o = options(opts);
        const d = this.names.get(n);
        if (!d) throw new RpcError(WALLET.WALLET_ERROR, `name never existed: ${quoted(n)}`);
        const info = this.nameInfo(d, this.maybeWallet(ctx));
        // Core (-allowexpired defaults to false): an expired name is an error unless allowExpired is true
        if (info.expired && o.allowExpired !== true) throw new RpcError(WALLET.WALLET_ERROR, `name expired: ${quoted(n)}`);
        return info;
      },
      // nc31.1 keeps no name history unless started with -namehistory (off by default, and off in the real-server rig)
      name_history: () => {
        throw new RpcError(RPC.MISC_ERROR, '-namehistory is not enabled');
      },
      name_scan: ([start, count], ctx) => {
        const from = start === undefined || start === null ? Buffer.alloc(0) : this.nameArg(start);
        const n = typeof count === 'number' ? count : 500;
        const wallet = this.maybeWallet(ctx);
        return this.names.all().filter((d) => Buffer.compare(d.name, from) >= 0).slice(0, Math.max(0, n)).map((d) => this.nameInfo(d, wallet));
      },
      name_list: ([name], ctx) => {
        const w = this.walletFor(ctx);
        const filter = name === undefined || name === null ? undefined : this.nameArg(name);
        return this.names.all().filter((d) => w.isMine(d.script) && (!filter || d.name.equals(filter))).map((d) => this.nameInfo(d, w));
      },
      name_pending: ([name, opts], ctx) => {
        const wallet = this.maybeWallet(ctx);
        const filter = name === undefined || name === null ? undefined : this.nameArg(name);
        const mineOnly = options(opts).mineOnly === true;
        if (mineOnly && !wallet) throw new RpcError(WALLET.NOT_FOUND, 'mineOnly requires a wallet to be loaded');
        return this.pending()
          .filter((p) => (!filter || p.name.equals(filter)) && (!mineOnly || wallet!.isMine(p.script)))
          .map((p) => ({
            name: p.name.toString('latin1'),
            name_encoding: 'ascii',
            value: p.value.toString('latin1'),
            value_encoding: 'ascii',
            txid: p.txid,
            vout: p.vout,
            address: this.address(p.script),
            ...(wallet ? { ismine: wallet.isMine(p.script) } : {}),
            op: p.op,
          }));
      },
      name_new: ([name, opts], ctx) => {
        const w = this.walletFor(ctx);
        const n = this.nameArg(name);
        const o = options(opts);
        if (!(o.allowExisting === true || o.allow_existing === true) && this.isActive(n)) throw new RpcError(RPC_TRANSACTION_ERROR, 'this name exists already');
        w.ensureUnlocked();
        const dest = this.destination(w, o);
        // nc31.1 (descriptor wallets): a random rand, which only the caller keeps
        const rand = crypto.randomBytes(20);
        const txid = w.send([{ script: buildNameNew(dest, n, rand), value: NAME_LOCKED_AMOUNT }]);
        return [txid, rand.toString('hex')];
      },
      name_firstupdate: ([name, rand, txid, value, opts, allowActive], ctx) => {
        const w = this.walletFor(ctx);
        const n = this.nameArg(name);
        const o = options(opts);
        const fixedRand = rand !== undefined && rand !== null;
        let r: Buffer | undefined = fixedRand ? hex(rand, 'rand') : undefined;
        if (r && r.length > 20) throw new RpcError(RPC.INVALID_PARAMETER, 'invalid rand value');
        const v = value === undefined || value === null ? Buffer.alloc(0) : this.valueArg(value);
        if (this.pending().some((p) => p.op === 'name_firstupdate' && p.name.equals(n))) throw new RpcError(RPC_TRANSACTION_ERROR, 'this name is already being registered');
        if (allowActive !== true && this.isActive(n)) throw new RpcError(RPC_TRANSACTION_ERROR, 'this name is already active');
        let prevTxid: string | undefined;
        if (txid !== undefined && txid !== null) {
          const t = str(txid, 'tx');
          if (!/^[0-9a-fA-F]{64}$/.test(t)) throw new RpcError(RPC.INVALID_PARAMETER, 'invalid txid');
          prevTxid = t.toLowerCase();
        } else {
          // Scan the wallet for a name_new whose hash matches the given rand (nc31.1 cannot derive one).
          for (const t of w.transactions()) {
            const out = nameOutput(t.tx);
            if (out?.op.op !== 'name_new') continue;
            if (r && nameNewHash(n, r).equals(out.op.hash)) {
              prevTxid = t.txid;
              break;
            }
          }
        }
        if (!prevTxid) throw new RpcError(RPC_TRANSACTION_ERROR, 'scan for previous txid failed');
        // Like Core (getNamePrevout), only a confirmed, unspent name output counts.
        const prevTx = this.chain.transaction(prevTxid);
        const out = prevTx?.height !== undefined ? nameOutput(prevTx.tx) : undefined;
        const coin = out && this.chain.coin(prevTxid, out.vout);
        if (!out || !coin || coin.height > this.chain.height) throw new RpcError(RPC_TRANSACTION_ERROR, 'previous txid not found');
        // nc31.1's descriptor wallets cannot derive a name_new's rand from its key: without rand it fails.
        if (!r) throw new RpcError(RPC_TRANSACTION_ERROR, 'could not generate rand for txid');
        if (out.op.op !== 'name_new') throw new RpcError(RPC_TRANSACTION_ERROR, 'previous tx is not name_new');
        const salt: Buffer = r;
        if (!nameNewHash(n, salt).equals(out.op.hash)) throw new RpcError(RPC_TRANSACTION_ERROR, 'rand value is wrong');
        w.ensureUnlocked();
        const dest = this.destination(w, o);
        return w.send([{ script: buildNameFirstupdate(dest, n, v, salt), value: NAME_LOCKED_AMOUNT }], { ...coin, txid: prevTxid, vout: out.vout });
      },

      // ---- raw transactions (how a caller chooses a name_new's rand: namerawtransaction) ----
      createrawtransaction: ([inputs, outputs, locktime]) => {
        if (!Array.isArray(inputs)) throw new RpcError(RPC.TYPE_ERROR, 'JSON value is not an array as expected');
        const tx = new bitcoin.Transaction();
        tx.version = 2;
        tx.locktime = typeof locktime === 'number' ? locktime : 0;
        for (const i of inputs as Array<{ txid?: unknown; vout?: unknown; sequence?: unknown }>) {
          const t = str(i?.txid, 'txid');
          if (!/^[0-9a-fA-F]{64}$/.test(t)) throw new RpcError(RPC.INVALID_PARAMETER, `txid must be of length 64 (not ${t.length}, for '${t}')`);
          if (typeof i.vout !== 'number' || i.vout < 0) throw new RpcError(RPC.INVALID_PARAMETER, 'Invalid parameter, missing vout key');
          tx.addInput(Buffer.from(t, 'hex').reverse(), i.vout, typeof i.sequence === 'number' ? i.sequence : 0xfffffffd);
        }
        const list = Array.isArray(outputs) ? outputs : [options(outputs)];
        for (const o of list as Array<Record<string, unknown>>) {
          for (const [address, amount] of Object.entries(options(o))) {
            let script: Uint8Array;
            try {
              script = bitcoin.address.toOutputScript(address, this.chain.params.network);
            } catch {
              throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, `Invalid address: ${address}`);
            }
            const sats = BigInt(Math.round(Number(amount) * 1e8));
            if (!(sats >= 0n)) throw new RpcError(RPC.TYPE_ERROR, 'Invalid amount');
            tx.addOutput(script, sats);
          }
        }
        return tx.toHex();
      },
      namerawtransaction: ([rawHex, vout, nameop]) => {
        const tx = decodeTx(rawHex);
        if (typeof vout !== 'number' || vout < 0 || vout >= tx.outs.length) throw new RpcError(RPC.INVALID_PARAMETER, 'vout is out of range');
        const op = options(nameop);
        const n = this.nameArg(op.name);
        const dest = Buffer.from(tx.outs[vout].script);
        let script: Buffer;
        let rand: Buffer | undefined;
        switch (op.op) {
          case 'name_new':
            rand = op.rand === undefined ? crypto.randomBytes(20) : hex(op.rand, 'rand');
            if (rand.length > 20) throw new RpcError(RPC.INVALID_PARAMETER, 'rand value is too large');
            script = buildNameNew(dest, n, rand);
            break;
          case 'name_firstupdate':
            script = buildNameFirstupdate(dest, n, this.valueArg(op.value), hex(op.rand, 'rand'));
            break;
          case 'name_update':
            script = buildNameUpdate(dest, n, this.valueArg(op.value));
            break;
          default:
            throw new RpcError(RPC.INVALID_PARAMETER, 'Invalid name operation');
        }
        tx.outs[vout].script = script;
        tx.version = NAMECOIN_TX_VERSION;
        return rand ? { rand: rand.toString('hex'), hex: tx.toHex() } : { hex: tx.toHex() };
      },
      fundrawtransaction: ([rawHex], ctx) => {
        const { tx, fee, changepos } = this.walletFor(ctx).fund(decodeTx(rawHex));
        return { hex: tx.toHex(), fee: satsToBtc(fee), changepos };
      },
      signrawtransactionwithwallet: ([rawHex], ctx) => {
        const { tx, complete } = this.walletFor(ctx).signRaw(decodeTx(rawHex));
        return { hex: tx.toHex(), complete };
      },

      name_update: ([name, value, opts], ctx) => {
        const w = this.walletFor(ctx);
        const n = this.nameArg(name);
        const o = options(opts);
        let v = value === undefined || value === null ? undefined : this.valueArg(value);
        // Build on the last pending operation of the name if there is one, else on the name's confirmed output.
        const pending = this.pending().filter((p) => p.name.equals(n)).pop();
        let outpoint: { txid: string; vout: number };
        if (pending) {
          outpoint = pending;
          v ??= pending.value;
        } else {
          const d = this.names.get(n);
          if (!d || this.names.isExpired(d, this.chain.height)) throw new RpcError(RPC_TRANSACTION_ERROR, 'this name can not be updated');
          outpoint = d;
          v ??= d.value;
        }
        const coin = this.walletCoin(outpoint.txid, outpoint.vout);
        if (!coin) throw new RpcError(RPC_TRANSACTION_ERROR, 'this name can not be updated');
        w.ensureUnlocked();
        const dest = this.destination(w, o);
        return w.send([{ script: buildNameUpdate(dest, n, v), value: NAME_LOCKED_AMOUNT }], coin);
      },
    };
  }

  private destination(w: NodeWallet, o: Record<string, unknown>): Buffer {
    const given = o.destAddress ?? o.dest_address;
    if (given === undefined) return w.nameDestination();
    try {
      return Buffer.from(bitcoin.address.toOutputScript(str(given, 'destAddress'), this.chain.params.network));
    } catch {
      throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'invalid address');
    }
  }

  private confirmations(height?: number): number {
    return height === undefined ? 0 : this.chain.height - height + 1;
  }

  private walletTx(w: NodeWallet, t: { tx: bitcoin.Transaction; txid: string; height?: number; pos?: number }) {
    const { received, sent, fee } = w.amounts(t.tx);
    const block = t.height !== undefined ? this.chain.blockAt(t.height)! : undefined;
    return {
      amount: satsToBtc(received - sent + (fee ?? 0n)),
      ...(fee !== undefined ? { fee: satsToBtc(-fee) } : {}),
      confirmations: this.confirmations(t.height),
      ...(block ? { blockhash: block.getId(), blockheight: t.height, blockindex: t.pos, blocktime: block.timestamp } : {}),
      txid: t.txid,
      time: block?.timestamp ?? Math.floor(Date.now() / 1000),
      details: this.walletEntries(w, t).map(({ confirmations: _c, txid: _t, ...d }) => d),
      hex: t.tx.toHex(),
    };
  }

  /** listtransactions entries of one transaction: one per output received, or per output sent elsewhere. */
  private walletEntries(w: NodeWallet, t: { tx: bitcoin.Transaction; txid: string; height?: number }) {
    const { sent, fee } = w.amounts(t.tx);
    const confirmations = this.confirmations(t.height);
    const common = { confirmations, txid: t.txid, ...(t.height !== undefined ? { blockheight: t.height, blockhash: this.chain.hashAt(t.height) } : {}) };
    const entries: Array<Record<string, unknown>> = [];
    t.tx.outs.forEach((o, vout) => {
      const mine = w.isMine(o.script);
      const nameOp = parseNameScript(o.script);
      const name = nameOp ? { name: nameOp.op === 'name_new' ? 'new' : `${nameOp.op === 'name_update' ? 'update' : 'firstupdate'}: ${nameOp.name.toString('latin1')}` } : {};
      if (sent > 0n && !mine) {
        entries.push({ address: this.address(o.script), category: 'send', amount: satsToBtc(-o.value), vout, fee: satsToBtc(-(fee ?? 0n)), ...name, ...common });
      } else if (mine && (sent === 0n || nameOp)) {
        const category = t.tx.isCoinbase() ? (confirmations >= 100 ? 'generate' : 'immature') : 'receive';
        entries.push({ address: this.address(o.script), category, amount: satsToBtc(o.value), vout, ...name, ...common });
      }
    });
    return entries;
  }

  async close(): Promise<void> {
    await this.rpc.stop();
  }
}
