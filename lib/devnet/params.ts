// What makes one devnet chain differ from another: its network (address prefixes), genesis, block version,
// relay policy, the block codec (the ONE place block and header bytes are written and read, so a merge-mined
// AuxPoW header format replaces these three functions and nothing else), and extra consensus rules
// (Namecoin's name operations). The Bitcoin regtest chain has none; the Namecoin regtest chain adds them.

import * as bitcoin from 'bitcoinjs-lib';
import { GENESIS, MAGIC, MIN_RELAY_SAT_PER_KVB, NETWORK } from './consensus';
import type { Coin, TxRules } from './validation';
import { createAuxPow, parseAuxPow } from '../chain/auxpow';
import { Reader } from '../chain/bytes';
import { VERSION_AUXPOW } from '../chain/header';

/** Consensus rules a chain adds on top of Bitcoin's, with the hooks the chain calls as blocks come and go. */
export interface ChainRules extends TxRules {
  /** may `tx` (whose coins are `coins`) go into the block at `height`? (a name_firstupdate waits 12 blocks) */
  mineable(tx: bitcoin.Transaction, coins: Coin[], height: number): boolean;
  /** a block was connected at `height`; `spent[i]` are the coins transaction i spent (empty for the coinbase) */
  connectBlock(block: bitcoin.Block, height: number, spent: Coin[][]): void;
  /** the block at `height` is being disconnected (undo what connectBlock did) */
  disconnectBlock(height: number): void;
}

export interface ChainParams {
  /** what getblockchaininfo's "chain" says */
  chain: 'regtest';
  network: bitcoin.Network;
  genesis: bitcoin.Block;
  /** marker of blocks.dat records */
  magic: number;
  /** nVersion of the blocks the devnet mines */
  blockVersion: number;
  minRelaySatPerKvB: bigint;
  /** the block codec: full block bytes, header bytes as Electrum's blockchain.block.header serves them */
  encodeBlock(block: bitcoin.Block): Buffer;
  decodeBlock(raw: Uint8Array): bitcoin.Block;
  encodeHeader(block: bitcoin.Block): Buffer;
  rules?: ChainRules;
}

const bitcoinCodec = {
  encodeBlock: (block: bitcoin.Block) => Buffer.from(block.toBuffer()),
  decodeBlock: (raw: Uint8Array) => bitcoin.Block.fromBuffer(Buffer.from(raw)),
  encodeHeader: (block: bitcoin.Block) => Buffer.from(block.toBuffer(true)),
};

/**
 * Merge-mined blocks: header (80) ‖ AuxPoW ‖ transactions, as Namecoin Core stores and serves them; the header
 * Electrum serves is the 80 bytes plus the AuxPoW (294 bytes here). The AuxPoW is a function of the block hash
 * (lib/chain's createAuxPow mines the parent deterministically), so it is rebuilt, and cached, rather than kept
 * beside the bitcoinjs Block. The block's own hash also meets the target (the miner in consensus.ts does that);
 * Namecoin Core ignores it for auxpow blocks.
 */
function auxpowCodec() {
  const cache = new Map<string, Buffer>();
  const header = (block: bitcoin.Block): Buffer => {
    const raw = Buffer.from(block.toBuffer(true));
    if (!(block.version & VERSION_AUXPOW)) return raw;
    const id = block.getId();
    let aux = cache.get(id);
    if (!aux) {
      aux = createAuxPow(raw);
      if (cache.size > 10_000) cache.clear();
      cache.set(id, aux);
    }
    return Buffer.concat([raw, aux]);
  };
  return {
    encodeHeader: header,
    encodeBlock: (block: bitcoin.Block) => Buffer.concat([header(block), Buffer.from(block.toBuffer()).subarray(80)]),
    decodeBlock: (raw: Uint8Array) => {
      const buf = Buffer.from(raw);
      const r = new Reader(buf, 80);
      if (buf.readUInt32LE(0) & VERSION_AUXPOW) parseAuxPow(r);
      return bitcoin.Block.fromBuffer(Buffer.concat([buf.subarray(0, 80), buf.subarray(r.pos)]));
    },
  };
}

export const BITCOIN_REGTEST: ChainParams = {
  chain: 'regtest',
  network: NETWORK,
  genesis: GENESIS,
  magic: MAGIC,
  blockVersion: 0x20000000,
  minRelaySatPerKvB: MIN_RELAY_SAT_PER_KVB,
  ...bitcoinCodec,
};

/** Namecoin's regtest network (chainparams.cpp): bech32 ncrt, P2PKH 0x6f, P2SH 0xc4, WIF 0xef. */
export const NAMECOIN_REGTEST_NETWORK: bitcoin.Network = {
  messagePrefix: '\x19Namecoin Signed Message:\n',
  bech32: 'ncrt',
  bip32: { public: 0x043587cf, private: 0x04358394 },
  pubKeyHash: 0x6f,
  scriptHash: 0xc4,
  wif: 0xef,
};

/**
 * Namecoin regtest: Bitcoin's regtest genesis and magic (Namecoin's regtest reuses both), merge-mined blocks
 * (version 0x00010104: chain id 1, the AuxPoW bit, base version 4) as Namecoin Core's regtest miner makes
 * them, a minimum relay fee of 0.001 NMC/kvB, and the name rules.
 */
export function namecoinRegtest(rules: ChainRules): ChainParams {
  return {
    chain: 'regtest',
    network: NAMECOIN_REGTEST_NETWORK,
    genesis: GENESIS,
    magic: MAGIC,
    blockVersion: 0x00010104,
    minRelaySatPerKvB: 100_000n,
    ...auxpowCodec(),
    rules,
  };
}
