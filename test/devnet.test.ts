// The devnet as an Electrum wallet sees it: real TCP, real transactions, answers checked by hand.

import t from 'tap';
import * as bitcoin from 'bitcoinjs-lib';
import ElectrumClient from 'electrum-client';
import { GENESIS_HASH, NETWORK, revHex, rootFromBranch } from '../lib/devnet/consensus';
import { ElectrumRpcError } from '../lib/payments/electrum';
import { operatorKey } from '../lib/devnet/keys';
import { devnetBump, devnetCancel, devnetPay } from '../lib/devnet/wallet';
import { connect, expectedStatus, isHeaderNote, isScriptNote, openDevnet, recordNotifications, scripthashOf } from './helpers/devnet';

type History = Array<{ tx_hash: string; height: number; fee?: number }>;

t.test('server methods a wallet calls on connect', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  t.same(await conn.request('server.version', ['electrum 4.3.4', '1.4']), ['bitdrop-devnet 0.1', '1.4'], 'Electrum 4.3.4 gets exactly "1.4"');
  t.same((await conn.request<string[]>('server.version', ['electrum 4.8', ['1.4', '1.6']]))[1], '1.6', 'a range gets the highest common version');
  await t.rejects(conn.request('server.version', ['future', '2.0']), /unsupported protocol version/);
  const features = await conn.request<Record<string, unknown>>('server.features');
  t.equal(features.genesis_hash, GENESIS_HASH);
  t.equal(features.hash_function, 'sha256');
  t.equal(features.pruning, null);
  t.equal(features.protocol_min, '1.4');
  t.equal(features.protocol_max, '1.6');
  t.type(await conn.request('server.banner'), 'string');
  t.type(await conn.request('server.donation_address'), 'string');
  t.same(await conn.request('server.peers.subscribe'), []);
  t.equal(await conn.request('server.ping'), null);
  t.equal(await conn.request('blockchain.relayfee'), 0.00001);
  t.equal(await conn.request('blockchain.estimatefee', [2]), 0.00001);
  t.same(await conn.request('mempool.get_fee_histogram'), []);

  await devnetPay(devnet.dir, devnet.operatorAddress(0), 50_000, { feeRate: 5 });
  const histogram = await conn.request<Array<[number, number]>>('mempool.get_fee_histogram');
  t.equal(histogram.length, 1);
  t.ok(histogram[0][0] >= 5 && histogram[0][1] > 100, 'fee rate bucket and its vsize');
});

t.test('headers: genesis, chunks, subscription', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const notes = recordNotifications(conn);

  const genesis = Buffer.from(await conn.request<string>('blockchain.block.header', [0]), 'hex');
  t.equal(revHex(bitcoin.crypto.hash256(genesis)), GENESIS_HASH, 'Bitcoin regtest genesis');

  const chunk = await conn.request<{ hex: string; count: number; max: number }>('blockchain.block.headers', [0, 2016]);
  t.equal(chunk.count, devnet.height + 1, 'count is what exists in range');
  t.ok(chunk.max >= 2016);
  t.equal(chunk.hex.length, chunk.count * 160);
  for (let h = 1; h < chunk.count; h++) {
    const header = bitcoin.Block.fromHex(chunk.hex.slice(h * 160, h * 160 + 160));
    const prev = Buffer.from(chunk.hex.slice((h - 1) * 160, h * 160), 'hex');
    t.equal(Buffer.from(header.prevHash!).toString('hex'), Buffer.from(bitcoin.crypto.hash256(prev)).toString('hex'), `header ${h} links`);
    if (!header.checkProofOfWork() || header.bits !== 0x207fffff) t.fail(`header ${h} lacks regtest proof of work`);
  }
  const middle = await conn.request<{ hex: string; count: number }>('blockchain.block.headers', [100, 5]);
  t.same(middle, { hex: chunk.hex.slice(100 * 160, 105 * 160), count: 5, max: 2016 });
  t.same(await conn.request('blockchain.block.headers', [devnet.height + 10, 2016]), { hex: '', count: 0, max: 2016 }, 'beyond the tip');

  const v16 = await connect(t, devnet.electrumUrl, ['1.4', '1.6']);
  const list = await v16.request<{ headers: string[]; count: number }>('blockchain.block.headers', [0, 3]);
  t.same(list.headers, [0, 1, 2].map((i) => chunk.hex.slice(i * 160, i * 160 + 160)), 'protocol 1.6 answers a list');

  const tip = await conn.request<{ height: number; hex: string }>('blockchain.headers.subscribe');
  t.same(tip, { height: devnet.height, hex: chunk.hex.slice(-160) });
  const [hash] = devnet.mine(1);
  const note = await notes.next(isHeaderNote);
  const pushed = note.params[0] as { height: number; hex: string };
  t.equal(pushed.height, tip.height + 1, 'new tip pushed');
  t.equal(bitcoin.Block.fromHex(pushed.hex).getId(), hash);

  const proof = await conn.request<{ header: string; branch: string[]; root: string }>('blockchain.block.header', [3, 10]);
  const root = rootFromBranch(bitcoin.Block.fromHex(proof.header).getHash(), proof.branch.map((b) => Buffer.from(b, 'hex').reverse()), 3);
  t.equal(revHex(root), proof.root, 'cp_height proof reaches its root');
});

