// Merge-mining proofs (AuxPoW) as Namecoin Core serialises and checks them (src/auxpow.{h,cpp}, and
// CheckProofOfWork for auxpow headers in validation). A merge-mined block's own hash need not meet its
// target: the parent block (typically a Bitcoin block) does, and the parent's coinbase commits to our block
// hash through a "chain merkle tree" whose root sits in the coinbase script.
//
// Serialisation: parent coinbase tx ‖ hashBlock (32, unused) ‖ coinbase merkle branch ‖ nIndex (int32) ‖
// chain merkle branch ‖ nChainIndex (int32) ‖ parent block header (80 bytes).

import { hash256, ParseError, Reader, rootFromBranch, revHex } from './bytes';

/** Namecoin Core's pchMergedMiningHeader. */
export const MERGED_MINING_HEADER = Buffer.from([0xfa, 0xbe, 0x6d, 0x6d]);
const MAX_CHAIN_BRANCH = 30;
/** Without the merged-mining header, the chain merkle root must start in the first 20 bytes of the script. */
const LEGACY_ROOT_OFFSET = 20;

export interface AuxPow {
  /** the parent block's coinbase: its txid (internal order) and its first input's scriptSig */
  coinbaseTxid: Buffer;
  coinbaseScript: Buffer;
  coinbaseInputs: number;
  coinbaseBranch: Buffer[];
  coinbaseIndex: number;
  chainBranch: Buffer[];
  chainIndex: number;
  parentHeader: Buffer;
}

export class AuxPowError extends Error {}

export function parseAuxPow(r: Reader): AuxPow {
  const tx = readCoinbase(r);
  r.bytes(32, 'auxpow hashBlock');
  const coinbaseBranch = readBranch(r, 'auxpow coinbase branch');
  const coinbaseIndex = r.i32('auxpow coinbase index');
  const chainBranch = readBranch(r, 'auxpow chain branch');
  const chainIndex = r.i32('auxpow chain index');
  const parentHeader = Buffer.from(r.bytes(80, 'auxpow parent header'));
  return { ...tx, coinbaseBranch, coinbaseIndex, chainBranch, chainIndex, parentHeader };
}

function readBranch(r: Reader, what: string): Buffer[] {
  const n = r.varint(what);
  if (n > 64) throw new ParseError(`${what}: ${n} hashes is more than any real block needs`);
  return Array.from({ length: n }, () => Buffer.from(r.bytes(32, what)));
}

/** Reads a transaction (with or without witness) and returns its txid and its first input's script. */
function readCoinbase(r: Reader): Pick<AuxPow, 'coinbaseTxid' | 'coinbaseScript' | 'coinbaseInputs'> {
  const start = r.pos;
  r.u32('auxpow coinbase version');
  const afterVersion = r.pos;
  let witness = false;
  if (r.buf[r.pos] === 0x00 && r.buf[r.pos + 1] === 0x01) {
    witness = true;
    r.pos += 2;
  }
  const bodyStart = r.pos;
  const nIn = r.varint('auxpow coinbase inputs');
  let firstScript = Buffer.alloc(0);
  for (let i = 0; i < nIn; i++) {
    r.bytes(36, 'auxpow coinbase outpoint');
    const script = r.bytes(r.varint('auxpow coinbase script'), 'auxpow coinbase script');
    if (i === 0) firstScript = Buffer.from(script);
    r.u32('auxpow coinbase sequence');
  }
  const nOut = r.varint('auxpow coinbase outputs');
  for (let i = 0; i < nOut; i++) {
    r.bytes(8, 'auxpow coinbase value');
    r.bytes(r.varint('auxpow coinbase output script'), 'auxpow coinbase output script');
  }
  const bodyEnd = r.pos;
  if (witness) {
    for (let i = 0; i < nIn; i++) {
      const items = r.varint('auxpow coinbase witness');
      for (let j = 0; j < items; j++) r.bytes(r.varint('auxpow coinbase witness item'), 'auxpow coinbase witness item');
    }
  }
  const lockStart = r.pos;
  r.u32('auxpow coinbase locktime');
  // the txid covers the serialisation without witness: version ‖ inputs ‖ outputs ‖ locktime
  const legacy = Buffer.concat([r.buf.subarray(start, afterVersion), r.buf.subarray(bodyStart, bodyEnd), r.buf.subarray(lockStart, r.pos)]);
  return { coinbaseTxid: hash256(legacy), coinbaseScript: firstScript, coinbaseInputs: nIn };
}

/** Core's CAuxPow::getExpectedIndex, in 32-bit arithmetic. */
export function expectedIndex(nonce: number, chainId: number, height: number): number {
  let rand = nonce >>> 0;
  rand = (Math.imul(rand, 1103515245) + 12345) >>> 0;
  rand = (rand + chainId) >>> 0;
  rand = (Math.imul(rand, 1103515245) + 12345) >>> 0;
  return height >= 32 ? rand : rand % 2 ** height;
}

