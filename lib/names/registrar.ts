// Registers, renews and updates the daemon's .bit names through a Namecoin node: one persisted state
// machine per name (LevelDB N[name], lib/store/layout.ts), exact after a crash or an outage at any step.
//
//   unregistered ──name_new──▶ new-sent ──(1 conf)──▶ waiting ──(12 conf)──name_firstupdate──▶ firstupdate-sent
//        ▲                                                                                         │ (mined)
//        └──── expired ◀──── registered ◀──(mined)── update-sent ◀──name_update── registered ◀─────┘
//                            (renew when expires_in < lifetime / 3; update when the onion or --name-value changes)
//   taken: the name belongs to another wallet (or is being registered by one); looked at again each poll.
//
// Every paying call is bracketed by two synced writes: an intent (new-sending, firstupdate-sending,
// update-sending) before the RPC, the result after it. The name_new is built, funded and signed first
// (createrawtransaction, namerawtransaction with a rand we chose, fundrawtransaction,
// signrawtransactionwithwallet) and written with its rand, txid and raw hex before sendrawtransaction: a
// descriptor wallet cannot re-derive a lost rand (nc31.1: -25 "could not generate rand for txid"), so the rand
// must be ours before the coins move, and a restart re-sends the very same transaction (never a second one).
// A restart that finds an intent looks at the node (the wallet's transactions, name_pending, name_show)
// before paying again, so a crash never pays twice.
// The node's word is all this relies on: nothing here knows which Namecoin node it talks to.

import crypto from 'crypto';
import * as bitcoin from 'bitcoinjs-lib';
import { layout } from '../store/layout';
import type { Db } from '../store';
import { NamecoinError, NamecoinRpc, RPC_CODE } from './rpc';
import { parseNameScript } from './script';

export type NameState = 'unregistered' | 'new-sent' | 'waiting' | 'firstupdate-sent' | 'registered' | 'update-sent' | 'taken';
type Stored = NameState | 'new-sending' | 'firstupdate-sending' | 'update-sending';

/** Blocks a name_new must be buried before its name_firstupdate is mined (Namecoin's MIN_FIRSTUPDATE_DEPTH). */
export const FIRSTUPDATE_DEPTH = 12;

export interface NameRecord {
  name: string;
  state: Stored;
  /** name_new txid and rand; rand null when a crash lost it (records of versions that let the node choose it) */
  newTxid?: string;
  rand?: string | null;
  /** the signed name_new, written before it is sent: a restart sends exactly this transaction again */
  newHex?: string;
  /** name_new txids whose rand was lost: their 0.01 NMC stays locked, they are never used again */
  abandoned?: string[];
  newConfirmations?: number;
  /** chain height when the last intent was written */
  intentHeight?: number;
  /** txid of the last name_firstupdate / name_update we sent */
  txid?: string;
  /** the value we last sent, or the confirmed one */
  value?: string;
  /** confirmed state from name_show */
  height?: number;
  expiresIn?: number;
  lastError?: string;
}

export interface NameStatus {
  name: string;
  state: NameState;
  height: number | null;
  expiresIn: number | null;
  value: string | null;
  lastError: string | null;
}

interface NameInfo {
  name: string;
  value: string;
  txid: string;
  vout: number;
  address: string;
  height: number;
  expires_in: number;
  expired: boolean;
  ismine?: boolean;
}

interface Pending {
  name: string;
  value: string;
  txid: string;
  ismine?: boolean;
  op: 'name_firstupdate' | 'name_update';
}

export interface RegistrarOptions {
  db: Db;
  rpc: NamecoinRpc;
  names: string[];
  /** the value the name should carry now; undefined while there is nothing to publish (no onion yet) */
  desiredValue: () => string | undefined;
  /** why desiredValue() is undefined, for the status */
  missingValueReason?: () => string;
  pollMs: number;
  log: (line: string) => void;
  /** told of every paying transaction sent (the books count its fee as NMC spent) */
  paid?: (p: { op: 'name_new' | 'name_firstupdate' | 'name_update'; name: string; txid: string }) => void;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

export class Registrar {
  private readonly records = new Map<string, NameRecord>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private lastTip = -1;
  private lastFull = 0;
  private stopped = false;

  constructor(private readonly o: RegistrarOptions) {}

  async start(): Promise<void> {
    for (const name of this.o.names) {
      let rec: NameRecord = { name, state: 'unregistered' };
      try {
        rec = JSON.parse((await this.o.db.get(layout.name(name)))!.toString()) as NameRecord;
      } catch {
        // first start for this name
      }
      this.records.set(name, rec);
    }
    this.poll();
    this.timer = setInterval(() => this.poll(), this.o.pollMs);
    this.timer.unref();
  }

