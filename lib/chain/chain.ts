// One header chain, checked as a light client must (Electrum's blockchain.py, Bitcoin Core's pow.cpp and
// validation, Namecoin Core's auxpow): every header links to the previous hash, carries the bits the
// network's difficulty rules require, and meets its target — by its own hash, or on merge-mined Namecoin
// blocks by the parent block inside a valid AuxPoW. A competing branch replaces ours only with more work.
// Checked headers are kept on disk as 80-byte records after an anchor (genesis or a built-in checkpoint),
// so a restart reads them back instead of downloading again. Payments and names both verify against this.

import fs from 'fs';
import path from 'path';
import { promisify } from 'util';
import { fromRevHex, hash256, revHex, rootFromBranch } from './bytes';
import { AuxPowError, checkAuxPow, parentHashHex } from './auxpow';
import { bitsToTarget, chainIdOf, decode80, HEADER_SIZE, meetsTarget, targetToBits, VERSION_AUXPOW, workOf, type Header } from './header';
import { chainParams, type Anchor, type ChainParams } from './params';
import type { NetworkName } from '../config';

/** A server's headers break the rules (bad link, bits, proof of work or AuxPoW): it is not telling the truth. */
export class ChainError extends Error {}
/** A merkle proof that does not lead to the block's merkle root, or points outside our chain. */
export class ProofError extends Error {}
/** A valid branch with less work than ours: not a lie (a server may lag on a stale branch), but not taken. */
export class LessWork extends Error {}
/** The headers do not connect to anything we hold (the caller should look further back). */
export class NoConnection extends Error {}

interface Entry {
  hash: string;
  /** bits of the nearest block at or below this one that is not a min-difficulty exception (testnet rule) */
  realBits?: number;
  bits?: number;
  time?: number;
  merkleRoot?: Buffer;
  raw?: Buffer;
}

export interface MerkleProof {
  block_height: number;
  merkle: string[];
  pos: number;
}

export interface HeaderChainOptions {
  network: NetworkName;
  /** where `anchor.json` and `headers` live; omit for a chain kept in memory only */
  dir?: string;
  log?: (line: string) => void;
  /** override the built-in anchor (tests; a newer checkpoint) */
  anchor?: Anchor;
  /**
   * Write new headers to disk in the background, in order, instead of synchronously. A leader under a lease
   * (lib/lease) sets it: its event loop renews the lease and must never wait on a hung volume — a synchronous
   * write there stopped the renewals and the volume watch alike, so the daemon was killed by its watchdog
   * instead of fencing itself and giving the lease back. The file is a cache of checked headers: a tail lost in
   * a crash is downloaded and checked again.
   */
  writeBehind?: boolean;
}

export class HeaderChain {
  readonly params: ChainParams;
  private readonly writeBehind: boolean;
  /** the background writes (writeBehind), in order */
  private writes: Promise<void> = Promise.resolve();
  anchor: Anchor;
  /** entries[0] is the anchor; entries[i] is height anchor.height + i */
  private entries: Entry[];
  private readonly file?: string;
  private readonly log: (line: string) => void;
  private fd?: number;
  private readonly limitBits: number;

  private constructor(opts: HeaderChainOptions) {
    this.params = chainParams(opts.network);
    this.anchor = opts.anchor ?? this.params.anchor;
    this.limitBits = targetToBits(this.params.powLimit);
    this.entries = [this.anchorEntry(this.anchor.hash ?? '', this.anchor.bits, this.anchor.time)];
    this.log = opts.log ?? (() => {});
    if (opts.dir) this.file = path.join(opts.dir, 'headers');
    this.writeBehind = opts.writeBehind ?? false;
    if (!this.anchor.hash && !this.anchor.cpRoot) throw new Error(`anchor ${this.anchor.height}: needs a hash or a checkpoint root`);
  }

  /** Opens (or creates) the chain; stored headers are re-linked and kept up to the first that does not link. */
  static open(opts: HeaderChainOptions): HeaderChain {
    const c = new HeaderChain(opts);
    if (opts.dir) c.load(opts.dir);
    return c;
  }

  /** false until a checkpoint-root anchor's block hash is learnt (establishAnchor) */
  get anchored(): boolean {
    return this.entries[0].hash !== '';
  }

