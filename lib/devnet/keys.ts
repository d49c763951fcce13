// The devnet's two wallets, generated once per directory and kept in wallet.json (mode 0600):
//  - the faucet: one regtest key whose p2wpkh address receives the pre-mine and, by default, every block
//    reward, so tests always have mature coins to pay with;
//  - the operator's test wallet: a BIP84 account (m/84'/1'/0') whose account-level public key is what a
//    daemon started without configuration watches; file i is paid at <xpub>/0/i (native segwit p2wpkh).
// Both extended-key forms are stored: tpub/tprv (BIP32 testnet versions) and vpub/vprv (SLIP-132 BIP84
// testnet versions, what Electrum shows and what `electrum restore` accepts).

import crypto from 'crypto';
import fs from 'fs';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from '@bitcoinerlab/secp256k1';
import { BIP32Factory } from 'bip32';
import { ECPairFactory } from 'ecpair';
import { NETWORK } from './consensus';
import { writeFileAtomic } from './layout';

export const ECPair = ECPairFactory(ecc);
export const bip32 = BIP32Factory(ecc);

export const ACCOUNT_PATH = "m/84'/1'/0'";
const VPUB_NETWORK = { ...NETWORK, bip32: { public: 0x045f1cf6, private: 0x045f18bc } };

export interface DevnetKeys {
  network: 'regtest';
  faucet: { wif: string; address: string };
  operator: { seed: string; path: string; tpub: string; tprv: string; vpub: string; vprv: string };
}

export const p2wpkhAddress = (pubkey: Uint8Array) => bitcoin.payments.p2wpkh({ pubkey, network: NETWORK }).address!;

function generate(): DevnetKeys {
  const faucet = ECPair.makeRandom({ network: NETWORK });
  const seed = crypto.randomBytes(32);
  const t = bip32.fromSeed(seed, NETWORK).derivePath(ACCOUNT_PATH);
  const v = bip32.fromSeed(seed, VPUB_NETWORK).derivePath(ACCOUNT_PATH);
  return {
    network: 'regtest',
    faucet: { wif: faucet.toWIF(), address: p2wpkhAddress(faucet.publicKey) },
    operator: {
      seed: seed.toString('hex'),
      path: ACCOUNT_PATH,
      tpub: t.neutered().toBase58(),
      tprv: t.toBase58(),
      vpub: v.neutered().toBase58(),
      vprv: v.toBase58(),
    },
  };
}

export function loadOrCreateKeys(file: string): DevnetKeys {
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as DevnetKeys;
  const keys = generate();
  writeFileAtomic(file, JSON.stringify(keys, null, 2) + '\n', 0o600);
  return keys;
}

export function readKeys(file: string): DevnetKeys {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as DevnetKeys;
  } catch (err) {
    throw new Error(`cannot read devnet wallet ${file}: ${(err as Error).message} (is a devnet open in that directory?)`);
  }
}

export const faucetKey = (keys: DevnetKeys) => ECPair.fromWIF(keys.faucet.wif, NETWORK);

/** The operator wallet's receive address i, the same one bitdrop derives at <xpub>/0/i. */
export function operatorAddress(keys: DevnetKeys, index: number, change = 0): string {
  const account = bip32.fromBase58(keys.operator.tpub, NETWORK);
  return p2wpkhAddress(account.derive(change).derive(index).publicKey);
}

/** The private key of operator address i, so tests can spend what a file's address received. */
export function operatorKey(keys: DevnetKeys, index: number, change = 0) {
  const account = bip32.fromBase58(keys.operator.tprv, NETWORK);
  return account.derive(change).derive(index);
}
