// Byte helpers shared by the header, AuxPoW and merkle code: double SHA-256, display-order hex, a reader.

import crypto from 'crypto';

export const sha256 = (b: Uint8Array): Buffer => crypto.createHash('sha256').update(b).digest();
export const hash256 = (b: Uint8Array): Buffer => sha256(sha256(b));
/** Internal byte order → display (RPC) order hex, as txids and block hashes are written. */
export const revHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');
export const fromRevHex = (hex: string): Buffer => Buffer.from(hex, 'hex').reverse();

export class ParseError extends Error {}

/** A cursor over a buffer; every read checks the bounds, so truncated input fails with a clear message. */
export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new ParseError(`truncated ${what}: needs ${n} bytes at offset ${this.pos}, has ${this.buf.length - this.pos}`);
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  varint(what: string): number {
    this.need(1, what);
    const first = this.buf[this.pos++];
    if (first < 0xfd) return first;
    if (first === 0xfd) return this.bytes(2, what).readUInt16LE(0);
    if (first === 0xfe) return this.u32(what);
    const v = this.bytes(8, what).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ParseError(`${what}: count ${v} is absurd`);
    return Number(v);
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
}

/** Recomputes a merkle root from a leaf, its branch (internal byte order) and its index (Core's CheckMerkleBranch). */
export function rootFromBranch(leaf: Uint8Array, branch: readonly Uint8Array[], index: number): Buffer {
  let hash: Buffer = Buffer.from(leaf);
  for (const sibling of branch) {
    hash = hash256(index & 1 ? Buffer.concat([sibling, hash]) : Buffer.concat([hash, sibling]));
    index >>>= 1;
  }
  return hash;
}
