// Regtest consensus constants and the pure byte functions every other devnet module shares:
// genesis, block subsidy, merkle trees, coinbase and block assembly, proof of work.
// Values follow Bitcoin Core's chainparams.cpp for regtest.

import * as bitcoin from 'bitcoinjs-lib';

export const NETWORK = bitcoin.networks.regtest;
export const GENESIS_HASH = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';
/** Network magic of regtest; used as the record marker of blocks.dat, as in Core's blk*.dat files. */
export const MAGIC = 0xdab5bffa;
export const POW_LIMIT_BITS = 0x207fffff;
export const COIN = 100_000_000n;
export const MAX_MONEY = 21_000_000n * COIN;
export const HALVING_INTERVAL = 150; // regtest halves every 150 blocks, not 210,000
export const COINBASE_MATURITY = 100;
/** Policy: 1 sat/vB, Core's long-standing default -minrelaytxfee and -incrementalrelayfee. */
export const MIN_RELAY_SAT_PER_KVB = 1000n;
export const DUST_RELAY_SAT_PER_KVB = 3000n;

const ZERO32 = new Uint8Array(32);

export const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** Internal byte order → display (RPC) order, as used for txids and block hashes. */
export const revHex = (b: Uint8Array) => Buffer.from(b).reverse().toString('hex');
export const fromRevHex = (hex: string) => Buffer.from(hex, 'hex').reverse();
export const outpointKey = (txid: string, vout: number) => `${txid}:${vout}`;

/** Electrum's script hash: SHA-256 of the output script, hex in reversed byte order. */
export const scriptHash = (script: Uint8Array) => revHex(bitcoin.crypto.sha256(script));

export function subsidy(height: number): bigint {
  const halvings = Math.floor(height / HALVING_INTERVAL);
  return halvings >= 64 ? 0n : (50n * COIN) >> BigInt(halvings);
}

/** Merkle root over hashes in internal byte order; the last hash is paired with itself on odd levels. */
export function merkleRoot(hashes: Uint8Array[]): Uint8Array {
  if (hashes.length === 0) throw new Error('merkle root of nothing');
  let level = hashes;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(bitcoin.crypto.hash256(Buffer.concat([level[i], level[i + 1] ?? level[i]])));
    }
    level = next;
  }
  return level[0];
}

/** The sibling hashes from leaf `pos` up to the root (internal byte order). */
export function merkleBranch(hashes: Uint8Array[], pos: number): Uint8Array[] {
  const branch: Uint8Array[] = [];
  let level = hashes;
  let index = pos;
  while (level.length > 1) {
    branch.push(level[index ^ 1] ?? level[index]);
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(bitcoin.crypto.hash256(Buffer.concat([level[i], level[i + 1] ?? level[i]])));
    }
    level = next;
    index >>= 1;
  }
  return branch;
}

/** Recomputes the root from a leaf and its branch — what an SPV client does with get_merkle. */
export function rootFromBranch(leaf: Uint8Array, branch: Uint8Array[], pos: number): Uint8Array {
  let hash = leaf;
  for (const sibling of branch) {
    hash = bitcoin.crypto.hash256(pos & 1 ? Buffer.concat([sibling, hash]) : Buffer.concat([hash, sibling]));
    pos >>= 1;
  }
  return hash;
}

function buildGenesis(): bitcoin.Block {
  const tx = bitcoin.Transaction.fromHex(
    '01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d010445' +
      '5468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f' +
      '6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a671' +
      '30b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf1' +
      '1d5fac00000000',
  );
  const block = new bitcoin.Block();
  block.version = 1;
  block.prevHash = ZERO32;
  block.merkleRoot = merkleRoot([tx.getHash()]);
  block.timestamp = 1296688602;
  block.bits = POW_LIMIT_BITS;
  block.nonce = 2;
  block.transactions = [tx];
  if (block.getId() !== GENESIS_HASH) throw new Error('regtest genesis block does not hash to ' + GENESIS_HASH);
  return block;
}

export const GENESIS = buildGenesis();

/** BIP141 commitment: OP_RETURN 0xaa21a9ed ‖ hash256(witness merkle root ‖ 32-byte reserved value). */
function witnessCommitmentScript(txs: bitcoin.Transaction[]): Uint8Array {
  const wtxids = txs.map((tx, i) => (i === 0 ? ZERO32 : tx.getHash(true)));
  const commitment = bitcoin.crypto.hash256(Buffer.concat([merkleRoot(wtxids), ZERO32]));
  return bitcoin.script.compile([bitcoin.opcodes.OP_RETURN, Buffer.concat([Buffer.from('aa21a9ed', 'hex'), commitment])]);
}

export interface BlockTemplate {
  prevHash: Uint8Array;
  height: number;
  time: number;
  payout: Uint8Array; // output script of the coinbase reward
  fees: bigint;
  txs: bitcoin.Transaction[]; // parents before children
  /** nVersion (default 0x20000000, BIP9 signalling nothing) */
  version?: number;
}

/**
 * Assembles and mines a block. The coinbase carries the BIP34 height plus a random extra nonce, so a block
 * re-mined at the same height after invalidateblock never repeats the hash of the block it replaces.
 */
export function assembleBlock(t: BlockTemplate): bitcoin.Block {
  const coinbase = new bitcoin.Transaction();
  coinbase.version = 2;
  const extraNonce = Buffer.from(Array.from({ length: 4 }, () => Math.floor(Math.random() * 256)));
  coinbase.addInput(ZERO32, 0xffffffff, 0xffffffff, bitcoin.script.compile([bitcoin.script.number.encode(t.height), extraNonce]));
  coinbase.addOutput(t.payout, subsidy(t.height) + t.fees);
  const txs = [coinbase, ...t.txs];
  coinbase.addOutput(witnessCommitmentScript(txs), 0n);
  coinbase.setWitness(0, [ZERO32]);

  const block = new bitcoin.Block();
  block.version = t.version ?? 0x20000000;
  block.prevHash = t.prevHash;
  block.merkleRoot = merkleRoot(txs.map((tx) => tx.getHash()));
  block.timestamp = t.time;
  block.bits = POW_LIMIT_BITS;
  block.transactions = txs;
  // On regtest about every second nonce meets the target.
  for (block.nonce = 0; !block.checkProofOfWork(); block.nonce++);
  return block;
}

/** Consensus checks we apply when replaying blocks.dat: linkage, proof of work, merkle root. */
export function checkBlockShape(block: bitcoin.Block, prevHash: Uint8Array): void {
  if (!block.prevHash || Buffer.compare(Buffer.from(block.prevHash), Buffer.from(prevHash)) !== 0) {
    throw new Error(`block ${block.getId()} does not extend the tip`);
  }
  if (block.bits !== POW_LIMIT_BITS || !block.checkProofOfWork()) throw new Error(`block ${block.getId()} has bad proof of work`);
  const txs = block.transactions ?? [];
  if (txs.length === 0 || !txs[0].isCoinbase()) throw new Error(`block ${block.getId()} has no coinbase`);
  const root = merkleRoot(txs.map((tx) => tx.getHash()));
  if (Buffer.compare(Buffer.from(root), Buffer.from(block.merkleRoot!)) !== 0) throw new Error(`block ${block.getId()} has a bad merkle root`);
}

/** Satoshis → coin units for protocol fields that are specified in BTC (relayfee, estimatefee). */
export function satsToBtc(sats: bigint): number {
  const neg = sats < 0n;
  const abs = neg ? -sats : sats;
  return Number(`${neg ? '-' : ''}${abs / COIN}.${(abs % COIN).toString().padStart(8, '0')}`);
}