  /**
   * Learns the anchor block from a server's checkpoint proof (blockchain.block.header(h, cp_height=h)):
   * its header must be the leaf at `height` of the merkle tree whose root we ship.
   */
  establishAnchor(header80: Buffer, branch: unknown, root: unknown): void {
    const cpRoot = this.anchor.cpRoot;
    if (!cpRoot) throw new Error('this chain has no checkpoint root to establish');
    if (root !== cpRoot) throw new ChainError(`checkpoint ${this.anchor.height}: the server's root ${String(root)} is not ours (${cpRoot})`);
    if (!Array.isArray(branch) || branch.length > 32 || !branch.every((b) => typeof b === 'string' && /^[0-9a-fA-F]{64}$/.test(b))) {
      throw new ChainError(`checkpoint ${this.anchor.height}: malformed branch`);
    }
    const h = decode80(header80.subarray(0, HEADER_SIZE));
    if (!rootFromBranch(fromRevHex(h.hash), branch.map(fromRevHex), this.anchor.height).equals(fromRevHex(cpRoot))) {
      throw new ChainError(`checkpoint ${this.anchor.height}: header ${h.hash} is not proven by the checkpoint root`);
    }
    this.anchor = { ...this.anchor, hash: h.hash };
    this.entries = [this.anchorEntry(h.hash, h.bits, h.time)];
    if (this.file) this.load(path.dirname(this.file));
  }

  get height(): number {
    return this.anchor.height + this.entries.length - 1;
  }
  get tipHash(): string {
    return this.entries[this.entries.length - 1].hash;
  }
  get base(): number {
    return this.anchor.height;
  }
  hashAt(height: number): string | undefined {
    return this.entries[height - this.anchor.height]?.hash;
  }
  /** The 80-byte header at `height` (undefined for the anchor itself and outside the chain). */
  rawHeader(height: number): Buffer | undefined {
    return this.entries[height - this.anchor.height]?.raw;
  }

  /**
   * Checks headers that start at height `start` and, if they are valid and (when they replace some of ours)
   * carry more work than what they replace, makes them our chain. Throws NoConnection when headers[0] does
   * not link to our block at start - 1, ChainError when a header breaks the rules.
   * Returns the lowest height whose block changed (for reorg handling), or undefined when nothing changed.
   */
  accept(headers: Header[], start: number): number | undefined {
    if (headers.length === 0) return undefined;
    if (start <= this.anchor.height || start > this.height + 1) throw new NoConnection(`headers from ${start} do not connect to our chain (${this.anchor.height}..${this.height})`);
    if (this.entries[start - 1 - this.anchor.height].hash !== headers[0].prevHash) throw new NoConnection(`header ${start} does not link to our block ${start - 1}`);
    // skip what we already have
    let skip = 0;
    while (skip < headers.length && this.hashAt(start + skip) === headers[skip].hash) skip++;
    if (skip === headers.length) return undefined;
    const from = start + skip;
    const fresh = headers.slice(skip);
    const view = this.entries.slice(0, from - this.anchor.height);
    for (let i = 0; i < fresh.length; i++) {
      const height = from + i;
      const h = fresh[i];
      if (h.prevHash !== view[view.length - 1].hash) throw new ChainError(`header ${height} (${h.hash}) does not link to block ${height - 1}`);
      this.checkHeader(h, height, view);
      view.push(this.entryOf(h, height, view[view.length - 1]));
    }
    if (from <= this.height) {
      const oldWork = this.entries.slice(from - this.anchor.height).reduce((w, e) => w + workOf(e.bits ?? 0), 0n);
      const newWork = fresh.reduce((w, h) => w + workOf(h.bits), 0n);
      // equal work is taken too: a server announces the branch its node follows, and both carry the same proof
      if (newWork < oldWork) throw new LessWork(`a branch from ${from} to ${from + fresh.length - 1} has less work than ours (to ${this.height})`);
      this.log(`chain: reorg at ${from}: ${this.height - from + 1} blocks replaced by ${fresh.length}`);
    }
    this.entries = view;
    this.persist(from, fresh);
    return from;
  }

  private anchorEntry(hash: string, bits?: number, time?: number): Entry {
    const h = this.anchor.height;
    // Core's walk stops at genesis or a retarget boundary; past a later anchor we cannot see
    const real = bits !== undefined && (h === 0 || h % this.params.interval === 0 || bits !== this.limitBits) ? bits : undefined;
    return { hash, bits, time, realBits: real };
  }

  private entryOf(h: Header, height: number, prev: Entry): Entry {
    const realBits = height % this.params.interval === 0 || h.bits !== this.limitBits ? h.bits : prev.realBits;
    return { hash: h.hash, bits: h.bits, time: h.time, merkleRoot: h.merkleRoot, raw: h.raw, realBits };
  }

