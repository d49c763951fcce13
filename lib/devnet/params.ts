// What makes one devnet chain differ from another: its network (address prefixes), genesis, block version,
// relay policy, the block codec (the ONE place block and header bytes are written and read, so a merge-mined
// AuxPoW header format replaces these three functions and nothing else), and extra consensus rules
// (Namecoin's name operations). The Bitcoin regtest chain has none; the Namecoin regtest chain adds them.

import * as bitcoin from 'bitcoinjs-lib';
import { GENESIS, MAGIC, MIN_RELAY_SAT_PER_KVB, NETWORK } from './consensus';
import type { Coin, TxRules } from './validation';

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
 * Namecoin regtest: Bitcoin's regtest genesis and magic (Namecoin's regtest reuses both), chain id 1 in the
 * block version (0x0001 << 16 | 4), a minimum relay fee of 0.001 NMC/kvB, and the name rules.
 * Blocks are plain 80-byte-header blocks for now; merge-mined (AuxPoW) blocks replace the codec here.
 */
export function namecoinRegtest(rules: ChainRules): ChainParams {
  return {
    chain: 'regtest',
    network: NAMECOIN_REGTEST_NETWORK,
    genesis: GENESIS,
    magic: MAGIC,
    blockVersion: 0x00010004,
    minRelaySatPerKvB: 100_000n,
    ...bitcoinCodec,
    rules,
  };
}
