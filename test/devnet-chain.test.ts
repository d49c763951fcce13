// The devnet's chain and mempool as Bitcoin Core would judge them: consensus shape of mined blocks, mempool
// policy with Core's reject reasons, BIP125 replacement, reorgs, and persistence across restarts.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import { Chain } from '../lib/devnet/chain';
import { COIN, GENESIS_HASH, merkleRoot, NETWORK, scriptHash } from '../lib/devnet/consensus';
import { ECPair } from '../lib/devnet/keys';
import { TxRejected } from '../lib/devnet/validation';
import { devnetPay } from '../lib/devnet/wallet';
import { openDevnet } from './helpers/devnet';

const alice = ECPair.makeRandom({ network: NETWORK });
const p2wpkh = (key: { publicKey: Uint8Array }) => bitcoin.payments.p2wpkh({ pubkey: key.publicKey, network: NETWORK }).output!;
const aliceScript = p2wpkh(alice);
const bobScript = p2wpkh(ECPair.makeRandom({ network: NETWORK }));

interface Spend {
  txid: string;
  vout: number;
  value: bigint;
}

/** A signed v2 p2wpkh transaction from alice's coins; `forge` swaps in a signature made for another transaction. */
function spend(inputs: Spend[], outputs: Array<[Uint8Array, bigint]>, opts: { sequence?: number; forge?: boolean } = {}): bitcoin.Transaction {
  const psbt = new bitcoin.Psbt({ network: NETWORK });
  for (const i of inputs) psbt.addInput({ hash: i.txid, index: i.vout, sequence: opts.sequence ?? 0xfffffffd, witnessUtxo: { script: aliceScript, value: i.value } });
  for (const [script, value] of outputs) psbt.addOutput({ script, value });
  psbt.signAllInputs(alice).finalizeAllInputs();
  const tx = psbt.extractTransaction(true); // tests pay absurd fees on purpose
  if (opts.forge) tx.setWitness(0, spend(inputs, outputs.map(([s, v]) => [s, v - 1n]), { sequence: opts.sequence }).ins[0].witness);
  return tx;
}

const coinbaseOf = (chain: Chain, height: number): Spend => {
  const tx = chain.blockAt(height)!.transactions![0];
  return { txid: tx.getId(), vout: 0, value: tx.outs[0].value };
};

const rejects = (fn: () => unknown, reason: RegExp) => {
  try {
    fn();
  } catch (err) {
    return err instanceof TxRejected && reason.test(err.reason) ? true : (err as Error).message;
  }
  return 'accepted';
};

t.test('mined blocks: genesis, BIP34 heights, witness commitment, subsidy halving', async (t) => {
  const chain = new Chain();
  t.equal(chain.height, 0);
  t.equal(chain.tipHash, GENESIS_HASH);
  chain.mine(151, aliceScript);
  for (const height of [1, 16, 17, 150]) {
    const block = chain.blockAt(height)!;
    const coinbase = block.transactions![0];
    const first = bitcoin.script.decompile(coinbase.ins[0].script)![0];
    const encoded = typeof first === 'number' ? first - bitcoin.opcodes.OP_1 + 1 : bitcoin.script.number.decode(Buffer.from(first));
    t.equal(encoded, height, `coinbase at ${height} commits to its height (BIP34)`);
    t.ok(block.checkProofOfWork(), 'regtest proof of work');
    t.ok(bitcoin.Block.fromBuffer(block.toBuffer()).checkTxRoots(), 'serialised block: merkle root and witness commitment check out (bitcoinjs)');
  }
  t.equal(chain.blockAt(149)!.transactions![0].outs[0].value, 50n * COIN);
  t.equal(chain.blockAt(150)!.transactions![0].outs[0].value, 25n * COIN, 'regtest halves at 150');

  // A block with a segwit spend: its commitment covers the spend's wtxid, with the coinbase's as zero.
  const tx = spend([coinbaseOf(chain, 1)], [[bobScript, 10n * COIN]]);
  chain.submit(tx);
  chain.mine(1, aliceScript);
  const block = chain.blockAt(chain.height)!;
  const witnessRoot = merkleRoot([new Uint8Array(32), block.transactions![1].getHash(true)]);
  const commitment = bitcoin.crypto.hash256(Buffer.concat([witnessRoot, new Uint8Array(32)]));
  t.equal(Buffer.from(block.getWitnessCommit()!).toString('hex'), Buffer.from(commitment).toString('hex'), 'BIP141 commitment');
  t.equal(block.transactions![0].outs[0].value, 25n * COIN + (50n * COIN - 10n * COIN), 'coinbase claims the fee');
});