t.test('status hash and history follow a payment from mempool to block', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const notes = recordNotifications(conn);
  const address = devnet.operatorAddress(1);
  const sh = scripthashOf(address);

  t.equal(await conn.request('blockchain.scripthash.subscribe', [sh]), null, 'no history: null status');
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), []);

  const txid = await devnetPay(devnet.dir, address, 120_000);
  const inMempool = await notes.next(isScriptNote(sh));
  const history = await conn.request<History>('blockchain.scripthash.get_history', [sh]);
  t.equal(history.length, 1);
  t.match(history[0], { tx_hash: txid, height: 0 });
  t.ok(Number.isSafeInteger(history[0].fee) && history[0].fee! > 0, 'mempool entry carries its fee in sats');
  t.equal(inMempool.params[1], expectedStatus([{ tx_hash: txid, height: 0 }]), 'status = sha256("txid:0:")');
  t.same(await conn.request('blockchain.scripthash.get_balance', [sh]), { confirmed: 0, unconfirmed: 120_000 });
  t.same(await conn.request('blockchain.scripthash.listunspent', [sh]), [{ tx_hash: txid, tx_pos: 0, height: 0, value: 120_000 }]);
  t.same(await conn.request('blockchain.scripthash.get_mempool', [sh]), [{ tx_hash: txid, height: 0, fee: history[0].fee }]);

  devnet.mine(1);
  const height = devnet.height;
  const confirmed = await notes.next(isScriptNote(sh));
  t.equal(confirmed.params[1], expectedStatus([{ tx_hash: txid, height }]), 'status = sha256("txid:height:")');
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), [{ tx_hash: txid, height }], 'confirmed entries carry no fee');
  t.same(await conn.request('blockchain.scripthash.get_balance', [sh]), { confirmed: 120_000, unconfirmed: 0 });
  t.same(await conn.request('blockchain.scripthash.get_mempool', [sh]), []);

  t.equal(await conn.request('blockchain.scripthash.unsubscribe', [sh]), true);
  t.equal(await conn.request('blockchain.scripthash.unsubscribe', [sh]), false);
  await devnetPay(devnet.dir, address, 1_000);
  devnet.mine(1);
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(notes.all.slice(2).some(isScriptNote(sh)), 'no notification after unsubscribe');
});

