// Consensus parameters of each network, as plain data (Bitcoin Core's and Namecoin Core's chainparams.cpp).
// `anchor` is where our header chain starts: the genesis block, or for Bitcoin mainnet/testnet the last
// checkpoint shipped with Electrum 4.3.4 (checkpoints.json: the hash of the last block of a 2016-block
// period), so a new install downloads ~200k headers instead of ~900k; for Namecoin mainnet the merkle root
// of blocks 0..558431 that Electrum-NMC ships (full AuxPoW headers from genesis would be ~400 MB).

import type { NetworkName } from '../config';

export interface Anchor {
  height: number;
  /** display-order hex; absent when only `cpRoot` is known (learnt, and kept, at the first sync) */
  hash?: string;
  /**
   * ElectrumX checkpoint: the merkle root (display hex) over the hashes of blocks 0..height, as
   * `blockchain.block.header(height, cp_height=height)` proves it; Electrum-NMC's VERIFICATION_BLOCK_MERKLE_ROOT
   */
  cpRoot?: string;
  /** bits and time of the anchor block, when known (genesis): the first blocks' difficulty rules need them */
  bits?: number;
  time?: number;
}

export interface ChainParams {
  network: NetworkName;
  anchor: Anchor;
  powLimit: bigint;
  interval: number;
  targetTimespan: number;
  targetSpacing: number;
  allowMinDifficulty: boolean;
  noRetargeting: boolean;
  /** Namecoin: merge mining */
  auxpow?: { chainId: number; startHeight: number; strictChainId: boolean };
  /** Namecoin: names expire this many blocks after their last update */
  nameExpiry?: number;
}

const MAIN_LIMIT = (1n << 224n) - 1n; // 0x00000000ffff…ff
const REGTEST_LIMIT = (1n << 255n) - 1n; // 0x7fff…ff
const SIGNET_LIMIT = 0x00000377aen << 216n;
const BITCOIN = { interval: 2016, targetTimespan: 14 * 24 * 3600, targetSpacing: 600 };

const REGTEST_GENESIS: Anchor = { height: 0, hash: '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206', bits: 0x207fffff, time: 1296688602 };

export const CHAIN_PARAMS: Readonly<Record<NetworkName, ChainParams>> = {
  bitcoin: {
    network: 'bitcoin',
    ...BITCOIN,
    // Electrum 4.3.4 checkpoints.json, last entry: block 747935; its period's target was 0x9fd7e…, bits 0x1709fd7e
    anchor: { height: 747_935, hash: '00000000000000000001095f6deb27964f80c74f38217a32044c20265e0f40e3', bits: 0x1709fd7e },
    powLimit: MAIN_LIMIT,
    allowMinDifficulty: false,
    noRetargeting: false,
  },
  testnet: {
    network: 'testnet',
    ...BITCOIN,
    // Electrum 4.3.4 checkpoints_testnet.json, last entry: block 2338559 (Electrum keeps no testnet targets)
    anchor: { height: 2_338_559, hash: '0000000000000ae07f7535851cb685259a447d1ad5d3206fc4ee3693bb7421a3' },
    powLimit: MAIN_LIMIT,
    allowMinDifficulty: true,
    noRetargeting: false,
  },
  signet: {
    network: 'signet',
    ...BITCOIN,
    anchor: { height: 0, hash: '00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6', bits: 0x1e0377ae, time: 1598918400 },
    powLimit: SIGNET_LIMIT,
    allowMinDifficulty: false,
    noRetargeting: false,
  },
  regtest: {
    network: 'regtest',
    ...BITCOIN,
    anchor: REGTEST_GENESIS,
    powLimit: REGTEST_LIMIT,
    allowMinDifficulty: true,
    noRetargeting: true,
  },
  namecoin: {
    network: 'namecoin',
    ...BITCOIN,
    // Electrum-NMC's verification block (constants.py): the headers of blocks 0..558431 hash to this merkle root
    anchor: { height: 558_431, cpRoot: '4c6b8a34ed0ab02ef9486d0f57de24ee367e4c1735c20f7b3a79927b62310fc3' },
    powLimit: MAIN_LIMIT,
    allowMinDifficulty: false,
    noRetargeting: false,
    auxpow: { chainId: 1, startHeight: 19_200, strictChainId: true },
    nameExpiry: 36_000,
  },
  'namecoin-regtest': {
    network: 'namecoin-regtest',
    ...BITCOIN,
    anchor: REGTEST_GENESIS,
    powLimit: REGTEST_LIMIT,
    allowMinDifficulty: true,
    noRetargeting: true,
    auxpow: { chainId: 1, startHeight: 0, strictChainId: true },
    nameExpiry: 30,
  },
};

export function chainParams(network: NetworkName): ChainParams {
  const p = CHAIN_PARAMS[network];
  if (!p) throw new Error(`no chain parameters for network "${network}"`);
  return p;
}
