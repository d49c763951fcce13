// Watch-only extended public key → one native-segwit address per file.
// We accept the legacy BIP32 prefixes (xpub/tpub) and the SLIP-132 BIP84 ones (zpub/vpub): the key
// material is identical, only the 4 version bytes differ, so we read them ourselves and build the node
// with bip32's fromPublicKey. Everything else is refused with one line saying what to do instead.

import crypto from 'crypto';
import { BIP32Factory, type BIP32Interface } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { address as bjsAddress, type Network } from 'bitcoinjs-lib';
import type { NetworkName } from '../config';
import { isMainnet, networkOf } from './networks';

const bip32 = BIP32Factory(ecc);

type Kind = 'xpub' | 'zpub' | 'tpub' | 'vpub';
interface Version { prefix: string; mainnet: boolean; kind?: Kind; priv?: boolean; why?: string }

// SLIP-132 registry (https://github.com/satoshilabs/slips/blob/master/slip-0132.md), Bitcoin rows.
const VERSIONS: Record<number, Version> = {
  0x0488b21e: { prefix: 'xpub', mainnet: true, kind: 'xpub' },
  0x04b24746: { prefix: 'zpub', mainnet: true, kind: 'zpub' },
  0x043587cf: { prefix: 'tpub', mainnet: false, kind: 'tpub' },
  0x045f1cf6: { prefix: 'vpub', mainnet: false, kind: 'vpub' },
  0x049d7cb2: { prefix: 'ypub', mainnet: true, why: 'nested segwit (BIP49)' },
  0x044a5262: { prefix: 'upub', mainnet: false, why: 'nested segwit (BIP49)' },
  0x0295b43f: { prefix: 'Ypub', mainnet: true, why: 'multisig' },
  0x02aa7ed3: { prefix: 'Zpub', mainnet: true, why: 'multisig' },
  0x024289ef: { prefix: 'Upub', mainnet: false, why: 'multisig' },
  0x02575483: { prefix: 'Vpub', mainnet: false, why: 'multisig' },
  0x0488ade4: { prefix: 'xprv', mainnet: true, priv: true },
  0x04b2430c: { prefix: 'zprv', mainnet: true, priv: true },
  0x04358394: { prefix: 'tprv', mainnet: false, priv: true },
  0x045f18bc: { prefix: 'vprv', mainnet: false, priv: true },
  0x049d7878: { prefix: 'yprv', mainnet: true, priv: true },
  0x044a4e28: { prefix: 'uprv', mainnet: false, priv: true },
  0x0295b005: { prefix: 'Yprv', mainnet: true, priv: true },
  0x02aa7a99: { prefix: 'Zprv', mainnet: true, priv: true },
  0x024285b5: { prefix: 'Uprv', mainnet: false, priv: true },
  0x02575048: { prefix: 'Vprv', mainnet: false, priv: true },
};

export interface ParsedXpub {
  network: Network;
  networkName: NetworkName;
  /** the prefix the operator gave */
  kind: Kind;
  depth: number;
  /** things worth a log line at start-up, never fatal */
  warnings: string[];
  /** the account key, and its receive branch (…/0) cached: every file address derives from it */
  account: BIP32Interface;
  receive: BIP32Interface;
}

