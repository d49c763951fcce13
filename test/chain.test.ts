// lib/chain: the header chain payments and names verify against. Real Namecoin mainnet AuxPoW headers are
// accepted and every tampered part of them refused; regtest chains from a server are synced, kept on disk,
// reorganised only by more work, and merkle proofs checked against them.
import t, { type Test } from 'tap';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { HeaderChain, parseHeader, syncChain, parseTip, targetToBits, bitsToTarget, workOf, expectedIndex, type Header } from '../lib/chain';
import { ElectrumClient } from '../lib/payments/electrum';
import { TestElectrum } from './helpers/payments-electrum';
import vectors from './fixtures/namecoin-auxpow-headers.json';

const sha256d = (b: Buffer) => crypto.createHash('sha256').update(crypto.createHash('sha256').update(b).digest()).digest();
type Vec = { prevHash: string; target: string; hex: string };
const V = vectors as unknown as Record<'19414' | '37174', Vec>;

function accepts(height: number, v: Vec, hex = v.hex): Header {
  const chain = HeaderChain.open({ network: 'namecoin', anchor: { height: height - 1, hash: v.prevHash } });
  const h = parseHeader(Buffer.from(hex, 'hex'), true);
  chain.accept([h], height);
  return h;
}

t.test('compact bits', async (t) => {
  t.equal(targetToBits((1n << 224n) - 1n), 0x1d00ffff);
  t.equal(targetToBits((1n << 255n) - 1n), 0x207fffff);
  t.equal(bitsToTarget(0x1d00ffff), 0xffffn << 208n);
  t.equal(targetToBits(BigInt('0x' + V['37174'].target)), 0x1a242a4a, 'the target Electrum-NMC gives for block 37174');
  t.equal(bitsToTarget(0x04923456), undefined, 'negative');
  t.equal(workOf(0x1d00ffff), 0x100010001n, 'difficulty-1 work, as Core computes it');
  t.equal(expectedIndex(0, 1, 0), 0);
});

t.test('Namecoin mainnet AuxPoW headers (blocks 19414 and 37174) check; every tampered part is refused', async (t) => {
  const h = accepts(37174, V['37174']);
  t.equal(h.hash, '65ef89dc3da0c0df9b3d5309f89dd2eaceb81227605ead903d8ef6619d328b39');
  t.equal(h.raw.length, 80, 'only the 80 bytes are kept');
  t.equal(h.auxpow!.chainIndex, 11);
  t.equal(Buffer.from(h.auxpow!.coinbaseTxid).reverse().toString('hex'), '8a3164be45a621f85318647d425fe9f45837b8e42ec4fdd902d7f64daf61ff4a');
  accepts(19414, V['19414']); // no merged-mining magic: the root sits in the first 20 bytes
  t.pass('19414: legacy coinbase layout accepted');

  const hex = V['37174'].hex;
  const at = (needle: string) => hex.indexOf(needle);
  const patch = (pos: number, bytes: string) => hex.slice(0, pos) + bytes + hex.slice(pos + bytes.length);
  const parentStart = hex.length - 160;
  // the parent's nonce: its hash no longer meets the target
  t.throws(() => accepts(37174, V['37174'], patch(hex.length - 8, '00000000')), /AuxPoW parent block has insufficient proof of work/);
  // one byte of the coinbase script: the coinbase is no longer in the parent's merkle tree
  const script = at('456c6967697573'); // "Eligius" in the parent coinbase
  t.throws(() => accepts(37174, V['37174'], patch(script, '556c')), /Aux POW merkle root incorrect|insufficient/);
  // the chain merkle root committed in the coinbase no longer matches: a header for another block
  const other = patch(8, 'ff'); // prev hash byte: a different block hash
  const chain = HeaderChain.open({ network: 'namecoin', anchor: { height: 37173, hash: parseHeader(Buffer.from(other, 'hex'), true).prevHash } });
  t.throws(() => chain.accept([parseHeader(Buffer.from(other, 'hex'), true)], 37174), /missing chain merkle root/);
  // the chain index (just before the parent header)
  t.throws(() => accepts(37174, V['37174'], patch(parentStart - 8, '0c000000')), /wrong index|missing chain merkle root/);
  // our own chain ID on the parent
  t.throws(() => accepts(37174, V['37174'], patch(parentStart, '01000100')), /parent has our chain ID|merkle root incorrect|insufficient/);
  // an 80-byte header with the auxpow version bit is refused; a truncated AuxPoW does not parse
  t.throws(() => parseHeader(Buffer.from(hex.slice(0, 400), 'hex'), true), /truncated/);
  t.throws(() => parseHeader(Buffer.from(hex + '00', 'hex'), true), /after the block header/);
});

