// The operating wallet's key: one secp256k1 key made on first use in <dataDir>/wallet-key (mode 0600, created
// exclusively so two processes never make two keys), one native-segwit (p2wpkh) address, change back to it.
// The key is read here and handed to the signer only: it is never logged, printed or sent anywhere.
// It is separate from the operator's revenue xpub, which stays watch-only.

import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from '@bitcoinerlab/secp256k1';
import { ECPairFactory, type ECPairInterface } from 'ecpair';
import type { NetworkName } from '../config';
import { networkOf } from '../payments/networks';
import { scriptHashOf } from '../payments/xpub';

const ECPair = ECPairFactory(ecc);

export const walletKeyPath = (dataDir: string) => path.join(dataDir, 'wallet-key');

export interface WalletKey {
  network: NetworkName;
  /** the signer (private key inside: never log this object) */
  signer: ECPairInterface;
  address: string;
  script: Uint8Array;
  /** Electrum scripthash of the address */
  scriptHash: string;
}

interface KeyFile { network: NetworkName; wif: string; created: string }

/** Reads the wallet key of `dataDir`, making it first when there is none. */
export function loadWalletKey(dataDir: string, network: NetworkName): WalletKey {
  const file = walletKeyPath(dataDir);
  const net = networkOf(network);
  let parsed: KeyFile | undefined;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as KeyFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`the wallet key ${file} is unreadable: ${(err as Error).message}`);
  }
  if (!parsed) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const made = ECPair.makeRandom({ network: net });
    const body: KeyFile = { network, wif: made.toWIF(), created: new Date().toISOString() };
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, JSON.stringify(body) + '\n');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      parsed = body;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as KeyFile; // another process made it first
    }
  }
  if (parsed.network !== network) {
    throw new Error(`the wallet key ${file} is for ${parsed.network}, but this bitdrop runs on ${network}; move it away to make a new one (spend its coins first)`);
  }
  const signer = ECPair.fromWIF(parsed.wif, net);
  const script = bitcoin.payments.p2wpkh({ pubkey: signer.publicKey, network: net }).output!;
  return { network, signer, script, address: bitcoin.address.fromOutputScript(script, net), scriptHash: scriptHashOf(script) };
}
