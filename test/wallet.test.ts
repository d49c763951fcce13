// The operating wallet against the devnet: its key (0600, never logged), proof-checked coins, a spend built,
// signed and broadcast with RBF and change back to itself, a purpose paid at most once, the daily limit, and a
// crash between the durable record and the broadcast (the same transaction is sent after the restart).
import t from 'tap';
import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import { Devnet } from '../lib/devnet';
import { devnetPay } from '../lib/devnet/wallet';
import { NETWORK } from '../lib/devnet/consensus';
import { HeaderChain } from '../lib/chain';
import { Watcher } from '../lib/payments/watcher';
import { Store } from '../lib/store';
import { layout, PREFIX } from '../lib/store/layout';
import { Wallet, SpendLimitError, walletKeyPath, type SpendRecord } from '../lib/wallet';
import { tmpDir } from './helpers/tmp';
import { until } from './helpers/payments-electrum';
import { connect, scripthashOf } from './helpers/devnet';

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('the operating wallet on the devnet', async (t) => {
  const dir = tmpDir('bitdrop-wallet-', t);
  const devnet = await Devnet.open({ dir: path.join(dir, 'devnet') });
  t.teardown(() => devnet.close());
  const chain = HeaderChain.open({ network: 'regtest' });
  const watcher = new Watcher({ servers: [devnet.electrumUrl], chain, budget: 1, clearnet: false, coldSource: async () => [] });
  watcher.on('tip', () => {});
  await watcher.start();
  t.teardown(() => watcher.stop());
  const dataDir = path.join(dir, 'data');
  let store = await Store.open({ dir: dataDir });
  t.teardown(() => store.close());
  const lines: string[] = [];
  const open = (opts: Partial<ConstructorParameters<typeof Wallet>[0]> = {}) => new Wallet({
    dataDir, network: 'regtest', servers: [devnet.electrumUrl], clearnet: false, chain, db: store.db,
    write: (ops, o) => store.write(ops, o), spendLimit: 50_000, log: (l) => lines.push(l), reconcileEveryMs: 200,
    electrum: { backoff: { minMs: 20, maxMs: 200 } }, ...opts,
  });
  let wallet = open();
  await wallet.start();

  const keyFile = walletKeyPath(dataDir);
  t.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'the key file is its owner\'s only');
  const wif = JSON.parse(fs.readFileSync(keyFile, 'utf8')).wif as string;
  t.match(wallet.address, /^bcrt1q/, 'a native segwit address');

  await devnetPay(path.join(dir, 'devnet'), wallet.address, 100_000);
  const unconfirmed = await wallet.balance();
  t.equal(unconfirmed.confirmed, 0, 'a payment not confirmed is not spendable');
  t.equal(unconfirmed.pending, 100_000, '… but is shown as pending');
  devnet.mine(1);
  await until(() => watcher.tip()?.height === devnet.height, 10_000, 'the chain synced');
  const funded = await waitFor(async () => { const b = await wallet.balance(); return b.confirmed === 100_000 ? b : undefined; }, 'confirmed balance');
  t.equal(funded.confirmed, 100_000, 'a confirmed payment, proven against the header chain, is spendable');

  const payee = bitcoin.payments.p2wpkh({ pubkey: Buffer.from('02' + '11'.repeat(32), 'hex'), network: NETWORK }).address!;
  const rec = await wallet.spend({ purpose: 'test|one', to: payee, sats: 10_000, about: { kind: 'test' } });
  t.equal(rec.state, 'broadcast');
  t.ok(rec.fee > 0 && rec.fee < 1000, `a fee from the server's estimate (${rec.fee} sats)`);
  const conn = await connect(t, devnet.electrumUrl);
  const tx = bitcoin.Transaction.fromHex(await conn.request<string>('blockchain.transaction.get', [rec.txid]));
  t.ok(tx.ins.every((i) => i.sequence === 0xfffffffd), 'RBF is signalled');
  t.equal(tx.outs.length, 2, 'the payment and the change');
  t.equal(Number(tx.outs[1].value), 100_000 - 10_000 - rec.fee, 'change back to the wallet itself');
  t.equal(bitcoin.address.fromOutputScript(tx.outs[1].script, NETWORK), wallet.address);

  const again = await wallet.spend({ purpose: 'test|one', to: payee, sats: 10_000 });
  t.equal(again.txid, rec.txid, 'a purpose already paid returns its spend and pays nothing');
  const payeeHistory = async () => conn.request<unknown[]>('blockchain.scripthash.get_history', [scripthashOf(payee)]);
  t.equal((await payeeHistory()).length, 1, 'the payee got one payment');

  // own unconfirmed change is spendable
  const second = await wallet.spend({ purpose: 'test|two', to: payee, sats: 20_000 });
  t.equal(second.state, 'broadcast', 'own unconfirmed change pays a second spend');

  const refused = await wallet.spend({ purpose: 'test|three', to: payee, sats: 20_000 }).catch((err) => err);
  t.ok(refused instanceof SpendLimitError, 'the daily limit stops a spend');
  t.match(refused.message, /spend limit reached: \d+ of 50000 sats/, 'and says so');
  t.match(lines.join('\n'), /paying 10000 sats/);
  t.notOk(lines.join('\n').includes(wif), 'the key is never logged');

  await t.test('a crash between the durable record and the broadcast sends the same transaction after the restart', async (t) => {
    await wallet.stop();
    let recorded: SpendRecord | undefined;
    const dying = open({ reconcileEveryMs: 1e9, beforeBroadcast: async (r) => { recorded = r; throw new Error('killed'); } });
    await dying.start();
    await t.rejects(dying.spend({ purpose: 'test|crash', to: payee, sats: 5_000 }), /killed/);
    await dying.stop();
    t.equal(recorded?.state, 'signed', 'recorded before the broadcast');
    t.notOk((await conn.request<unknown[]>('blockchain.scripthash.get_history', [scripthashOf(payee)])).some((h) => (h as { tx_hash: string }).tx_hash === recorded!.txid), 'not on the network yet');
    // the store is closed and opened again, as after a kill -9
    await store.close();
    store = await Store.open({ dir: dataDir });
    wallet = open();
    await wallet.start();
    await waitFor(async () => ((await payeeHistory()).some((h) => (h as { tx_hash: string }).tx_hash === recorded!.txid) ? true : undefined), 'the rebroadcast');
    const same = await wallet.spend({ purpose: 'test|crash', to: payee, sats: 5_000 });
    t.equal(same.txid, recorded!.txid, 'the purpose keeps its one transaction');
    t.equal((await payeeHistory()).length, 3, 'three payments for three purposes, none twice');
    devnet.mine(1);
    await until(() => watcher.tip()?.height === devnet.height, 10_000, 'the chain synced');
    await wallet.reconcile();
    const records = await wallet.records();
    t.same(records.map((r) => r.state), ['confirmed', 'confirmed', 'confirmed'], 'every spend confirmed');
    let keys = 0;
    for await (const _ of store.db.keys(layout.range(PREFIX.walletSpend))) keys++;
    t.equal(keys, 3, 'one W record a spend, for the books');
    const history = await wallet.history();
    t.equal(history.filter((h) => h.kind === 'received').length, 1);
    t.equal(history.filter((h) => h.kind === 'spent').length, 3);
    await wallet.stop();
  });
});