t.test('history order: chain order, then mempool height 0 by txid, then -1', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const target = devnet.operatorAddress(2);
  const sh = scripthashOf(target);

  const c1 = await devnetPay(devnet.dir, target, 10_000);
  devnet.mine(1);
  const h1 = devnet.height;
  const c2 = await devnetPay(devnet.dir, target, 11_000);
  const c3 = await devnetPay(devnet.dir, target, 12_000);
  devnet.mine(1);
  const h2 = devnet.height;

  // A parent paying operator address 3, and its child paying `target` before the parent confirms: height -1.
  const parentTxid = await devnetPay(devnet.dir, devnet.operatorAddress(3), 100_000);
  const key = operatorKey(devnet.keys, 3);
  const psbt = new bitcoin.Psbt({ network: NETWORK });
  psbt.addInput({ hash: parentTxid, index: 0, sequence: 0xfffffffd, witnessUtxo: { script: bitcoin.address.toOutputScript(devnet.operatorAddress(3), NETWORK), value: 100_000n } });
  psbt.addOutput({ address: target, value: 99_000n });
  psbt.signAllInputs(key).finalizeAllInputs();
  const childTxid = await conn.request<string>('blockchain.transaction.broadcast', [psbt.extractTransaction().toHex()]);
  const m1 = await devnetPay(devnet.dir, target, 13_000);
  const m2 = await devnetPay(devnet.dir, target, 14_000);

  const history = await conn.request<History>('blockchain.scripthash.get_history', [sh]);
  const block2 = devnet.chain.blockAt(h2)!.transactions!.map((tx) => tx.getId());
  const sameBlock = [c2, c3].sort((a, b) => block2.indexOf(a) - block2.indexOf(b));
  const zero = [m1, m2].sort();
  t.same(
    history.map(({ tx_hash, height }) => ({ tx_hash, height })),
    [
      { tx_hash: c1, height: h1 },
      { tx_hash: sameBlock[0], height: h2 },
      { tx_hash: sameBlock[1], height: h2 },
      { tx_hash: zero[0], height: 0 },
      { tx_hash: zero[1], height: 0 },
      { tx_hash: childTxid, height: -1 },
    ],
  );
  t.equal(history[5].fee, 1_000, 'fee = inputs - outputs');
  t.equal(await conn.request('blockchain.scripthash.subscribe', [sh]), expectedStatus(history), 'status hashes that exact order');
  const unspent = await conn.request<Array<{ height: number }>>('blockchain.scripthash.listunspent', [sh]);
  t.same(unspent.map((u) => u.height), [h1, h2, h2, 0, 0, 0]);
});

t.test('notifications go only to the connection that subscribed', async (t) => {
  const devnet = await openDevnet(t);
  const a = await connect(t, devnet.electrumUrl);
  const b = await connect(t, devnet.electrumUrl);
  const notesA = recordNotifications(a);
  const notesB = recordNotifications(b);
  const sh = scripthashOf(devnet.operatorAddress(4));
  await a.request('blockchain.scripthash.subscribe', [sh]);
  await a.request('blockchain.headers.subscribe');
  await devnetPay(devnet.dir, devnet.operatorAddress(4), 30_000);
  await notesA.next(isScriptNote(sh));
  devnet.mine(1);
  await notesA.next(isHeaderNote);
  await notesA.next(isScriptNote(sh));
  await b.request('server.ping');
  t.same(notesB.all, [], 'the other connection heard nothing');
});

t.test('broadcast rejects a double spend with a readable error and keeps the connection', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const txid = await devnetPay(devnet.dir, devnet.operatorAddress(5), 40_000, { rbf: false });
  const original = bitcoin.Transaction.fromHex(await conn.request<string>('blockchain.transaction.get', [txid]));

  // The same coins, paid elsewhere: the first spend does not signal RBF, so the second is a plain conflict.
  const key = (await import('../lib/devnet/keys')).faucetKey(devnet.keys);
  const faucetScript = bitcoin.address.toOutputScript(devnet.faucetAddress, NETWORK);
  const prev = bitcoin.Transaction.fromHex(await conn.request<string>('blockchain.transaction.get', [revHex(original.ins[0].hash)]));
  const value = prev.outs[original.ins[0].index].value;
  const psbt = new bitcoin.Psbt({ network: NETWORK });
  psbt.addInput({ hash: original.ins[0].hash, index: original.ins[0].index, witnessUtxo: { script: faucetScript, value } });
  psbt.addOutput({ address: devnet.operatorAddress(6), value: value - 100_000n });
  psbt.signAllInputs(key).finalizeAllInputs();
  const doubleSpend = psbt.extractTransaction().toHex();

  const err = await conn.request('blockchain.transaction.broadcast', [doubleSpend]).catch((e: ElectrumRpcError) => e);
  t.type(err, ElectrumRpcError);
  t.match((err as ElectrumRpcError).message, /rejected by network rules: txn-mempool-conflict/);
  devnet.mine(1);
  const spent = await conn.request('blockchain.transaction.broadcast', [doubleSpend]).catch((e: ElectrumRpcError) => e);
  t.match((spent as ElectrumRpcError).message, /bad-txns-inputs-missingorspent/, 'once confirmed: missing or spent');
  await t.rejects(conn.request('blockchain.transaction.broadcast', ['00']), /TX decode failed/);
  await t.rejects(conn.request('blockchain.transaction.broadcast', [original.toHex()]), /Transaction outputs already in utxo set/, 'a confirmed tx again');
  t.equal(await conn.request('server.ping'), null, 'connection still up');
});

