// .bit names against the real Namecoin Core (nc31.1 regtest, a descriptor wallet), through the daemon: kill -9
// right after each paying call (the name_new's sendrawtransaction, name_firstupdate, name_update), both before
// the daemon has the answer and once it has written it, each ending with exactly one registration and no coins
// stuck in an unused name_new; a name that expired while the daemon was down is registered again; a record of an
// older version with a lost rand is abandoned once, not retried forever; the whole life of a name.
// One rig (namecoind + ElectrumX) for the file; each test its own name. Finds the rig through BITDROP_TEST_RIG.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import { tmpDir } from './helpers/daemon';
import { nameStatus, namesDaemon, rpcProxy, waitFor } from './helpers/namecoin';
import { rigOrSkip, startRig, type Rig } from './helpers/rig';
import { parseNameScript } from '../lib/names/script';
import type { Daemon } from './helpers/daemon';
import { fetchStatus } from '../lib/cli/status';
import { Db } from '../lib/store';
import { layout } from '../lib/store/layout';
import type { NameStatus } from '../lib/names';

const script = rigOrSkip(t, 'names against Namecoin Core');

interface Watched {
  daemon: Daemon;
  dataDir: string;
  /** resolves once the daemon has made a full poll pass that began after this call */
  pass(): Promise<void>;
}

/**
 * A daemon registering `name` through a proxy in front of the real node: the proxy counts the daemon's
 * passes (each begins with getblockcount), and `after` may kill the daemon once the node answered a call.
 */
async function watched(t: Test, rig: Rig, name: string, dataDir: string, after?: (method: string, body: string, daemon: () => Promise<Daemon>) => Promise<boolean> | boolean): Promise<Watched> {
  let calls = 0;
  let dead = false;
  let daemonRef: Promise<Daemon> | undefined;
  const proxy = await rpcProxy(t, rig.walletUrl, {
    before: (method) => {
      if (method === 'getblockcount') calls++;
      return dead;
    },
    after: async (method, body) => {
      if (dead || !after) return dead;
      if (await after(method, body, () => daemonRef!)) dead = true;
      return dead;
    },
  });
  daemonRef = namesDaemon(t, `${proxy}/wallet/rig`, { dataDir, names: [name] });
  const daemon = await daemonRef.catch((err) => {
    if (dead) return undefined as unknown as Daemon;
    throw err;
  });
  return {
    daemon,
    dataDir,
    pass: async () => {
      const from = calls;
      // a pass that began after now has begun and ended when the one after it begins (or two calls in one pass)
      await waitFor('a poll pass of the daemon', () => dead || calls >= from + 3, 60_000);
    },
  };
}

type Test = typeof t;

/**
 * Mines one block at a time, letting the daemon see each, until `done` (at most `max` blocks); four at a time
 * while the daemon waits for its name_new's 12 confirmations (nothing happens between them).
 */
async function mineUntil(rig: Rig, w: Watched, what: string, done: () => Promise<boolean>, max = 40): Promise<number> {
  for (let mined = 0; ; ) {
    if (await done()) return mined;
    if (mined >= max) throw new Error(`${what}: not reached after ${max} blocks; daemon output:\n${w.daemon.output().slice(-3000)}`);
    const waiting = await fetchStatus(w.dataDir).then((s) => (s.names as NameStatus[]).some((n) => n.state === 'waiting'), () => false);
    const n = waiting ? 4 : 1;
    await rig.mine(n);
    mined += n;
    await w.pass();
  }
}

const state = (w: Watched, name: string) => nameStatus(w.dataDir, name);

/** Every name_new the wallet ever sent, and whether its locked coin was spent (by a name_firstupdate). */
async function nameNews(rig: Rig): Promise<Array<{ txid: string; spent: boolean }>> {
  const entries = await rig.rpc<Array<{ txid: string }>>('listtransactions', ['*', 100_000, 0, true]);
  const out: Array<{ txid: string; spent: boolean }> = [];
  for (const txid of new Set(entries.map((e) => e.txid))) {
    const { hex } = await rig.rpc<{ hex: string }>('gettransaction', [txid]);
    const tx = bitcoin.Transaction.fromHex(hex);
    const vout = tx.outs.findIndex((o) => parseNameScript(o.script)?.op === 'name_new');
    if (vout < 0) continue;
    out.push({ txid, spent: (await rig.rpc('gettxout', [txid, vout, true])) === null });
  }
  return out;
}