/** A test Electrum server at `height`, a client of it and a folder for a header chain, all removed after `t`. */
async function serverAndDir(t: Test, height: number) {
  const server = await TestElectrum.start({ height });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-chain-'));
  const client = new ElectrumClient({ servers: [server.url], clearnet: false });
  t.teardown(async () => {
    await client.stop();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await client.start();
  const request = (m: string, p: unknown[]) => client.request(m, p);
  return { server, dir, client, request };
}

t.test('write-behind (a leader under a lease): headers reach the disk in the background, in order, and reopen', async (t) => {
  const { server, dir, client, request } = await serverAndDir(t, 40);
  const chain = HeaderChain.open({ network: 'regtest', dir, writeBehind: true });
  await syncChain(chain, request, parseTip(chain, await client.request('blockchain.headers.subscribe', [])));
  server.mine();
  await syncChain(chain, request, parseTip(chain, await client.request('blockchain.headers.subscribe', [])));
  t.equal(chain.height, 41, 'synced in memory');
  const file = path.join(dir, 'headers');
  for (const until = Date.now() + 20_000; fs.statSync(file).size !== 41 * 80 && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
  t.equal(fs.statSync(file).size, 41 * 80, 'every record written');
  chain.close();
  const again = HeaderChain.open({ network: 'regtest', dir });
  t.teardown(() => again.close());
  t.equal(again.height, 41, 'reopened from disk');
  t.equal(again.hashAt(41), chain.hashAt(41), 'the same tip');
});

t.test('a regtest chain from a server: synced, stored, reopened without downloading, proofs checked', async (t) => {
  const { server, dir, client, request } = await serverAndDir(t, 150);
  const tip = async (c: HeaderChain) => parseTip(c, await client.request('blockchain.headers.subscribe', []));

  const chain = HeaderChain.open({ network: 'regtest', dir });
  await syncChain(chain, request, await tip(chain));
  t.equal(chain.height, 150);
  t.equal(chain.hashAt(150), parseHeader(Buffer.from(server.headers[150], 'hex'), false).hash);
  t.equal(fs.statSync(path.join(dir, 'headers')).size, 150 * 80, '80-byte records after genesis');
  chain.close();

  const before = server.counts['blockchain.block.headers'];
  const again = HeaderChain.open({ network: 'regtest', dir });
  t.teardown(() => again.close());
  t.equal(again.height, 150, 'reopened from disk');
  await syncChain(again, request, await tip(again));
  t.equal(server.counts['blockchain.block.headers'], before, 'no headers downloaded again');

  // a payment, mined: its proof checks, a forged one does not
  server.pay('bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', 5000, (await import('bitcoinjs-lib')).networks.regtest);
  server.mine();
  await syncChain(again, request, await tip(again));
  t.equal(again.height, 151, 'one more block');
  const txid = server.blocks[151][1];
  const proof = (await client.request('blockchain.transaction.get_merkle', [txid, 151])) as { merkle: string[]; pos: number; block_height: number };
  again.verifyTxProof(txid, 151, proof);
  t.pass('a true proof checks');
  t.throws(() => again.verifyTxProof(txid, 151, { ...proof, merkle: [crypto.randomBytes(32).toString('hex')] }), /does not lead to the merkle root of block 151/);
  t.throws(() => again.verifyTxProof(txid, 150, { ...proof, block_height: 150 }), /does not lead/);
  t.throws(() => again.verifyTxProof(txid, 152, { ...proof, block_height: 152 }), /not in our checked chain/);
  t.throws(() => again.verifyTxProof(txid, 151, { ...proof, pos: 2 ** proof.merkle.length }), /does not fit/);

  // difficulty rules: regtest never retargets, so bits other than 0x207fffff are refused even with valid PoW
  const mk = (prev: string, bits: number, good = true, time = 1_800_000_000) => {
    const h = Buffer.alloc(80);
    h.writeUInt32LE(0x20000000, 0);
    Buffer.from(prev, 'hex').reverse().copy(h, 4);
    crypto.randomBytes(32).copy(h, 36);
    h.writeUInt32LE(time, 68);
    h.writeUInt32LE(bits, 72);
    const target = bitsToTarget(bits)!;
    for (let n = 0; ; n++) {
      h.writeUInt32LE(n, 76);
      const v = BigInt('0x' + Buffer.from(sha256d(h)).reverse().toString('hex'));
      if (good ? v <= target : v > target) break;
    }
    return parseHeader(h, false);
  };
  t.throws(() => again.accept([mk(again.tipHash, 0x2007ffff)], 152), /difficulty rules require 0x207fffff/);
  t.throws(() => again.accept([mk(again.tipHash, 0x207fffff, false)], 152), /insufficient proof of work/);
  t.throws(() => again.accept([mk(crypto.randomBytes(32).toString('hex'), 0x207fffff)], 152), /does not link/);
  // a competing branch replaces ours only with more work
  const fork = mk(again.hashAt(149)!, 0x207fffff);
  t.throws(() => again.accept([fork], 150), /has less work than ours/);
  const fork2 = mk(fork.hash, 0x207fffff, true, 1_800_000_001);
  const fork3 = mk(fork2.hash, 0x207fffff, true, 1_800_000_002);
  t.equal(again.accept([fork, fork2, fork3], 150), 150, 'a longer branch wins from 150');
  t.equal(again.hashAt(152), fork3.hash);
  const twin = mk(fork2.hash, 0x207fffff, true, 1_800_000_003);
  t.equal(again.accept([twin], 152), 152, 'an equal-work branch is followed (the server\'s node switched)');
  again.close();
  const third = HeaderChain.open({ network: 'regtest', dir });
  t.equal(third.hashAt(152), twin.hash, 'the reorg is on disk');
  t.equal(third.height, 152);
  third.close();
});

t.test('a server on another network is refused at the anchor', async (t) => {
  const server = await TestElectrum.start({ height: 5 });
  const client = new ElectrumClient({ servers: [server.url], clearnet: false });
  t.teardown(async () => {
    await client.stop();
    await server.close();
  });
  await client.start();
  const chain = HeaderChain.open({ network: 'signet' });
  await t.rejects(syncChain(chain, (m, p) => client.request(m, p), parseTip(chain, await client.request('blockchain.headers.subscribe', []))), /not our anchor/);
});
