// Coin networks as plain bitcoinjs-lib `Network` data (the same shape bitcoinjs and bip32 take).
// `bip32` holds the BIP32 version bytes of the *legacy* serialisation (xpub/tpub); SLIP-132 variants
// (zpub/vpub) are mapped onto these in xpub.ts. Bitcoin values are Bitcoin Core's chainparams;
// Namecoin values come from Namecoin Core's chainparams (see /work/shared/notes/namecoin-rpc.md).

import type { Network } from 'bitcoinjs-lib';
import type { NetworkName } from '../config';

const BITCOIN_MESSAGE = '\x18Bitcoin Signed Message:\n';
const NAMECOIN_MESSAGE = '\x19Namecoin Signed Message:\n';

const XPUB = { public: 0x0488b21e, private: 0x0488ade4 };
const TPUB = { public: 0x043587cf, private: 0x04358394 };

export const NETWORKS: Readonly<Record<NetworkName, Network>> = {
  bitcoin: { messagePrefix: BITCOIN_MESSAGE, bech32: 'bc', bip32: XPUB, pubKeyHash: 0x00, scriptHash: 0x05, wif: 0x80 },
  testnet: { messagePrefix: BITCOIN_MESSAGE, bech32: 'tb', bip32: TPUB, pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef },
  // signet shares testnet's address and key encodings; only the chain differs
  signet: { messagePrefix: BITCOIN_MESSAGE, bech32: 'tb', bip32: TPUB, pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef },
  regtest: { messagePrefix: BITCOIN_MESSAGE, bech32: 'bcrt', bip32: TPUB, pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef },
  namecoin: { messagePrefix: NAMECOIN_MESSAGE, bech32: 'nc', bip32: XPUB, pubKeyHash: 0x34, scriptHash: 0x0d, wif: 0xb4 },
  'namecoin-regtest': { messagePrefix: NAMECOIN_MESSAGE, bech32: 'ncrt', bip32: TPUB, pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef },
};

/** Whether a network's keys are "mainnet" (xpub) or "test" (tpub) keys — the only thing an xpub can tell us. */
export const isMainnet = (name: NetworkName) => name === 'bitcoin' || name === 'namecoin';

export function networkOf(name: NetworkName): Network {
  const n = NETWORKS[name];
  if (!n) throw new Error(`unknown network "${name}" (try ${Object.keys(NETWORKS).join(', ')})`);
  return n;
}
