// The devnet's Namecoin node over real HTTP JSON-RPC: name operations are real transactions in real blocks
// (name scripts as Namecoin encodes them), with Namecoin Core's rules, result shapes and error codes.

import t from 'tap';
import * as bitcoin from 'bitcoinjs-lib';
import { openDevnet } from './helpers/devnet';
import { rpcCall } from '../lib/devnet/wallet';
import { nameNewHash, parseNameScript, NAMECOIN_TX_VERSION, NAME_LOCKED_AMOUNT } from '../lib/names/script';
import { Devnet } from '../lib/devnet';

async function rpcError(p: Promise<unknown>): Promise<{ code?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: number; message: string };
  }
  throw new Error('expected an RPC error');
}

/** The name outputs of a mined block, decoded from its raw bytes (merge-mined: header ‖ AuxPoW ‖ transactions). */
function nameOpsInBlock(devnet: Devnet, hash: string) {
  const params = devnet.namecoin.chain.params;
  const height = devnet.namecoin.chain.heightOfHash(hash)!;
  const raw = params.encodeBlock(devnet.namecoin.chain.blockAt(height)!);
  const block = params.decodeBlock(raw);
  if (block.getId() !== hash) throw new Error('the block codec does not round-trip');
  return block.transactions!.flatMap((tx) => tx.outs.map((o) => ({ tx, op: parseNameScript(o.script), value: o.value })).filter((x) => x.op));
}

t.test('register, update and expire a name over JSON-RPC', async (t) => {
  const devnet = await openDevnet(t);
  const url = devnet.namecoinRpcUrl;
  const call = <T>(method: string, params: unknown[] = []) => rpcCall<T>(url, method, params);
  const start = await call<number>('getblockcount');
  t.equal(start, 120, 'premined to the default wallet');
  t.equal((await call<{ chain: string }>('getblockchaininfo')).chain, 'regtest');
  t.ok((await call<number>('getbalance')) > 0, 'the default wallet has mature coins');

  const never = await rpcError(call('name_show', ['d/example']));
  t.equal(never.code, -4);
  t.match(never.message, "name never existed: 'd/example'");

  const [newTxid, rand] = await call<[string, string]>('name_new', ['d/example']);
  t.match(newTxid, /^[0-9a-f]{64}$/);
  t.match(rand, /^[0-9a-f]{40}$/);
  t.same(await call('name_pending', ['d/example']), [], 'name_new outputs are not in name_pending');
  const early = await rpcError(call('name_firstupdate', ['d/example', rand, newTxid, 'v']));
  t.equal(early.code, -25);
  t.match(early.message, 'previous txid not found', 'unconfirmed name_new');

  const [h1] = devnet.mineNames(1);
  const ops = nameOpsInBlock(devnet, h1);
  t.equal(ops.length, 1, 'the name_new is a real transaction in the block');
  t.equal(ops[0].tx.version, NAMECOIN_TX_VERSION);
  t.equal(ops[0].value, NAME_LOCKED_AMOUNT, '0.01 NMC locked');
  t.equal(ops[0].op!.op, 'name_new');
  t.ok(nameNewHash(Buffer.from('d/example'), Buffer.from(rand, 'hex')).equals((ops[0].op as { hash: Buffer }).hash), 'hash160(rand ‖ name)');

  const value = JSON.stringify({ map: { _tor: { txt: 'x'.repeat(56) + '.onion' } } });
  const fu = await call<string>('name_firstupdate', ['d/example', rand, newTxid, value]);
  const pending = await call<Array<Record<string, unknown>>>('name_pending', ['d/example']);
  t.equal(pending.length, 1);
  t.match(pending[0], { name: 'd/example', value, txid: fu, op: 'name_firstupdate', ismine: true });
  const again = await rpcError(call('name_firstupdate', ['d/example', rand, newTxid, value]));
  t.match(again.message, 'this name is already being registered');

  // Mined only at name_new height + 12.
  devnet.mineNames(11);
  t.equal((await call<unknown[]>('name_pending')).length, 1, 'held back until name_new height + 12');
  t.equal((await rpcError(call('name_show', ['d/example']))).code, -4);
  const [h12] = devnet.mineNames(1);
  t.same(await call('name_pending'), []);
  t.equal(nameOpsInBlock(devnet, h12)[0].op!.op, 'name_firstupdate', 'firstupdate mined at name_new height + 12');
  const shown = await call<Record<string, unknown>>('name_show', ['d/example']);
  t.match(shown, { name: 'd/example', name_encoding: 'ascii', value, value_encoding: 'ascii', txid: fu, height: start + 13, expires_in: 30, expired: false, ismine: true });
  t.match(shown.address, /^[mn]/, 'name outputs go to a legacy address');
  t.match(await call('name_list'), [{ name: 'd/example', txid: fu }]);
  t.match(await rpcError(call('name_new', ['d/example'])), { code: -25, message: /this name exists already/ });

  // name_update renews; the old value's expiry is reset.
  devnet.mineNames(20);
  t.equal((await call<{ expires_in: number }>('name_show', ['d/example'])).expires_in, 10);
  const up = await call<string>('name_update', ['d/example', 'new value']);
  const [hu] = devnet.mineNames(1);
  t.equal(nameOpsInBlock(devnet, hu)[0].op!.op, 'name_update');
  t.match(await call('name_show', ['d/example']), { txid: up, value: 'new value', expires_in: 30 });
  const tx = await call<{ confirmations: number; hex: string }>('gettransaction', [up]);
  t.equal(tx.confirmations, 1);
  t.equal(bitcoin.Transaction.fromHex(tx.hex).getId(), up);

  // Expiry: 30 blocks after the last update.
  devnet.mineNames(30);
  // nc31.1: an expired name is error -4 unless allowExpired is true
  t.match(await rpcError(call('name_show', ['d/example'])), { code: -4, message: "name expired: 'd/example'" });
  t.match(await call('name_show', ['d/example', { allowExpired: true }]), { expires_in: 0, expired: true });
  t.match((await rpcError(call('name_show', ['d/example', { allowExpired: false }]))).message, "name expired: 'd/example'");
  t.match(await rpcError(call('name_update', ['d/example', 'late'])), { code: -25, message: /this name can not be updated/ });
});