  /** Runs one pass unless one is running; resolves when the current pass ends. */
  poll(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  status(): NameStatus[] {
    return this.o.names.map((name) => {
      const r = this.records.get(name) ?? { name, state: 'unregistered' as const };
      return {
        name,
        state: publicState(r),
        height: r.height ?? null,
        expiresIn: r.expiresIn ?? null,
        value: r.value ?? null,
        lastError: r.lastError ?? null,
      };
    });
  }

  private async pass(): Promise<void> {
    // The cheap part: has the tip moved? Settled names need looking at only then (or once a minute).
    let tip: number;
    try {
      tip = await this.o.rpc.call<number>('getblockcount');
    } catch (err) {
      tip = -1;
      for (const name of this.o.names) await this.fail(name, err);
      return;
    }
    const settled = [...this.records.values()].every((r) => (r.state === 'registered' || r.state === 'taken') && !r.lastError);
    if (settled && tip === this.lastTip && Date.now() - this.lastFull < 60_000) return;
    this.lastTip = tip;
    this.lastFull = Date.now();
    // One name at a time: at most one paying call is in flight, so a crash leaves at most one open intent.
    for (const name of this.o.names) {
      if (this.stopped) return;
      const rec = this.records.get(name)!;
      try {
        await this.step(rec);
        const now = this.records.get(name)!;
        if (now.lastError) await this.save({ ...now, lastError: undefined });
      } catch (err) {
        await this.fail(name, err, rec.lastError);
      }
    }
  }

  /** Records why a name did not move (logged once per new reason); it is tried again on the next pass. */
  private async fail(name: string, err: unknown, previous = this.records.get(name)!.lastError): Promise<void> {
    if (!(err instanceof NamecoinError) && !(err instanceof Waiting)) this.o.log(`names: ${name}: ${(err as Error).stack}`);
    const message = (err as Error).message;
    if (message !== previous) this.o.log(`names: ${name}: ${message}`);
    const rec = this.records.get(name)!;
    if (message !== rec.lastError) await this.save({ ...rec, lastError: message });
  }

  private async save(rec: NameRecord): Promise<void> {
    await this.o.db.put(layout.name(rec.name), json(rec), { sync: true });
    this.records.set(rec.name, rec);
  }

  private async show(name: string): Promise<NameInfo | undefined> {
    try {
      // Namecoin Core answers an expired name with -4 "name expired" unless allowExpired is set
      return await this.o.rpc.call<NameInfo>('name_show', [name, { allowExpired: true }]);
    } catch (err) {
      if (err instanceof NamecoinError && err.code === RPC_CODE.WALLET_ERROR && /never existed|not found|name expired/.test(err.rpcMessage ?? '')) return undefined;
      throw err;
    }
  }

  private async pending(name: string): Promise<Pending[]> {
    return this.o.rpc.call<Pending[]>('name_pending', [name]);
  }

  private desired(): string {
    const value = this.o.desiredValue();
    if (value === undefined) throw new Waiting(this.o.missingValueReason?.() ?? 'no onion address to publish yet');
    return value;
  }

  /** Advances one name by at most one paying call. */
  private async step(rec: NameRecord): Promise<void> {
    const { name } = rec;
    const tip = await this.o.rpc.call<number>('getblockcount');
    switch (rec.state) {
      case 'unregistered':
      case 'taken': {
        const show = await this.show(name);
        if (show && !show.expired) {
          if (show.ismine) return this.confirmed(rec, show, 'registered (found in the wallet)');
          const taken = `${name} is registered to another wallet (${show.address}); it expires in ${show.expires_in} blocks`;
          if (rec.state !== 'taken' || rec.expiresIn !== show.expires_in) {
            await this.save({ ...rec, state: 'taken', height: show.height, expiresIn: show.expires_in, value: show.value, lastError: taken });
          }
          throw new Waiting(taken);
        }
        const pending = (await this.pending(name)).find((p) => p.op === 'name_firstupdate');
        if (pending?.ismine) return this.save({ ...rec, state: 'firstupdate-sent', txid: pending.txid, value: pending.value });
        if (pending) {
          const taken = `${name} is being registered by another wallet (transaction ${pending.txid})`;
          await this.save({ ...rec, state: 'taken', lastError: taken });
          throw new Waiting(taken);
        }
        const value = this.desired();
        // Nothing is paid until sendrawtransaction: a crash before it leaves only an unsent transaction.
        const rand = crypto.randomBytes(20).toString('hex');
        const { hex, txid: newTxid } = await this.buildNameNew(name, rand);
        // txid, rand and the signed transaction first, in one synced write: losing rand loses the name.
        const intent: NameRecord = { name, state: 'new-sending', intentHeight: tip, value, rand, newTxid, newHex: hex, abandoned: rec.abandoned };
        await this.save(intent);
        return this.sendNameNew(intent);
      }

      case 'new-sending': {
        // A crash (or a lost answer) between the intent and the result.
        if (rec.newHex) {
          if (await this.walletHas(rec.newTxid!)) return this.newSent(rec, 'sent before an interruption');
          return this.sendNameNew(rec);
        }
        // (a record of a version that let the node choose rand: did the node send the name_new?)
        const found = await this.findNameNew(rec.intentHeight ?? 0);
        if (found) {
          this.o.log(`names: ${name}: found name_new ${found} sent before an interruption by an older bitdrop; its rand was not saved: only a node that can derive it (a legacy wallet) can finish it`);
          return this.save({ ...rec, state: 'new-sent', newTxid: found, rand: null, newConfirmations: 0 });
        }
        this.o.log(`names: ${name}: the interrupted name_new never reached the node; sending it again`);
        return this.save({ name, state: 'unregistered' });
      }

      case 'new-sent':
      case 'waiting': {
        let confirmations: number;
        try {
          confirmations = (await this.o.rpc.call<{ confirmations: number }>('gettransaction', [rec.newTxid])).confirmations;
        } catch (err) {
          if (err instanceof NamecoinError && err.code === RPC_CODE.INVALID_ADDRESS_OR_KEY) confirmations = -1;
          else throw err;
        }
        if (confirmations < 0) {
          this.o.log(`names: ${name}: name_new ${rec.newTxid} is gone from the wallet (conflicted or evicted); starting over`);
          return this.save({ name, state: 'unregistered' });
        }
        if (confirmations < FIRSTUPDATE_DEPTH) {
          const state = confirmations >= 1 ? 'waiting' : 'new-sent';
          if (state !== rec.state || confirmations !== rec.newConfirmations) await this.save({ ...rec, state, newConfirmations: confirmations });
          return;
        }
        const show = await this.show(name);
        if (show && !show.expired && !show.ismine) {
          const taken = `${name} was registered by another wallet first (${show.address}); the name_new ${rec.newTxid} stays unused`;
          await this.save({ ...rec, state: 'taken', height: show.height, expiresIn: show.expires_in, value: show.value, lastError: taken });
          throw new Waiting(taken);
        }
        const pending = (await this.pending(name)).find((p) => p.op === 'name_firstupdate' && p.ismine);
        if (pending) return this.save({ ...rec, state: 'firstupdate-sent', txid: pending.txid, value: pending.value });
        const value = this.desired();
        await this.save({ ...rec, state: 'firstupdate-sending', intentHeight: tip, newConfirmations: confirmations });
        let txid: string;
        try {
          txid = await this.o.rpc.call<string>('name_firstupdate', [name, rec.rand ?? null, rec.newTxid, value]);
        } catch (err) {
          if (!rec.rand && err instanceof NamecoinError && err.code === RPC_CODE.TRANSACTION_ERROR && /rand/.test(err.rpcMessage ?? '')) {
            // The node cannot re-derive a lost rand (descriptor wallets): this name_new can never be used.
            // Start over with a name_new whose rand we keep, rather than retry forever.
            const why = `name_new ${rec.newTxid}'s rand was lost in an interruption and the node cannot derive it (${err.rpcMessage}); its 0.01 NMC stays locked; sending a new name_new`;
            await this.save({ name, state: 'unregistered', abandoned: [...(rec.abandoned ?? []), rec.newTxid!] });
            throw new Waiting(why); // logged and shown in status until the new name_new is sent
          }
          await this.undoIntent(err, { ...rec, state: 'waiting' });
          throw err;
        }
        await this.save({ ...rec, state: 'firstupdate-sent', txid, value, newConfirmations: confirmations });
        this.o.paid?.({ op: 'name_firstupdate', name, txid });
        this.o.log(`names: ${name}: name_firstupdate ${txid} sent`);
        return;
      }

      case 'firstupdate-sending': {
        const pending = (await this.pending(name)).find((p) => p.op === 'name_firstupdate' && p.ismine);
        if (pending) {
          this.o.log(`names: ${name}: found name_firstupdate ${pending.txid} sent before an interruption`);
          return this.save({ ...rec, state: 'firstupdate-sent', txid: pending.txid, value: pending.value });
        }
        const show = await this.show(name);
        if (show?.ismine && !show.expired) return this.confirmed(rec, show, 'registered (by a name_firstupdate sent before an interruption)');
        return this.save({ ...rec, state: 'waiting' });
      }

      case 'update-sending': {
        const pending = (await this.pending(name)).find((p) => p.op === 'name_update' && p.ismine);
        if (pending) {
          this.o.log(`names: ${name}: found name_update ${pending.txid} sent before an interruption`);
          return this.save({ ...rec, state: 'update-sent', txid: pending.txid, value: pending.value });
        }
        const show = await this.show(name);
        if (show?.ismine && show.txid !== rec.txid) return this.confirmed(rec, show, 'updated (by a name_update sent before an interruption)');
        return this.save({ ...rec, state: 'registered' });
      }

      case 'firstupdate-sent':
      case 'update-sent': {
        const show = await this.show(name);
        if (show && show.txid === rec.txid) return this.confirmed(rec, show, rec.state === 'firstupdate-sent' ? 'registered' : 'updated');
        const pending = await this.pending(name);
        if (pending.some((p) => p.txid === rec.txid)) {
          if (show && show.expires_in !== rec.expiresIn) await this.save({ ...rec, height: show.height, expiresIn: show.expires_in });
          return;
        }
        this.o.log(`names: ${name}: ${rec.txid} is neither confirmed nor pending any more; trying again`);
        return this.save({ ...rec, state: rec.state === 'firstupdate-sent' ? 'waiting' : 'registered' });
      }

      case 'registered': {
        const show = await this.show(name);
        if (!show || show.expired) {
          this.o.log(`names: ${name}: ${show ? 'expired' : 'no longer on the chain'}; registering it again`);
          return this.save({ name, state: 'unregistered' });
        }
        if (!show.ismine) {
          const taken = `${name} now belongs to another wallet (${show.address})`;
          await this.save({ ...rec, state: 'taken', height: show.height, expiresIn: show.expires_in, value: show.value, lastError: taken });
          throw new Waiting(taken);
        }
        const mine = (await this.pending(name)).find((p) => p.op === 'name_update' && p.ismine);
        if (mine) return this.save({ ...rec, state: 'update-sent', txid: mine.txid, value: mine.value });
        // The lifetime follows from what the node says: expires_in = height + lifetime - tip.
        const lifetime = show.expires_in + (tip - show.height);
        const value = this.o.desiredValue() ?? show.value;
        const renew = show.expires_in < lifetime / 3;
        if (value === show.value && !renew) {
          if (show.expires_in !== rec.expiresIn || show.height !== rec.height || show.value !== rec.value) {
            await this.save({ ...rec, height: show.height, expiresIn: show.expires_in, value: show.value, txid: show.txid });
          }
          return;
        }
        await this.save({ ...rec, state: 'update-sending', intentHeight: tip, txid: show.txid, height: show.height, expiresIn: show.expires_in });
        let txid: string;
        try {
          txid = await this.o.rpc.call<string>('name_update', [name, value]);
        } catch (err) {
          await this.undoIntent(err, { ...rec, state: 'registered' });
          throw err;
        }
        await this.save({ ...rec, state: 'update-sent', txid, value, height: show.height, expiresIn: show.expires_in });
        this.o.paid?.({ op: 'name_update', name, txid });
        this.o.log(`names: ${name}: name_update ${txid} sent (${value !== show.value ? 'new value' : `renewal, ${show.expires_in} of ${lifetime} blocks left`})`);
        return;
      }
    }
  }

  private async confirmed(rec: NameRecord, show: NameInfo, what: string): Promise<void> {
    await this.save({ name: rec.name, state: 'registered', txid: show.txid, value: show.value, height: show.height, expiresIn: show.expires_in });
    this.o.log(`names: ${rec.name}: ${what} at height ${show.height}, expires in ${show.expires_in} blocks`);
  }

  /**
   * A paying call failed. When the node answered with an error, nothing was sent: go back. When the answer was
   * lost (unreachable), the call may have happened: keep the intent, so the next pass looks before paying.
   */
  private async undoIntent(err: unknown, back: NameRecord): Promise<void> {
    if (err instanceof NamecoinError && err.kind !== 'unreachable') {
      if (err.code === RPC_CODE.TRANSACTION_ERROR && /exists already|already active|being registered/.test(err.rpcMessage ?? '')) {
        await this.save({ ...back, state: 'taken' });
      } else {
        await this.save(back);
      }
    }
  }

  /**
   * A name_new with our own rand, built, funded and signed by the node's wallet but not sent. (name_new itself
   * takes no rand in nc31.1; namerawtransaction does.)
   */
  private async buildNameNew(name: string, rand: string): Promise<{ hex: string; txid: string }> {
    const rpc = this.o.rpc;
    const address = await rpc.call<string>('getnewaddress', ['', 'legacy']);
    const raw = await rpc.call<string>('createrawtransaction', [[], { [address]: 0.01 }]);
    const named = await rpc.call<{ hex: string; rand?: string }>('namerawtransaction', [raw, 0, { op: 'name_new', name, rand }]);
    if (named.rand !== undefined && named.rand !== rand) throw new Error(`the node used rand ${named.rand} instead of ours`);
    const funded = await rpc.call<{ hex: string }>('fundrawtransaction', [named.hex]);
    const signed = await rpc.call<{ hex: string; complete: boolean }>('signrawtransactionwithwallet', [funded.hex]);
    if (!signed.complete) throw new Error('the wallet could not sign the name_new (signrawtransactionwithwallet: complete false)');
    return { hex: signed.hex, txid: bitcoin.Transaction.fromHex(signed.hex).getId() };
  }

  /** Sends the saved name_new (the intent is on disk). A refusal starts over; a lost answer keeps the intent. */
  private async sendNameNew(rec: NameRecord): Promise<void> {
    try {
      await this.o.rpc.call<string>('sendrawtransaction', [rec.newHex]);
    } catch (err) {
      if (!(err instanceof NamecoinError) || err.kind === 'unreachable') throw err;
      // already in the chain or the mempool counts as sent; anything else was refused and nothing was paid
      if (await this.walletHas(rec.newTxid!)) return this.newSent(rec, 'already known to the node');
      this.o.log(`names: ${rec.name}: the node refused name_new ${rec.newTxid} (${err.rpcMessage}); building a new one`);
      await this.save({ name: rec.name, state: 'unregistered', abandoned: rec.abandoned });
      throw err;
    }
    return this.newSent(rec, 'sent');
  }

  private async newSent(rec: NameRecord, how: string): Promise<void> {
    await this.save({ ...rec, state: 'new-sent', newHex: undefined, newConfirmations: 0 });
    this.o.paid?.({ op: 'name_new', name: rec.name, txid: rec.newTxid! });
    this.o.log(`names: ${rec.name}: name_new ${rec.newTxid} ${how}; name_firstupdate follows after ${FIRSTUPDATE_DEPTH} confirmations`);
  }

  private async walletHas(txid: string): Promise<boolean> {
    try {
      await this.o.rpc.call('gettransaction', [txid]);
      return true;
    } catch (err) {
      if (err instanceof NamecoinError && err.code === RPC_CODE.INVALID_ADDRESS_OR_KEY) return false;
      throw err;
    }
  }

  /** A name_new the wallet sent at or after `sinceHeight` (or still unconfirmed), not already known as ours. */
  private async findNameNew(sinceHeight: number): Promise<string | undefined> {
    const known = new Set([...this.records.values()].flatMap((r) => [r.newTxid, ...(r.abandoned ?? [])]).filter(Boolean));
    const entries = await this.o.rpc.call<Array<{ txid: string; confirmations: number; blockheight?: number; category: string }>>('listtransactions', ['*', 200, 0, true]);
    const candidates = [...new Set(entries.filter((e) => e.confirmations === 0 || (e.blockheight ?? 0) >= sinceHeight).map((e) => e.txid))];
    for (const txid of candidates) {
      if (known.has(txid)) continue;
      const { hex } = await this.o.rpc.call<{ hex: string }>('gettransaction', [txid]);
      const tx = bitcoin.Transaction.fromHex(hex);
      if (tx.outs.some((o) => parseNameScript(o.script)?.op === 'name_new')) return txid;
    }
    return undefined;
  }
}

/** Not a failure of the node: the name waits for something (the onion, another wallet's name to expire). */
class Waiting extends Error {}

function publicState(r: NameRecord): NameState {
  switch (r.state) {
    case 'new-sending':
      return 'unregistered';
    case 'firstupdate-sending':
      return 'waiting';
    case 'update-sending':
      return 'registered';
    default:
      return r.state;
  }
}