t.test('mempool policy: Core reject reasons', async (t) => {
  const chain = new Chain();
  chain.mine(99, aliceScript);
  const coin = coinbaseOf(chain, 1);
  t.equal(rejects(() => chain.submit(spend([coin], [[bobScript, COIN]])), /^bad-txns-premature-spend-of-coinbase/), true, 'coinbase at depth 99');
  chain.mine(1, aliceScript);
  // The signer is told the coin is worth more than it is; the chain knows better.
  t.equal(rejects(() => chain.submit(spend([{ ...coin, value: 100n * COIN }], [[bobScript, 60n * COIN]])), /^bad-txns-in-belowout/), true);
  t.equal(rejects(() => chain.submit(spend([coin], [[bobScript, 293n]])), /^dust$/), true, 'p2wpkh dust is below 294 sat');
  t.equal(rejects(() => chain.submit(spend([coin], [[bobScript, 50n * COIN - 50n]])), /^min relay fee not met/), true);
  t.equal(rejects(() => chain.submit(spend([{ ...coin, vout: 1 }], [[bobScript, COIN]])), /^bad-txns-inputs-missingorspent$/), true);
  t.equal(rejects(() => chain.submit(spend([coin], [[bobScript, COIN]], { forge: true })), /^mandatory-script-verify-flag-failed/), true, 'bad signature');
  const good = spend([coin], [[bobScript, COIN]]);
  t.equal(chain.submit(good), good.getId());
  t.equal(chain.submit(good), good.getId(), 'the same transaction again is fine');
  chain.mine(1, aliceScript);
  t.equal(rejects(() => chain.submit(good), /already in utxo set/), true);
});

t.test('BIP125 replacement', async (t) => {
  const chain = new Chain();
  chain.mine(101, aliceScript);
  const coin = coinbaseOf(chain, 1);
  const final = spend([coin], [[bobScript, 49n * COIN]], { sequence: 0xffffffff });
  chain.submit(final);
  t.equal(rejects(() => chain.submit(spend([coin], [[bobScript, 48n * COIN]])), /^txn-mempool-conflict$/), true, 'the original did not opt in');

  const coin2 = coinbaseOf(chain, 2);
  const parent = spend([coin2], [[aliceScript, 50n * COIN - 1000n]]);
  chain.submit(parent);
  const child = spend([{ txid: parent.getId(), vout: 0, value: 50n * COIN - 1000n }], [[bobScript, 50n * COIN - 2000n]]);
  chain.submit(child);
  t.equal(chain.scriptHistory(scriptHash(bobScript)).mempool.find((m) => m.tx_hash === child.getId())?.height, -1, 'child of an unconfirmed parent: -1');

  t.equal(rejects(() => chain.submit(spend([coin2], [[aliceScript, 50n * COIN - 1500n]])), /less fees than conflicting txs/), true, 'must pay for the evicted child too');
  t.equal(rejects(() => chain.submit(spend([coin2], [[aliceScript, 50n * COIN - 2050n]])), /not enough additional fees to relay/), true, 'and for its own relay');
  const replacement = spend([coin2], [[aliceScript, 50n * COIN - 3000n]]);
  chain.submit(replacement);
  t.notOk(chain.mempool.get(parent.getId()), 'parent replaced');
  t.notOk(chain.mempool.get(child.getId()), 'its descendant left with it');
  t.ok(chain.mempool.get(final.getId()), 'unrelated transaction untouched');
});