  /** Consensus checks of one header at `height` whose predecessors are `view`. */
  private checkHeader(h: Header, height: number, view: Entry[]): void {
    const p = this.params;
    const expected = this.requiredBits(height, h, view);
    if (expected !== undefined && h.bits !== expected) {
      throw new ChainError(`header ${height} has bits ${hex32(h.bits)}, the difficulty rules require ${hex32(expected)}`);
    }
    const target = bitsToTarget(h.bits);
    if (target === undefined || target === 0n || target > p.powLimit) throw new ChainError(`header ${height} has bits ${hex32(h.bits)} outside the network's range`);
    const aux = p.auxpow;
    if (!aux) {
      if (!meetsTarget(h.hash, h.bits, p.powLimit)) throw new ChainError(`header ${height} (${h.hash}) has insufficient proof of work`);
      return;
    }
    // Namecoin Core: CheckProofOfWork for auxpow headers, plus the legacy-block rule of ContextualCheckBlockHeader
    const legacy = h.version === 1;
    if (legacy && height >= aux.startHeight) throw new ChainError(`header ${height} is a legacy block after merge mining started`);
    if (!legacy && aux.strictChainId && chainIdOf(h.version) !== aux.chainId) {
      throw new ChainError(`header ${height} has chain ID ${chainIdOf(h.version)}, expected ${aux.chainId}`);
    }
    if (!h.auxpow) {
      if (h.version & VERSION_AUXPOW) throw new ChainError(`header ${height} has the auxpow version but no AuxPoW`);
      if (!meetsTarget(h.hash, h.bits, p.powLimit)) throw new ChainError(`header ${height} (${h.hash}) has insufficient proof of work`);
      return;
    }
    if (height < aux.startHeight) throw new ChainError(`header ${height} has an AuxPoW before merge mining started`);
    if (h.auxpow.parentHeader.readUInt32LE(0) & VERSION_AUXPOW) throw new ChainError(`header ${height}: auxpow parent block has auxpow version`);
    if (!meetsTarget(parentHashHex(h.auxpow), h.bits, p.powLimit)) throw new ChainError(`header ${height} (${h.hash}): the AuxPoW parent block has insufficient proof of work`);
    try {
      checkAuxPow(h.auxpow, fromRevHex(h.hash), chainIdOf(h.version), aux.strictChainId);
    } catch (err) {
      if (err instanceof AuxPowError) throw new ChainError(`header ${height} (${h.hash}): ${err.message}`);
      throw err;
    }
  }

  /**
   * GetNextWorkRequired (Bitcoin Core, with Namecoin's changes: the retarget looks back a full interval after
   * merge mining started, and min-difficulty also applies to timestamps earlier than the previous block's).
   * Undefined when the history it needs lies before our anchor: then only the target range and PoW are checked.
   */
  private requiredBits(height: number, h: Header, view: Entry[]): number | undefined {
    const p = this.params;
    const at = (ht: number) => view[ht - this.anchor.height] as Entry | undefined;
    const last = at(height - 1)!;
    const limitBits = this.limitBits;
    if (height % p.interval !== 0) {
      if (p.allowMinDifficulty) {
        if (last.time === undefined) return undefined;
        if (p.auxpow && h.time < last.time) return limitBits;
        if (h.time > last.time + 2 * p.targetSpacing) return limitBits;
        // Core walks back to the last block that is not a min-difficulty exception; each entry remembers it
        return last.realBits;
      }
      return last.bits;
    }
    if (p.noRetargeting) return last.bits;
    let back = p.interval - 1;
    if (p.auxpow && height - 1 >= p.auxpow.startHeight && height > p.interval) back = p.interval;
    const first = at(height - 1 - back);
    if (!first || first.time === undefined || last.time === undefined || last.bits === undefined) return undefined;
    let span = last.time - first.time;
    span = Math.min(Math.max(span, p.targetTimespan / 4), p.targetTimespan * 4);
    let target = (bitsToTarget(last.bits)! * BigInt(span)) / BigInt(p.targetTimespan);
    if (target > p.powLimit) target = p.powLimit;
    return targetToBits(target);
  }

