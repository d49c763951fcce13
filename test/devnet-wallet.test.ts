// The devnet driven from outside, as the CLI and the daemon's tests do: the wallet and miner of wallet.ts in
// another process, and the bitcoind-style JSON-RPC.

import t from 'tap';
import { execFile } from 'child_process';
import path from 'path';
import { promisify } from 'util';
import { devnetBump, devnetMine, devnetPay, devnetReorg, readDevnetInfo, rpcCall } from '../lib/devnet/wallet';
import { connect, expectedStatus, openDevnet, scripthashOf } from './helpers/devnet';

const run = promisify(execFile);
const CLI = path.join(__dirname, 'helpers', 'devnet-wallet-cli.ts');

/** Runs the wallet CLI in a child process (with the same TypeScript loader tap gave this one). */
async function cli(...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [...process.execArgv, CLI, ...args], { timeout: 30_000 });
  return JSON.parse(stdout);
}

t.test('another process pays, mines and reorgs through the devnet directory alone', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const address = devnet.operatorAddress(0);
  const sh = scripthashOf(address);

  const txid = (await cli('pay', devnet.dir, address, '150000')) as string;
  t.match(txid, /^[0-9a-f]{64}$/);
  t.same(await conn.request('blockchain.scripthash.listunspent', [sh]), [{ tx_hash: txid, tx_pos: 0, height: 0, value: 150_000 }]);
  const hashes = (await cli('mine', devnet.dir, '2')) as string[];
  t.equal(hashes.length, 2);
  t.equal(devnet.chain.tipHash, hashes[1]);
  const height = devnet.height - 1;
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), [{ tx_hash: txid, height }]);

  await cli('reorg', devnet.dir, '2', txid);
  t.equal(devnet.height, height + 2, 'the new branch is one block longer');
  t.same(await conn.request('blockchain.scripthash.get_history', [sh]), [], 'a reorg removed the confirmed payment');
  t.equal(await conn.request('blockchain.scripthash.subscribe', [sh]), null);

  const err = await cli('pay', devnet.dir, 'not-an-address', '1000').catch((e: { stderr: string }) => e.stderr);
  t.match(err, /not-an-address/, 'a readable error on stderr');
});

t.test('several payments in a row, beyond the mature coins, chain on unconfirmed change', async (t) => {
  const devnet = await openDevnet(t, { premine: 101 });
  const conn = await connect(t, devnet.electrumUrl);
  const paid: string[] = [];
  for (let i = 0; i < 5; i++) paid.push(await devnetPay(devnet.dir, devnet.operatorAddress(i), 10_000 + i, { feeRate: 3 }));
  t.equal(new Set(paid).size, 5);
  t.equal(devnet.chain.mempool.size, 5);
  const depending = devnet.chain.mempool.all().filter((e) => e.parents.size > 0).length;
  t.ok(depending >= 3, 'two mature coinbases, then change');
  for (const [i, txid] of paid.entries()) {
    const entry = devnet.chain.mempool.get(txid)!;
    t.ok(Number(entry.fee) >= 3 * entry.vsize, `payment ${i} pays at least 3 sat/vB`);
  }
  await devnetMine(devnet.dir, 1);
  t.equal(devnet.chain.mempool.size, 0);
  const h = devnet.height;
  for (const [i, txid] of paid.entries()) {
    t.same(await conn.request('blockchain.scripthash.get_history', [scripthashOf(devnet.operatorAddress(i))]), [{ tx_hash: txid, height: h }]);
  }
  await t.rejects(devnetPay(devnet.dir, devnet.operatorAddress(9), 10n ** 15n), /not enough/);
});

