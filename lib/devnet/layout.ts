// Everything a devnet keeps in its directory:
//
//   blocks.dat     every block after genesis, in height order, as records [magic u32le][size u32le][raw block]
//                  (the record format of Bitcoin Core's blk*.dat). Appended when mining; a reorg truncates it.
//                  A torn last record (crash mid-write) is cut off on the next open.
//   mempool.json   { txs: [raw hex…] } in acceptance order; rewritten atomically (tmp + rename) on each change.
//                  Re-validated on open, so a stale file can only lose transactions, never corrupt the pool.
//   wallet.json    0600: the faucet key (receives pre-mine and default mining rewards) and the operator's
//                  BIP84 test wallet (seed, account xprv/xpub). See keys.ts.
//   .cookie        0600: "__cookie__:<hex>", the JSON-RPC credentials, kept across restarts.
//   devnet.json    where a running devnet listens: { electrum, rpc, network, xpub, tpub, vpub, faucetAddress }.

import fs from 'fs';
import path from 'path';
import { MAGIC } from './consensus';

export const files = (dir: string) => ({
  blocks: path.join(dir, 'blocks.dat'),
  mempool: path.join(dir, 'mempool.json'),
  wallet: path.join(dir, 'wallet.json'),
  cookie: path.join(dir, '.cookie'),
  info: path.join(dir, 'devnet.json'),
});

/** Writes a whole file so that readers see the old or the new content, never a mix. */
export function writeFileAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

/** Append-only store of raw blocks; record i holds the block at height i + 1 (genesis is built in). */
export class BlockFile {
  private offsets: number[] = [];
  private end = 0;

  constructor(
    private readonly file: string,
    private readonly magic = MAGIC,
  ) {}

  /** Reads every complete record; cuts off a torn or foreign tail so later appends line up. */
  readAll(log: (msg: string) => void = () => {}): Buffer[] {
    if (!fs.existsSync(this.file)) fs.writeFileSync(this.file, '', { mode: 0o600 });
    const data = fs.readFileSync(this.file);
    const blocks: Buffer[] = [];
    let pos = 0;
    while (pos + 8 <= data.length && data.readUInt32LE(pos) === this.magic) {
      const size = data.readUInt32LE(pos + 4);
      if (pos + 8 + size > data.length) break;
      this.offsets.push(pos);
      blocks.push(data.subarray(pos + 8, pos + 8 + size));
      pos += 8 + size;
    }
    if (pos !== data.length) {
      log(`blocks.dat: dropping ${data.length - pos} bytes of incomplete record after block ${blocks.length}`);
      fs.truncateSync(this.file, pos);
    }
    this.end = pos;
    return blocks;
  }

  get count() {
    return this.offsets.length;
  }

  append(blocks: Uint8Array[]): void {
    if (blocks.length === 0) return;
    const parts: Buffer[] = [];
    for (const raw of blocks) {
      const head = Buffer.alloc(8);
      head.writeUInt32LE(this.magic, 0);
      head.writeUInt32LE(raw.length, 4);
      this.offsets.push(this.end);
      this.end += 8 + raw.length;
      parts.push(head, Buffer.from(raw));
    }
    const fd = fs.openSync(this.file, 'a');
    try {
      fs.writeSync(fd, Buffer.concat(parts));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Keeps the blocks up to and including `height`. */
  truncate(height: number): void {
    if (height >= this.offsets.length) return;
    this.end = this.offsets[height];
    this.offsets.length = height;
    fs.truncateSync(this.file, this.end);
  }
}