  /** Checks an Electrum merkle proof (blockchain.transaction.get_merkle) of `txid` at `height` against our header. */
  verifyTxProof(txid: string, height: number, proof: unknown): void {
    const pr = proof as Partial<MerkleProof> | null;
    if (!pr || typeof pr !== 'object') throw new ProofError(`merkle proof for ${txid}: not an object`);
    if (pr.block_height !== height) throw new ProofError(`merkle proof for ${txid}: block_height ${pr.block_height}, expected ${height}`);
    if (!Array.isArray(pr.merkle) || pr.merkle.length > 32 || !pr.merkle.every((m) => typeof m === 'string' && /^[0-9a-fA-F]{64}$/.test(m))) {
      throw new ProofError(`merkle proof for ${txid}: malformed branch`);
    }
    if (!Number.isSafeInteger(pr.pos) || pr.pos! < 0 || pr.pos! >= 2 ** pr.merkle.length) throw new ProofError(`merkle proof for ${txid}: position ${pr.pos} does not fit the branch`);
    const entry = this.entries[height - this.anchor.height];
    if (!entry?.merkleRoot || height <= this.anchor.height) throw new ProofError(`merkle proof for ${txid}: block ${height} is not in our checked chain (${this.anchor.height + 1}..${this.height})`);
    const root = rootFromBranch(fromRevHex(txid), pr.merkle.map(fromRevHex), pr.pos!);
    if (!root.equals(entry.merkleRoot)) throw new ProofError(`merkle proof for ${txid} does not lead to the merkle root of block ${height} (${entry.hash})`);
  }

  close(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    // after the writes queued on it
    if (this.writeBehind) void this.writes.then(() => fs.close(fd, () => undefined));
    else fs.closeSync(fd);
  }

  // --- disk: <dir>/anchor.json says which anchor the records follow; <dir>/headers holds 80-byte records ---

  private load(dir: string): void {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.close();
    const anchorFile = path.join(dir, 'anchor.json');
    let stored: string | undefined;
    try {
      stored = fs.readFileSync(anchorFile, 'utf8').trim();
    } catch {}
    if (!this.anchored) {
      // a checkpoint-root anchor: the block hash learnt at an earlier sync, if it was this checkpoint
      try {
        const prev = JSON.parse(stored ?? '{}') as { network?: string; height?: number; cpRoot?: string; hash?: string; bits?: number; time?: number };
        if (prev.network === this.params.network && prev.height === this.anchor.height && prev.cpRoot === this.anchor.cpRoot && typeof prev.hash === 'string') {
          this.anchor = { ...this.anchor, hash: prev.hash };
          this.entries = [this.anchorEntry(prev.hash, prev.bits, prev.time)];
        }
      } catch {}
      if (!this.anchored) return; // nothing on disk can follow an anchor we do not know yet
    }
    const e0 = this.entries[0];
    const wanted = JSON.stringify({ network: this.params.network, height: this.anchor.height, hash: this.anchor.hash, cpRoot: this.anchor.cpRoot, bits: e0.bits, time: e0.time });
    if (stored !== wanted) {
      // another anchor (or none yet): the records do not follow ours
      fs.writeFileSync(this.file!, Buffer.alloc(0), { mode: 0o600 });
      fs.writeFileSync(anchorFile, wanted + '\n', { mode: 0o600 });
    }
    const data = fs.existsSync(this.file!) ? fs.readFileSync(this.file!) : Buffer.alloc(0);
    const n = Math.floor(data.length / HEADER_SIZE);
    for (let i = 0; i < n; i++) {
      const h = decode80(Buffer.from(data.subarray(i * HEADER_SIZE, (i + 1) * HEADER_SIZE)));
      if (h.prevHash !== this.tipHash) {
        this.log(`chain: ${this.file}: record ${i} does not link; keeping ${i} headers`);
        break;
      }
      this.entries.push(this.entryOf(h, this.height + 1, this.entries[this.entries.length - 1]));
    }
    const keep = (this.entries.length - 1) * HEADER_SIZE;
    if (keep !== data.length) fs.truncateSync(this.file!, keep);
    this.fd = fs.openSync(this.file!, 'r+');
  }

  /** Writes headers from height `from` on (truncating what a reorg replaced) and syncs them. */
  private persist(from: number, headers: Header[]): void {
    if (this.fd === undefined) return;
    const offset = (from - this.anchor.height - 1) * HEADER_SIZE;
    const buf = Buffer.concat(headers.map((h) => h.raw));
    if (this.writeBehind) {
      const fd = this.fd;
      this.writes = this.writes
        .then(async () => {
          await promisify(fs.ftruncate)(fd, offset);
          await promisify(fs.write)(fd, buf, 0, buf.length, offset);
          await promisify(fs.fdatasync)(fd);
        })
        .catch((err: Error) => this.log(`chain: writing ${this.file}: ${err.message} (the headers are kept in memory)`));
      return;
    }
    fs.ftruncateSync(this.fd, offset);
    fs.writeSync(this.fd, buf, 0, buf.length, offset);
    fs.fdatasyncSync(this.fd);
  }

}

const hex32 = (n: number) => '0x' + n.toString(16).padStart(8, '0');

export { hash256, revHex };
