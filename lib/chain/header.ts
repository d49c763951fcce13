// Block headers as Electrum servers send them: 80 bytes, followed on merge-mined (AuxPoW) chains by the
// AuxPoW when the version has bit 8 set. The block hash is always the double SHA-256 of the first 80 bytes.
// Compact "bits" arithmetic follows Bitcoin Core's arith_uint256 SetCompact/GetCompact.

import { hash256, ParseError, Reader, revHex } from './bytes';
import { parseAuxPow, type AuxPow } from './auxpow';

export const HEADER_SIZE = 80;
/** Namecoin Core's VERSION_AUXPOW: the header is followed by an AuxPoW. */
export const VERSION_AUXPOW = 1 << 8;

export interface Header {
  version: number;
  /** display-order hex */
  prevHash: string;
  /** internal byte order, as it sits in the header */
  merkleRoot: Buffer;
  time: number;
  bits: number;
  nonce: number;
  /** display-order hex of hash256(first 80 bytes) */
  hash: string;
  /** the 80-byte header (what we keep on disk once the AuxPoW is checked) */
  raw: Buffer;
  auxpow?: AuxPow;
}

export const chainIdOf = (version: number) => version >>> 16;

/** Reads one header; on a chain with AuxPoW, reads the AuxPoW that follows an auxpow-version header. */
export function readHeader(r: Reader, auxpowChain: boolean): Header {
  const raw = Buffer.from(r.bytes(HEADER_SIZE, 'block header'));
  const header = decode80(raw);
  if (auxpowChain && header.version & VERSION_AUXPOW) header.auxpow = parseAuxPow(r);
  return header;
}

export function decode80(raw: Buffer): Header {
  if (raw.length !== HEADER_SIZE) throw new ParseError(`a block header has ${HEADER_SIZE} bytes, got ${raw.length}`);
  return {
    version: raw.readUInt32LE(0),
    prevHash: revHex(raw.subarray(4, 36)),
    merkleRoot: Buffer.from(raw.subarray(36, 68)),
    time: raw.readUInt32LE(68),
    bits: raw.readUInt32LE(72),
    nonce: raw.readUInt32LE(76),
    hash: revHex(hash256(raw)),
    raw,
  };
}

/** Parses a run of concatenated headers (blockchain.block.headers before protocol 1.6). */
export function parseHeaders(buf: Buffer, auxpowChain: boolean): Header[] {
  const r = new Reader(buf);
  const out: Header[] = [];
  while (!r.done) out.push(readHeader(r, auxpowChain));
  return out;
}

/** Parses exactly one header (blockchain.block.header, headers.subscribe); trailing bytes are an error. */
export function parseHeader(buf: Buffer, auxpowChain: boolean): Header {
  const r = new Reader(buf);
  const h = readHeader(r, auxpowChain);
  if (!r.done) throw new ParseError(`${buf.length - r.pos} bytes after the block header`);
  return h;
}

/** Core's SetCompact; undefined for negative or overflowing encodings. */
export function bitsToTarget(bits: number): bigint | undefined {
  const size = bits >>> 24;
  const word = bits & 0x007fffff;
  if (word !== 0 && bits & 0x00800000) return undefined;
  if (word !== 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32))) return undefined;
  return size <= 3 ? BigInt(word >>> (8 * (3 - size))) : BigInt(word) << BigInt(8 * (size - 3));
}

/** Core's GetCompact. */
export function targetToBits(target: bigint): number {
  let size = target === 0n ? 0 : Math.ceil(target.toString(16).length / 2);
  let compact = size <= 3 ? Number(target) * 2 ** (8 * (3 - size)) : Number(target >> BigInt(8 * (size - 3)));
  if (compact & 0x00800000) {
    compact = Math.floor(compact / 256);
    size++;
  }
  return (compact | (size << 24)) >>> 0;
}

/** Expected number of hashes for a target: 2^256 / (target + 1), as Core's GetBlockProof. */
export function workOf(bits: number): bigint {
  const target = bitsToTarget(bits);
  if (!target) return 0n;
  return (1n << 256n) / (target + 1n);
}

/** Core's CheckProofOfWorkImpl: the target is in range and hash (display hex, i.e. big-endian) ≤ target. */
export function meetsTarget(hashHex: string, bits: number, powLimit: bigint): boolean {
  const target = bitsToTarget(bits);
  if (target === undefined || target === 0n || target > powLimit) return false;
  return BigInt('0x' + hashHex) <= target;
}