t.test('errors come back as Namecoin Core answers them', async (t) => {
  const devnet = await openDevnet(t);
  const url = devnet.namecoinRpcUrl;
  const call = <T>(method: string, params: unknown[] = [], path = '') => rpcCall<T>(url + path, method, params);

  const bad = url.replace(/:[^:@]+@/, ':wrong@');
  t.match((await rpcError(rpcCall(bad, 'getblockcount'))).message, /refused the credentials/, 'HTTP 401');
  const long = await rpcError(call('name_firstupdate', ['d/x', '00', '00'.repeat(32), 'v'.repeat(521)]));
  t.match(long, { code: -8, message: 'the value is too long' });
  t.match(await rpcError(call('name_new', ['d/' + 'x'.repeat(254)])), { code: -8, message: 'the name is too long' });

  await call('createwallet', ['empty']);
  t.match(await rpcError(call('getbalance')), { code: -19, message: /Wallet file not specified/ }, 'two wallets: the path is needed');
  t.match(await rpcError(call('getbalance', [], '/wallet/nope')), { code: -18, message: 'Requested wallet does not exist or is not loaded' });
  t.match(await rpcError(call('name_new', ['d/poor'], '/wallet/empty')), { code: -6, message: 'Insufficient funds' });
  t.equal(await call('getblockcount'), 120, 'node calls need no wallet');

  await call('encryptwallet', ['secret'], '/wallet/default');
  t.match(await rpcError(call('name_new', ['d/locked'], '/wallet/default')), { code: -13, message: /walletpassphrase/ });
  t.match(await rpcError(call('walletpassphrase', ['nope', 60], '/wallet/default')), { code: -14 });
  await call('walletpassphrase', ['secret', 60], '/wallet/default');
  const [txid] = await call<[string]>('name_new', ['d/locked'], '/wallet/default');
  t.match(txid, /^[0-9a-f]{64}$/, 'unlocked, it signs');

  // Another wallet cannot update a name it does not own.
  await call('sendtoaddress', [await call<string>('getnewaddress', [], '/wallet/empty'), 10], '/wallet/default');
  devnet.mineNames(1);
  const [t2, r2] = await call<[string, string]>('name_new', ['d/mine'], '/wallet/default');
  devnet.mineNames(1);
  await call('name_firstupdate', ['d/mine', r2, t2, 'v'], '/wallet/default');
  devnet.mineNames(12);
  t.match(await call('name_show', ['d/mine'], '/wallet/empty'), { ismine: false });
  t.match(await rpcError(call('name_update', ['d/mine', 'stolen'], '/wallet/empty')), { code: -4 });
});

t.test('a restarted devnet keeps the names and the wallets; a lost rand is lost, as on nc31.1', async (t) => {
  const dir = t.testdir({});
  let devnet = await Devnet.open({ dir });
  const call = <T>(method: string, params: unknown[] = []) => rpcCall<T>(devnet.namecoinRpcUrl, method, params);
  const [txid, rand] = await call<[string, string]>('name_new', ['d/restart']);
  devnet.mineNames(12);
  await devnet.close();
  devnet = await Devnet.open({ dir });
  t.teardown(() => devnet.close());
  // nc31.1's descriptor wallets cannot derive rand: without it, firstupdate fails; with it, it works
  t.match(await rpcError(call('name_firstupdate', ['d/restart', null, txid, 'after restart'])), { code: -25, message: 'could not generate rand for txid' });
  const fu = await call<string>('name_firstupdate', ['d/restart', rand, txid, 'after restart']);
  devnet.mineNames(1);
  t.match(await call('name_show', ['d/restart']), { txid: fu, value: 'after restart' });
});