/** The name operations (firstupdate / update) of `name` in the wallet's transactions, confirmed or not. */
async function opsOf(rig: Rig, name: string): Promise<string[]> {
  const entries = await rig.rpc<Array<{ txid: string }>>('listtransactions', ['*', 100_000, 0, true]);
  const ops: string[] = [];
  for (const txid of new Set(entries.map((e) => e.txid))) {
    const { hex } = await rig.rpc<{ hex: string }>('gettransaction', [txid]);
    for (const o of bitcoin.Transaction.fromHex(hex).outs) {
      const op = parseNameScript(o.script);
      if (op && op.op !== 'name_new' && op.name.toString() === name) ops.push(op.op);
    }
  }
  return ops;
}

/** name_news whose rand is lost on purpose (the legacy-record test): their coins stay locked */
const legacy = new Set<string>();

/** The checks every crash test ends with: the name is ours with our onion, one name_new, none stuck. */
async function oneRegistration(t: Test, rig: Rig, name: string, dataDir: string, newsBefore: number, ops = ['name_firstupdate']) {
  const s = await nameStatus(dataDir, name);
  const show = await rig.rpc<{ ismine: boolean; value: string; expired: boolean }>('name_show', [name]);
  t.ok(show.ismine && !show.expired, `${name} is registered to the rig wallet`);
  t.ok(s.onion && show.value.includes(s.onion), 'its value carries the daemon\'s onion');
  const news = await nameNews(rig);
  t.equal(news.length - newsBefore, 1, 'exactly one name_new was paid for it');
  t.same(news.filter((n) => !n.spent && !legacy.has(n.txid)), [], 'no coins stuck in an unused name_new');
  t.same((await opsOf(rig, name)).sort(), ops, `${ops.join(', ')}: one registration, nothing sent twice`);
}