t.test('bump to another address moves the payment; reorg without the mempool unconfirms', async (t) => {
  const devnet = await openDevnet(t);
  const conn = await connect(t, devnet.electrumUrl);
  const [a, b] = [devnet.operatorAddress(0), devnet.operatorAddress(1)];
  const txid = await devnetPay(devnet.dir, a, 80_000, { rbf: true });
  const moved = await devnetBump(devnet.dir, txid, { address: b, feeRate: 10 });
  t.same(await conn.request('blockchain.scripthash.get_history', [scripthashOf(a)]), []);
  t.match(await conn.request('blockchain.scripthash.get_history', [scripthashOf(b)]), [{ tx_hash: moved, height: 0 }]);

  await devnetMine(devnet.dir, 1);
  await devnetReorg(devnet.dir, 1, { includeMempool: false });
  t.equal(await conn.request('blockchain.scripthash.subscribe', [scripthashOf(b)]), expectedStatus([{ tx_hash: moved, height: 0 }]), 'back to unconfirmed');
  const final = await devnetPay(devnet.dir, a, 5_000, { rbf: false });
  await t.rejects(devnetBump(devnet.dir, final, { sats: 6_000 }), /txn-mempool-conflict/, 'a non-signalling payment cannot be bumped');
});

t.test('bitcoind-style JSON-RPC', async (t) => {
  const devnet = await openDevnet(t);
  const { rpc } = readDevnetInfo(devnet.dir);
  t.equal(rpc, devnet.rpcUrl);
  t.equal(await rpcCall(rpc, 'getblockcount'), devnet.height);
  t.equal(await rpcCall(rpc, 'getbestblockhash'), devnet.chain.tipHash);
  t.equal(await rpcCall(rpc, 'getblockhash', [0]), '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206');
  t.match(await rpcCall(rpc, 'getblockchaininfo'), { chain: 'regtest', blocks: devnet.height, bestblockhash: devnet.chain.tipHash });

  const txid = await devnetPay(devnet.dir, devnet.operatorAddress(0), 5_000);
  t.same(await rpcCall(rpc, 'getrawmempool'), [txid]);
  t.match(await rpcCall(rpc, 'getrawmempool', [true]), { [txid]: { depends: [], 'bip125-replaceable': true } });
  const raw = devnet.chain.mempool.get(txid)!.tx.toHex();
  t.equal(await rpcCall(rpc, 'sendrawtransaction', [raw]), txid, 'resending a mempool transaction is fine');
  const [block] = await rpcCall<string[]>(rpc, 'generatetoaddress', [1, devnet.faucetAddress]);
  t.equal(devnet.chain.tipHash, block);
  t.same(await rpcCall(rpc, 'getrawmempool'), []);
  t.equal(await rpcCall(rpc, 'invalidateblock', [block]), null);
  t.same(await rpcCall(rpc, 'getrawmempool'), [txid], 'back in the mempool');

  // Errors: HTTP status and body as bitcoind sends them.
  const post = async (body: unknown, auth = new URL(rpc)) => {
    const res = await fetch(`http://${auth.host}/`, {
      method: 'POST',
      headers: { Authorization: 'Basic ' + Buffer.from(`${decodeURIComponent(auth.username)}:${decodeURIComponent(auth.password)}`).toString('base64') },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: res.status === 401 ? null : await res.json() };
  };
  const wrong = new URL(rpc);
  wrong.password = 'wrong';
  t.equal((await post({ method: 'getblockcount', id: 1 }, wrong)).status, 401);
  t.same(await post({ method: 'nope', params: [], id: 7 }), { status: 404, body: { result: null, error: { code: -32601, message: 'Method not found' }, id: 7 } });
  t.match(await post({ method: 'sendrawtransaction', params: ['zz'], id: 1 }), { status: 500, body: { result: null, error: { code: -22 } } });
  t.match(await post({ method: 'invalidateblock', params: ['00'.repeat(32)], id: 1 }), { status: 500, body: { error: { code: -5, message: 'Block not found' } } });
  t.match(await post({ method: 'generatetoaddress', params: [1, 'bc1qnotregtest'], id: 1 }), { status: 500, body: { error: { code: -5 } } });
  t.match(await post({ method: 'getblockhash', params: [10_000], id: 1 }), { status: 500, body: { error: { code: -8, message: 'Block height out of range' } } });
  t.match(await post({ method: 'getblockcount', params: 'x', id: 1 }), { status: 400 });
  const batch = await post([{ method: 'getblockcount', id: 1 }, { method: 'nope', id: 2 }]);
  t.match(batch, { status: 200, body: [{ result: devnet.height, error: null, id: 1 }, { result: null, error: { code: -32601 }, id: 2 }] });
});