t.test('bad requests get JSON-RPC errors and the connection stays up', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const code = (p: Promise<unknown>) => p.then(() => 0, (e: ElectrumRpcError) => e.code);
  t.equal(await code(conn.request('blockchain.scripthash.get_history', ['xyz'])), -32602);
  t.equal(await code(conn.request('blockchain.scripthash.get_history', [])), -32602);
  t.equal(await code(conn.request('blockchain.block.header', [-1])), -32602);
  t.equal(await code(conn.request('blockchain.block.header', [1e6])), 1);
  t.equal(await code(conn.request('blockchain.transaction.get', ['00'.repeat(32)])), 1);
  t.equal(await code(conn.request('blockchain.transaction.get_merkle', ['00'.repeat(32), 5])), 1);
  t.equal(await code(conn.request('no.such.method')), -32601);

  const raw = new Promise<unknown>((resolve) => conn.once('unmatched', resolve));
  conn.writeRaw('{not json\n');
  t.match(await raw, { jsonrpc: '2.0', id: null, error: { code: -32700 } });
  t.same(
    await conn.request('blockchain.block.header', { height: 0 } as unknown as unknown[]).then((h) => typeof h),
    'string',
    'by-name parameters work too',
  );
  t.equal(await conn.request('server.ping'), null);
});

t.test('transaction.get, get_merkle against the header merkle root, id_from_pos', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const txids = [];
  for (let i = 0; i < 4; i++) txids.push(await devnetPay(devnet.dir, devnet.operatorAddress(10 + i), 20_000 + i));
  devnet.mine(1);
  const height = devnet.height;
  const header = Buffer.from(await conn.request<string>('blockchain.block.header', [height]), 'hex');
  const merkleRootInHeader = header.subarray(36, 68);
  for (const txid of txids) {
    const proof = await conn.request<{ block_height: number; merkle: string[]; pos: number }>('blockchain.transaction.get_merkle', [txid, height]);
    t.equal(proof.block_height, height);
    const root = rootFromBranch(Buffer.from(txid, 'hex').reverse(), proof.merkle.map((h) => Buffer.from(h, 'hex').reverse()), proof.pos);
    t.equal(Buffer.from(root).toString('hex'), merkleRootInHeader.toString('hex'), `branch of ${txid.slice(0, 8)} reaches the header's root`);
    t.equal(await conn.request('blockchain.transaction.id_from_pos', [height, proof.pos]), txid);
  }
  const raw = await conn.request<string>('blockchain.transaction.get', [txids[0]]);
  t.equal(await conn.request('blockchain.transaction.get', [txids[0], false]), raw);
  t.equal(bitcoin.Transaction.fromHex(raw).getId(), txids[0]);
  const verbose = await conn.request<Record<string, unknown>>('blockchain.transaction.get', [txids[0], true]);
  t.match(verbose, { txid: txids[0], hex: raw, confirmations: 1, blockhash: devnet.chain.tipHash });
  const withMerkle = await conn.request<{ tx_hash: string; merkle: string[] }>('blockchain.transaction.id_from_pos', [height, 0, true]);
  t.equal(withMerkle.merkle.length, 3, 'five transactions: three levels');
  await t.rejects(conn.request('blockchain.transaction.get_merkle', [txids[0], height - 1]), /not in block at height/);
});