if (script) {
  t.test('real Namecoin Core', async (t) => {
    const rig = await startRig(t, script);

    t.test('kill -9 right after the call that sends the name_new, before its answer is written: one name_new, registered', async (t) => {
      const name = 'd/crash-new';
      const dataDir = tmpDir('bitdrop-real-names-', t);
      const before = (await nameNews(rig)).length;
      let killedAfter = '';
      // The daemon is killed as soon as the node has answered the paying call (name_new in older versions,
      // sendrawtransaction of the prepared name_new now): the answer never reaches it.
      await watched(t, rig, name, dataDir, async (method, _body, daemon) => {
        if (method !== 'name_new' && method !== 'sendrawtransaction') return false;
        killedAfter = method;
        await (await daemon()).kill9();
        return true;
      });
      await waitFor('the kill', () => killedAfter !== '', 60_000);
      t.equal((await nameNews(rig)).length - before, 1, `the node sent the name_new (killed after ${killedAfter})`);
      const w = await watched(t, rig, name, dataDir);
      const blocks = await mineUntil(rig, w, 'registered', async () => (await state(w, name)).state === 'registered');
      t.ok(blocks >= 13, `registered after ${blocks} blocks`);
      t.equal((await state(w, name)).lastError, null);
      await oneRegistration(t, rig, name, dataDir, before);
      await w.daemon.stop();
    });

    t.test('kill -9 right after name_firstupdate, before its answer is written: no second firstupdate', async (t) => {
      const name = 'd/crash-first';
      const dataDir = tmpDir('bitdrop-real-names-', t);
      const before = (await nameNews(rig)).length;
      let killed = false;
      const w0 = await watched(t, rig, name, dataDir, async (method, _b, daemon) => {
        if (method !== 'name_firstupdate') return false;
        killed = true;
        await (await daemon()).kill9();
        return true;
      });
      await mineUntil(rig, w0, 'the kill after name_firstupdate', async () => killed);
      const pending = await rig.rpc<Array<{ op: string }>>('name_pending', [name]);
      t.same(pending.map((p) => p.op), ['name_firstupdate'], 'the node has the firstupdate');
      const w = await watched(t, rig, name, dataDir);
      await mineUntil(rig, w, 'registered', async () => (await state(w, name)).state === 'registered');
      await oneRegistration(t, rig, name, dataDir, before);
      await w.daemon.stop();
    });

    t.test('kill -9 right after name_update, before its answer is written: no second update, renewed', async (t) => {
      const name = 'd/crash-update';
      const dataDir = tmpDir('bitdrop-real-names-', t);
      const before = (await nameNews(rig)).length;
      let killed = false;
      const w0 = await watched(t, rig, name, dataDir, async (method, _b, daemon) => {
        if (method !== 'name_update') return false;
        killed = true;
        await (await daemon()).kill9();
        return true;
      });
      // registered, then renewed when a third of its 30 blocks is left: the renewal's name_update is the kill
      await mineUntil(rig, w0, 'the kill after name_update', async () => killed, 60);
      t.equal((await rig.rpc<unknown[]>('name_pending', [name])).length, 1, 'the node has the update');
      const w = await watched(t, rig, name, dataDir);
      await waitFor('the interrupted update adopted', async () => (await state(w, name)).state === 'update-sent', 60_000);
      await mineUntil(rig, w, 'updated', async () => {
        const s = await state(w, name);
        return s.state === 'registered' && (s.expiresIn ?? 0) >= 29;
      });
      t.equal((await rig.rpc<unknown[]>('name_pending', [name])).length, 0);
      t.same((await opsOf(rig, name)).sort(), ['name_firstupdate', 'name_update'], 'one firstupdate and one update, no second');
      t.equal((await nameNews(rig)).length - before, 1, 'one name_new');
      t.same((await nameNews(rig)).filter((n) => !n.spent && !legacy.has(n.txid)), [], 'no coins stuck in an unused name_new');
      await w.daemon.stop();
    });

    t.test('kill -9 right after each paying call once its answer is written (sendrawtransaction, name_firstupdate, name_update): one registration', async (t) => {
      const name = 'd/crash-written';
      const dataDir = tmpDir('bitdrop-real-names-', t);
      const before = (await nameNews(rig)).length;
      const paying = ['sendrawtransaction', 'name_firstupdate', 'name_update'];
      const done = new Set<string>();
      for (let restarts = 0; ; restarts++) {
        let armed = false;
        let killed = false;
        // the daemon makes its next call only after the synced write of the paying call's answer: kill it then
        const w = await watched(t, rig, name, dataDir, async (method, _b, daemon) => {
          if (armed) {
            killed = true;
            await (await daemon()).kill9();
            return true;
          }
          if (paying.includes(method) && !done.has(method)) {
            done.add(method);
            armed = true;
          }
          return false;
        });
        await mineUntil(rig, w, `the kill after ${[...done].pop() ?? 'the name_new'}`, async () => {
          if (killed) return true;
          if (done.size < paying.length) return false;
          const s = await state(w, name);
          return s.state === 'registered' && (s.expiresIn ?? 0) >= 29;
        }, 60);
        if (!killed) {
          t.equal(restarts, 3, 'killed once after each paying call');
          await oneRegistration(t, rig, name, dataDir, before, ['name_firstupdate', 'name_update']);
          await w.daemon.stop();
          break;
        }
      }
    });

    t.test('a name that expired while the daemon was down is registered again', async (t) => {
      const name = 'd/expired';
      const dataDir = tmpDir('bitdrop-real-names-', t);
      let w = await watched(t, rig, name, dataDir);
      await mineUntil(rig, w, 'registered', async () => (await state(w, name)).state === 'registered');
      const first = await rig.rpc<{ height: number }>('name_show', [name]);
      await w.daemon.stop();
      await rig.mine(31);
      const err = await rig.rpc('name_show', [name]).catch((e: Error) => e);
      t.match(String((err as Error).message), /name expired/, 'Namecoin Core: name_show of an expired name is error -4 "name expired"');
      w = await watched(t, rig, name, dataDir);
      await mineUntil(rig, w, 'registered again', async () => {
        const s = await state(w, name);
        return s.state === 'registered' && (s.height ?? 0) > first.height;
      });
      const show = await rig.rpc<{ ismine: boolean; expired: boolean; value: string }>('name_show', [name]);
      t.ok(show.ismine && !show.expired, 'ours again, alive');
      t.ok(show.value.includes((await state(w, name)).onion!), 'with the onion');
      t.same((await nameNews(rig)).filter((n) => !n.spent && !legacy.has(n.txid)), [], 'no coins stuck');
      await w.daemon.stop();
    });

    t.test('a record of an older version whose name_new lost its rand: abandoned once for a new name_new, never retried forever', async (t) => {
      const name = 'd/legacy';
      const dataDir = tmpDir('bitdrop-real-names-', t);
      const before = (await nameNews(rig)).length;
      // what an older bitdrop left after a crash between name_new's answer and its write: the txid, rand null
      const [legacyTxid] = await rig.rpc<[string, string]>('name_new', [name]);
      legacy.add(legacyTxid);
      const first = await namesDaemon(t, rig.walletUrl, { dataDir, names: [] }); // makes the data dir
      await first.stop();
      const db = await Db.open(path.join(dataDir, 'db'));
      await db.put(layout.name(name), Buffer.from(JSON.stringify({ name, state: 'new-sent', newTxid: legacyTxid, rand: null, intentHeight: await rig.height(), newConfirmations: 0 })), { sync: true });
      await db.close();
      const w = await watched(t, rig, name, dataDir);
      await mineUntil(rig, w, 'registered', async () => (await state(w, name)).state === 'registered', 60);
      t.match(w.daemon.output(), new RegExp(`name_new ${legacyTxid}'s rand was lost .*could not generate rand for txid.*sending a new name_new`), 'says why, once');
      t.equal(w.daemon.output().split('rand was lost').length - 1, 1, 'given up once, not retried');
      const news = await nameNews(rig);
      t.equal(news.length - before, 2, 'the legacy name_new and one new one');
      t.same(news.filter((n) => !n.spent).map((n) => n.txid), [legacyTxid], 'only the legacy name_new stays unspent (its rand is gone)');
      t.same(await opsOf(rig, name), ['name_firstupdate'], 'one registration');
      await w.daemon.stop();
    });

    t.test('the whole life: registered, renewed over 200 blocks, updated when the onion changes', async (t) => {
      const name = 'd/example';
      const dataDir = tmpDir('bitdrop-real-names-', t);
      let w = await watched(t, rig, name, dataDir);
      await mineUntil(rig, w, 'registered', async () => (await state(w, name)).state === 'registered');
      const onion = (await state(w, name)).onion!;
      const start = await rig.height();
      let updates = 0;
      let lastTxid = (await rig.rpc<{ txid: string }>('name_show', [name])).txid;
      // five blocks at a time, the daemon seeing each step
      while ((await rig.height()) - start < 200) {
        await rig.mine(5);
        await w.pass();
        const show = await rig.rpc<{ txid: string; expired: boolean }>('name_show', [name, { allowExpired: true }]);
        if (show.expired) {
          t.fail(`${name} expired ${(await rig.height()) - start} blocks in`);
          break;
        }
        if (show.txid !== lastTxid) {
          updates++;
          lastTxid = show.txid;
        }
      }
      // alive for 200 blocks with a 30-block lifetime takes at least 6 renewals
      t.ok(updates >= 6, `renewed ${updates} times over 200 blocks`);
      await w.daemon.stop();
      fs.renameSync(path.join(dataDir, 'tor', 'onion_ed25519.key'), path.join(dataDir, 'old-onion.key'));
      fs.rmSync(path.join(dataDir, 'tor', 'hostname'), { force: true });
      w = await watched(t, rig, name, dataDir);
      const fresh = await waitFor('the new onion', async () => {
        const s = await state(w, name);
        return s.onion !== onion && s.onion;
      }, 60_000);
      await mineUntil(rig, w, 'the new onion on the chain', async () => (await rig.rpc<{ value: string }>('name_show', [name])).value.includes(fresh as string));
      t.pass('name_update carried the new onion');
      await w.daemon.stop();
    });
  });
}