t.test('invalidate: transactions return to the mempool when still valid', async (t) => {
  const chain = new Chain();
  chain.mine(101, aliceScript);
  const parent = spend([coinbaseOf(chain, 1)], [[aliceScript, 50n * COIN - 1000n]]);
  chain.submit(parent);
  chain.mine(1, aliceScript);
  const forkHash = chain.tipHash;
  const child = spend([{ txid: parent.getId(), vout: 0, value: 50n * COIN - 1000n }], [[bobScript, 50n * COIN - 2000n]]);
  chain.submit(child);
  // Spends the coinbase at height 2, which is mature only while the tip is at least 101.
  const edge = spend([coinbaseOf(chain, 2)], [[bobScript, COIN]]);
  chain.submit(edge);

  const updates: Array<{ tipChanged: boolean; touched: Set<string> }> = [];
  chain.on('update', (u) => updates.push(u));
  chain.invalidate(chain.hashAt(101)!);
  t.equal(chain.height, 100);
  t.equal(chain.heightOfHash(forkHash), undefined);
  t.same(chain.mempool.all().map((e) => e.txid), [parent.getId(), child.getId()], 'parent back first, then its child');
  t.same(chain.scriptHistory(scriptHash(bobScript)).mempool, [{ tx_hash: child.getId(), height: -1, fee: 1000 }]);
  t.notOk(chain.mempool.get(edge.getId()), 'a spend of a now-immature coinbase is dropped');
  t.ok(updates[0].tipChanged && updates[0].touched.has(scriptHash(bobScript)));
  t.throws(() => chain.invalidate(forkHash), /Block not found/);
  t.throws(() => chain.invalidate(GENESIS_HASH), /genesis/);
});

t.test('persistence: a reopened devnet has the same keys, chain, mempool and ports', async (t) => {
  const dir = t.testdir({});
  const first = await openDevnet(t, { dir });
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'devnet.json'), 'utf8'));
  t.match(info, { electrum: first.electrumUrl, rpc: first.rpcUrl, network: 'regtest', xpub: first.vpub, tpub: first.tpub, faucetAddress: first.faucetAddress });
  t.match(first.vpub, /^vpub/);
  t.match(first.tpub, /^tpub/);
  t.equal(fs.statSync(path.join(dir, 'wallet.json')).mode & 0o777, 0o600, 'keys readable by the owner only');
  first.mine(3);
  const pending = await devnetPay(dir, first.operatorAddress(0), 12_345);
  const tip = first.chain.tipHash;
  const { electrumUrl, rpcUrl, xpub } = first;
  await first.close();

  const second = await openDevnet(t, { dir });
  t.equal(second.chain.tipHash, tip, 'same chain');
  t.equal(second.height, 123);
  t.ok(second.chain.mempool.get(pending), 'mempool kept');
  t.equal(second.xpub, xpub, 'same operator wallet');
  t.equal(second.electrumUrl, electrumUrl, 'previous Electrum port re-bound');
  t.equal(second.rpcUrl, rpcUrl, 'previous RPC port and credentials');
  await second.close();

  // A crash mid-append leaves a torn record: the next open cuts it off and carries on.
  fs.appendFileSync(path.join(dir, 'blocks.dat'), Buffer.from('fabfb5da00100000deadbeef', 'hex'));
  const third = await openDevnet(t, { dir });
  t.equal(third.chain.tipHash, tip, 'torn tail dropped, chain intact');
  third.mine(1);
  await third.close();
  const fourth = await openDevnet(t, { dir });
  t.equal(fourth.height, 124, 'appends after the repair line up');
});