export interface FileAddress {
  address: string;
  /** Electrum scripthash: sha256(output script), byte-reversed, hex */
  scriptHash: string;
  /** the output script (scriptPubKey) */
  script: Uint8Array;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function base58checkDecode(text: string): Buffer | undefined {
  if (!/^[1-9A-HJ-NP-Za-km-z]+$/.test(text)) return undefined;
  let n = 0n;
  for (const c of text) n = n * 58n + BigInt(B58.indexOf(c));
  const hex = n === 0n ? '' : n.toString(16);
  const body = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
  const zeros = text.length - text.replace(/^1+/, '').length;
  const bytes = Buffer.concat([Buffer.alloc(zeros), body]);
  if (bytes.length < 5) return undefined;
  const payload = bytes.subarray(0, -4);
  const sum = crypto.createHash('sha256').update(crypto.createHash('sha256').update(payload).digest()).digest();
  return sum.subarray(0, 4).equals(bytes.subarray(-4)) ? payload : undefined;
}

/** Parses the operator's watch-only key for `networkName`. Throws an Error with a one-line message. */
export function parseXpub(text: string, networkName: NetworkName): ParsedXpub {
  const network = networkOf(networkName);
  const trimmed = text.trim();
  const shown = trimmed.length > 12 ? trimmed.slice(0, 8) + '…' : trimmed || '(empty)';
  const raw = base58checkDecode(trimmed);
  if (!raw) throw new Error(`xpub ${shown}: not a base58check string (a typo or a truncated copy?)`);
  if (raw.length !== 78) throw new Error(`xpub ${shown}: wrong length (${raw.length} bytes; an extended key has 78)`);
  const version = VERSIONS[raw.readUInt32BE(0)];
  if (!version) throw new Error(`xpub ${shown}: unknown version bytes 0x${raw.subarray(0, 4).toString('hex')}; give an xpub, zpub, tpub or vpub`);
  if (version.priv || raw[45] === 0) {
    throw new Error(`xpub ${shown}: this is a private key (${version.prefix}); never give bitdrop a private key — export the watch-only ${version.mainnet ? 'zpub/xpub' : 'vpub/tpub'} instead`);
  }
  if (version.mainnet !== isMainnet(networkName)) {
    throw new Error(`xpub ${shown}: this is a ${version.mainnet ? 'mainnet' : 'testnet/regtest'} ${version.prefix} but --network is ${networkName}`);
  }
  if (!version.kind) {
    throw new Error(`xpub ${shown}: a ${version.prefix} is for ${version.why} addresses; bitdrop pays to native segwit (BIP84) — export the account's ${version.mainnet ? 'zpub' : 'vpub'}`);
  }
  const depth = raw[4];
  const chainCode = raw.subarray(13, 45);
  const publicKey = raw.subarray(45, 78);
  let account: BIP32Interface;
  try {
    account = bip32.fromPublicKey(publicKey, chainCode, network);
  } catch {
    throw new Error(`xpub ${shown}: the key inside is not a valid secp256k1 public key`);
  }
  const warnings: string[] = [];
  if (depth !== 3) {
    warnings.push(`xpub has depth ${depth}; an account key (m/84'/coin'/account') has depth 3 — check that your wallet watches <this key>/0/i`);
  }
  if (version.kind === 'xpub' || version.kind === 'tpub') {
    warnings.push(`an ${version.kind} does not say its script type; bitdrop derives native segwit (p2wpkh) addresses — your wallet must use a wpkh() descriptor for this key`);
  }
  return { network, networkName, kind: version.kind, depth, warnings, account, receive: account.derive(0) };
}

/** Electrum's key for a script: sha256 of the output script, byte-reversed, as hex. */
export function scriptHashOf(script: Uint8Array): string {
  return Buffer.from(crypto.createHash('sha256').update(script).digest()).reverse().toString('hex');
}

/** The scripthash of an address on `network` (any address type bitcoinjs understands). */
export function addressScriptHash(addr: string, network: Network): string {
  return scriptHashOf(bjsAddress.toOutputScript(addr, network));
}

type Point = typeof secp256k1.Point.BASE;
const { Point } = secp256k1;
const N = Point.Fn.ORDER;
/** the receive branch's public point, parsed once per key (the ParsedXpub itself stays plain data) */
const branchPoints = new WeakMap<BIP32Interface, Point>();

/**
 * libsecp256k1 through the `secp256k1` package's native binding (its prebuilt linux-x64 binary; no build
 * at install), when it loads: a child key in ~50 µs against 0.33–0.5 ms with @noble/curves' bigint
 * arithmetic, which is what bounds paid uploads once the address pool is empty (BENCHMARKS.md). The
 * package's own fallback is elliptic, slower than noble, so where the binding does not load we use noble.
 */
const native: typeof import('secp256k1/bindings') | undefined = (() => {
  try {
    return require('secp256k1/bindings') as typeof import('secp256k1/bindings');
  } catch {
    return undefined;
  }
})();

/** IL of BIP32 CKDpub for the receive branch's child `index` (HMAC-SHA512 by node's crypto) */
function tweak(branch: BIP32Interface, index: number): Buffer {
  const data = Buffer.allocUnsafe(37);
  data.set(branch.publicKey, 0);
  data.writeUInt32BE(index, 33);
  return crypto.createHmac('sha512', branch.chainCode).update(data).digest().subarray(0, 32);
}

/**
 * BIP32 CKDpub of the receive branch at `index`: P + IL·G with libsecp256k1 (above) or with @noble/curves
 * directly. Both are several times faster than bip32's derive (which goes through the ecc interface and its
 * checks). noble's `multiplyUnsafe` is not constant-time, which is fine here: everything derives from a
 * public key. The two cases BIP32 calls invalid (IL ≥ n or IL = 0, or a child at infinity; probability
 * ~2^-127) go to bip32's own derive, so the result is what a wallet derives.
 */
function byLibsecp256k1(parsed: ParsedXpub, index: number): Uint8Array {
  try {
    return native!.publicKeyTweakAdd(parsed.receive.publicKey, tweak(parsed.receive, index), true);
  } catch {
    return parsed.receive.derive(index).publicKey; // an invalid IL or child: bip32 skips as BIP32 says
  }
}

function byNoble(parsed: ParsedXpub, index: number): Uint8Array {
  const branch = parsed.receive;
  let parent = branchPoints.get(branch);
  if (!parent) {
    parent = Point.fromBytes(branch.publicKey);
    branchPoints.set(branch, parent);
  }
  const il = BigInt('0x' + tweak(branch, index).toString('hex'));
  if (il === 0n || il >= N) return branch.derive(index).publicKey;
  const child = parent.add(Point.BASE.multiplyUnsafe(il));
  if (child.is0()) return branch.derive(index).publicKey;
  return child.toBytes(true);
}

/** The child-key implementations available here, the one in use first (tests check each against bip32). */
export const childKeyEngines: { name: string; child: (parsed: ParsedXpub, index: number) => Uint8Array }[] = [
  ...(native ? [{ name: 'libsecp256k1', child: byLibsecp256k1 }] : []),
  { name: '@noble/curves', child: byNoble },
];
/** which implementation derives child keys here */
export const derivationEngine = childKeyEngines[0].name;
const childPublicKey = childKeyEngines[0].child;

/** The p2wpkh address at <account>/0/index — one per file; index is the file's sequence number. */
export function deriveFileAddress(parsed: ParsedXpub, index: number): FileAddress {
  if (!Number.isSafeInteger(index) || index < 0 || index >= 0x80000000) {
    throw new Error(`address index ${index} is out of range (0 … 2^31-1, non-hardened)`);
  }
  const pubkey = childPublicKey(parsed, index);
  const hash = crypto.createHash('ripemd160').update(crypto.createHash('sha256').update(pubkey).digest()).digest();
  // The p2wpkh output (OP_0 PUSH20 <hash>) and its bech32 address (witness version 0), built directly:
  // payments.p2wpkh checks and lazily re-derives every field, 38 µs of a 140 µs derivation (measured),
  // for the same bytes (test/payments-xpub checks them against it over the whole index range).
  const script = Buffer.allocUnsafe(22);
  script[0] = 0x00;
  script[1] = 0x14;
  hash.copy(script, 2);
  return { address: bjsAddress.toBech32(hash, 0, parsed.network.bech32), scriptHash: scriptHashOf(script), script };
}

/**
 * What a pool of addresses derived ahead was derived from: the network, the receive branch's key and chain
 * code, and the script type. A pool with another fingerprint must never be used (lib/payments/address-pool).
 */
export function xpubFingerprint(parsed: ParsedXpub): string {
  return crypto.createHash('sha256')
    .update(`bitdrop address pool: p2wpkh <key>/0/i on ${parsed.networkName}\0`)
    .update(parsed.receive.publicKey)
    .update(parsed.receive.chainCode)
    .digest('hex').slice(0, 32);
}