/**
 * CAuxPow::check: `blockHash` (internal order) is committed to by the parent coinbase, which is in the parent
 * block. Proof of work of the parent is checked by the caller (it needs the block's bits). Throws AuxPowError.
 */
export function checkAuxPow(aux: AuxPow, blockHash: Buffer, chainId: number, strictChainId: boolean): void {
  if (aux.coinbaseIndex !== 0) throw new AuxPowError('AuxPow is not a generate');
  const parentChainId = aux.parentHeader.readUInt32LE(0) >>> 16;
  if (strictChainId && parentChainId === chainId) throw new AuxPowError('Aux POW parent has our chain ID');
  if (aux.chainBranch.length > MAX_CHAIN_BRANCH) throw new AuxPowError('Aux POW chain merkle branch too long');

  // the chain merkle root appears in the coinbase script in reversed (display) byte order
  const root = Buffer.from(rootFromBranch(blockHash, aux.chainBranch, aux.chainIndex)).reverse();
  const parentMerkleRoot = aux.parentHeader.subarray(36, 68);
  if (!rootFromBranch(aux.coinbaseTxid, aux.coinbaseBranch, aux.coinbaseIndex).equals(parentMerkleRoot)) {
    throw new AuxPowError('Aux POW merkle root incorrect');
  }
  if (aux.coinbaseInputs === 0) throw new AuxPowError('Aux POW coinbase has no inputs');

  const script = aux.coinbaseScript;
  const head = script.indexOf(MERGED_MINING_HEADER);
  let pc = script.indexOf(root);
  if (pc < 0) throw new AuxPowError('Aux POW missing chain merkle root in parent coinbase');
  if (head >= 0) {
    if (script.indexOf(MERGED_MINING_HEADER, head + 1) >= 0) throw new AuxPowError('Multiple merged mining headers in coinbase');
    if (head + MERGED_MINING_HEADER.length !== pc) throw new AuxPowError('Merged mining header is not just before chain merkle root');
  } else if (pc > LEGACY_ROOT_OFFSET) {
    throw new AuxPowError('Aux POW chain merkle root must start in the first 20 bytes of the parent coinbase');
  }
  pc += root.length;
  if (script.length - pc < 8) throw new AuxPowError('Aux POW missing chain merkle tree size and nonce in parent coinbase');
  const size = script.readUInt32LE(pc);
  const height = aux.chainBranch.length;
  if (size !== 2 ** height) throw new AuxPowError('Aux POW merkle branch size does not match parent coinbase');
  const nonce = script.readUInt32LE(pc + 4);
  if (aux.chainIndex !== expectedIndex(nonce, chainId, height)) throw new AuxPowError('Aux POW wrong index');
}

export const parentHashHex = (aux: AuxPow) => revHex(hash256(aux.parentHeader));

/**
 * A merge-mining proof for `header80` (an auxpow-version header), built as Namecoin Core's regtest miner does
 * (CAuxPow::createAuxPow, then mining the parent): a parent coinbase whose only input script pushes our block
 * hash (display order), merkle size 1 and nonce 0; no outputs; a version-1 parent block holding just that
 * coinbase, its nonce raised until its hash meets the target of `bits`. Serialised as it follows the header.
 */
export function createAuxPow(header80: Buffer): Buffer {
  const blockHash = hash256(header80);
  const inputData = Buffer.concat([Buffer.from(blockHash).reverse(), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0])]);
  const script = Buffer.concat([Buffer.from([inputData.length]), inputData]);
  const coinbase = Buffer.concat([
    u32(2), // CTransaction::CURRENT_VERSION
    Buffer.from([1]),
    Buffer.alloc(32),
    u32(0xffffffff), // null prevout
    Buffer.from([script.length]),
    script,
    u32(0xffffffff),
    Buffer.from([0]), // no outputs
    u32(0),
  ]);
  const parent = Buffer.alloc(80);
  parent.writeUInt32LE(1, 0);
  hash256(coinbase).copy(parent, 36); // one transaction: the merkle root is its txid
  const bits = header80.readUInt32LE(72);
  parent.writeUInt32LE(bits, 72);
  const target = targetOf(bits);
  for (let nonce = 0; ; nonce++) {
    parent.writeUInt32LE(nonce, 76);
    if (BigInt('0x' + revHex(hash256(parent))) <= target) break;
  }
  return Buffer.concat([coinbase, Buffer.alloc(32), Buffer.from([0]), u32(0), Buffer.from([0]), u32(0), parent]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function targetOf(bits: number): bigint {
  const size = bits >>> 24;
  const word = BigInt(bits & 0x007fffff);
  return size <= 3 ? word >> BigInt(8 * (3 - size)) : word << BigInt(8 * (size - 3));
}