t.test('RBF: a replacement removes the original from history and status', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const notes = recordNotifications(conn);
  const address = devnet.operatorAddress(20);
  const sh = scripthashOf(address);
  await conn.request('blockchain.scripthash.subscribe', [sh]);

  const first = await devnetPay(devnet.dir, address, 50_000);
  await notes.next(isScriptNote(sh));
  const bumped = await devnetBump(devnet.dir, first, { sats: 70_000 });
  const note = await notes.next(isScriptNote(sh));
  t.equal(note.params[1], expectedStatus([{ tx_hash: bumped, height: 0 }]));
  t.same(await conn.request('blockchain.scripthash.get_balance', [sh]), { confirmed: 0, unconfirmed: 70_000 });
  await t.rejects(conn.request('blockchain.transaction.get', [first]), /No such mempool or blockchain transaction/, 'the original is gone');

  await devnetCancel(devnet.dir, bumped);
  const cancelled = await notes.next(isScriptNote(sh));
  t.equal(cancelled.params[1], null, 'payment replaced away: empty history, null status');
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), []);
  devnet.mine(1);
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), [], 'and it never confirms');
});

t.test('reorg: the payment goes back to the mempool and its status changes', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const notes = recordNotifications(conn);
  const address = devnet.operatorAddress(30);
  const sh = scripthashOf(address);
  await conn.request('blockchain.headers.subscribe');
  await conn.request('blockchain.scripthash.subscribe', [sh]);
  const txid = await devnetPay(devnet.dir, address, 60_000);
  devnet.mine(2);
  const confirmedAt = devnet.height - 1;
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), [{ tx_hash: txid, height: confirmedAt }]);
  const oldTip = devnet.chain.tipHash;

  devnet.reorg(2, { includeMempool: false });
  const status = await notes.next((n) => isScriptNote(sh)(n) && n.params[1] === expectedStatus([{ tx_hash: txid, height: 0 }]));
  t.ok(status, 'status now hashes "txid:0:"');
  const tip = await notes.next((n) => isHeaderNote(n) && (n.params[0] as { height: number }).height === confirmedAt + 2);
  t.ok(tip, 'one push for the new, longer tip');
  t.notOk(devnet.chain.blockAt(confirmedAt)!.transactions!.some((tx) => tx.getId() === txid), 'the new block at that height left it out');
  t.equal(devnet.chain.heightOfHash(oldTip), undefined, 'the old tip left the chain');
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), [{ tx_hash: txid, height: 0, fee: Number(devnet.chain.mempool.get(txid)!.fee) }]);
  await t.rejects(conn.request('blockchain.transaction.get_merkle', [txid, confirmedAt]), /not in block/);

  devnet.mine(1);
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), [{ tx_hash: txid, height: devnet.height }], 'mined again, higher');
});

t.test('outage: stop() drops connections, start() serves again on the same port', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const url = devnet.electrumUrl;
  const closed = new Promise((resolve) => conn.once('close', resolve));
  await devnet.stopElectrum();
  await closed;
  t.pass('client saw the connection drop');
  await t.rejects(connect(t, url), /cannot reach/);
  devnet.mine(1);
  await devnet.startElectrum();
  t.equal(devnet.electrumUrl, url, 'same port');
  const again = await connect(t, url);
  t.equal((await again.request<{ height: number }>('blockchain.headers.subscribe')).height, devnet.height);
});

t.test('the npm electrum-client the daemon may use talks to the devnet', async (t) => {
  const devnet = await openDevnet(t);
  const port = Number(devnet.electrumUrl.split(':').pop());
  const client = new ElectrumClient(port, '127.0.0.1', 'tcp');
  await client.connect();
  t.teardown(() => client.close());
  t.same(await client.request('server.version', ['bitdrop', '1.4']), ['bitdrop-devnet 0.1', '1.4']);
  const sh = scripthashOf(devnet.operatorAddress(40));
  const pushed = new Promise<unknown[]>((resolve) => client.subscribe.on('blockchain.scripthash.subscribe', resolve));
  t.equal(await client.request('blockchain.scripthash.subscribe', [sh]), null);
  const txid = await devnetPay(devnet.dir, devnet.operatorAddress(40), 25_000);
  t.same(await pushed, [sh, expectedStatus([{ tx_hash: txid, height: 0 }])]);
});
