// Keys and addresses: the operator pastes a watch-only key, each file gets its own address.
import t from 'tap';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import { address as bjsAddress, payments } from 'bitcoinjs-lib';
import { parseXpub, deriveFileAddress, scriptHashOf, addressScriptHash, childKeyEngines, derivationEngine } from '../lib/payments/xpub';
import { NETWORKS } from '../lib/payments/networks';

const bip32 = BIP32Factory(ecc);

// BIP84 test vectors (https://github.com/bitcoin/bips/blob/master/bip-0084.mediawiki#test-vectors),
// mnemonic "abandon abandon … about", account 0 = m/84'/0'/0'.
const ZPUB = 'zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs';
const ZPRV = 'zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm1yYNZKEm7z6qUWCroSQnE';
const FIRST = 'bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu';
const SECOND = 'bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g';

// the same account key serialised with other version bytes
const seed = Buffer.alloc(32, 7);
const keyAs = (pub: number, priv: number, depth3 = true) => {
  const root = bip32.fromSeed(seed, { wif: 0x80, bip32: { public: pub, private: priv } });
  return depth3 ? root.derivePath("m/84'/1'/0'") : root;
};

t.test('BIP84 vectors: zpub → bc1q… at 0/0 and 0/1', async (t) => {
  const k = parseXpub(ZPUB, 'bitcoin');
  t.equal(k.kind, 'zpub');
  t.equal(k.depth, 3);
  t.same(k.warnings, []);
  const a0 = deriveFileAddress(k, 0);
  t.equal(a0.address, FIRST);
  t.equal(Buffer.from(a0.script).toString('hex'), '0014c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2');
  t.equal(a0.scriptHash, scriptHashOf(a0.script));
  t.equal(a0.scriptHash, addressScriptHash(FIRST, NETWORKS.bitcoin));
  t.match(a0.scriptHash, /^[0-9a-f]{64}$/);
  t.equal(deriveFileAddress(k, 1).address, SECOND);
});

t.test('the same key as an xpub gives the same addresses, with a script-type warning', async (t) => {
  const raw = bip32.fromBase58(ZPRV, { wif: 0x80, bip32: { public: 0x04b24746, private: 0x04b2430c } }).neutered();
  const asXpub = bip32.fromPublicKey(raw.publicKey, raw.chainCode).toBase58(); // depth 0 now
  const k = parseXpub(asXpub, 'bitcoin');
  t.equal(deriveFileAddress(k, 0).address, FIRST);
  t.equal(k.warnings.length, 2, 'depth 0 and xpub-does-not-say-p2wpkh');
  t.match(k.warnings[0], /depth 0/);
});

t.test('vpub and tpub on regtest/testnet/signet; scripthash of a bcrt1 address', async (t) => {
  const vpub = keyAs(0x045f1cf6, 0x045f18bc).neutered().toBase58();
  const tpub = keyAs(0x043587cf, 0x04358394).neutered().toBase58();
  t.match(vpub, /^vpub/);
  t.match(tpub, /^tpub/);
  const r = deriveFileAddress(parseXpub(vpub, 'regtest'), 5);
  t.match(r.address, /^bcrt1q/);
  t.equal(deriveFileAddress(parseXpub(tpub, 'regtest'), 5).address, r.address, 'same key, same address');
  t.match(deriveFileAddress(parseXpub(vpub, 'testnet'), 5).address, /^tb1q/);
  t.match(deriveFileAddress(parseXpub(vpub, 'signet'), 5).address, /^tb1q/);
  t.equal(r.scriptHash, addressScriptHash(r.address, NETWORKS.regtest));
});

t.test('namecoin: nc1 addresses for the same key; ncrt1 on namecoin-regtest', async (t) => {
  const k = parseXpub(ZPUB, 'namecoin');
  const a = deriveFileAddress(k, 0);
  t.match(a.address, /^nc1q/);
  const bc = bjsAddress.fromBech32(FIRST);
  t.equal(a.address, bjsAddress.toBech32(bc.data, 0, 'nc'), 'same witness program as the BIP84 vector');
  t.same(a.script, deriveFileAddress(parseXpub(ZPUB, 'bitcoin'), 0).script);
  const vpub = keyAs(0x045f1cf6, 0x045f18bc).neutered().toBase58();
  t.match(deriveFileAddress(parseXpub(vpub, 'namecoin-regtest'), 0).address, /^ncrt1q/);
  t.equal(NETWORKS.namecoin.pubKeyHash, 0x34);
  t.equal(NETWORKS['namecoin-regtest'].bech32, 'ncrt');
  t.equal(NETWORKS.regtest.bech32, 'bcrt');
});

t.test('every bad key is refused with one line that says what to do', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['', 'bitcoin', /not a base58check string/],
    ['zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYt', 'bitcoin', /not a base58check string/],
    ['0OIl', 'bitcoin', /not a base58check string/],
    ['1111111111111111111114oLvT2', 'bitcoin', /wrong length \(21 bytes; an extended key has 78\)/], // an address pasted by mistake
    [ZPRV, 'bitcoin', /this is a private key \(zprv\); never give bitdrop a private key/],
    [keyAs(0x04358394 + 0, 0x04358394).toBase58(), 'regtest', /private key \(tprv\)/],
    [ZPUB, 'regtest', /this is a mainnet zpub but --network is regtest/],
    [keyAs(0x045f1cf6, 0x045f18bc).neutered().toBase58(), 'bitcoin', /this is a testnet\/regtest vpub but --network is bitcoin/],
    [keyAs(0x049d7cb2, 0x049d7878).neutered().toBase58(), 'bitcoin', /ypub is for nested segwit \(BIP49\).*export the account's zpub/],
    [keyAs(0x01020304, 0x04358394).neutered().toBase58(), 'bitcoin', /unknown version bytes 0x01020304/],
  ];
  for (const [text, net, re] of cases) {
    const err = (() => {
      try {
        parseXpub(text, net as 'bitcoin');
      } catch (e) {
        return e as Error;
      }
    })();
    t.ok(err instanceof Error, `refused: ${re}`);
    t.match(err?.message, re);
    t.notMatch(err?.message, /\n/, 'one line');
  }
});

t.test('address index must be a non-hardened whole number', async (t) => {
  const k = parseXpub(ZPUB, 'bitcoin');
  t.throws(() => deriveFileAddress(k, -1), /out of range/);
  t.throws(() => deriveFileAddress(k, 2 ** 31), /out of range/);
  t.throws(() => deriveFileAddress(k, 1.5), /out of range/);
  t.match(deriveFileAddress(k, 2 ** 31 - 1).address, /^bc1q/);
});

t.test('each fast derivation (libsecp256k1, @noble/curves) gives what bip32 + bitcoinjs give, over the whole index range', async (t) => {
  // The prebuilt libsecp256k1 binding ships for linux-x64: there it must be the one in use, never a silent fallback.
  if (process.platform === 'linux' && process.arch === 'x64') t.equal(derivationEngine, 'libsecp256k1', 'libsecp256k1 derives here');
  t.same(childKeyEngines.map((e) => e.name).slice(-1), ['@noble/curves'], 'noble is always there as the fallback');
  // 300 indices per key: 0, 2^31-1, and the rest spread over the range (a fixed stride, so runs repeat)
  const indices = [0, 1, 2 ** 31 - 1, ...Array.from({ length: 297 }, (_, k) => Math.floor(((k + 1) * (2 ** 31 - 2)) / 298))];
  const keys: Array<[string, 'bitcoin' | 'regtest' | 'testnet' | 'namecoin' | 'namecoin-regtest']> = [
    [keyAs(0x0488b21e, 0x0488ade4).neutered().toBase58(), 'bitcoin'],
    [ZPUB, 'bitcoin'],
    [keyAs(0x043587cf, 0x04358394).neutered().toBase58(), 'testnet'],
    [keyAs(0x045f1cf6, 0x045f18bc).neutered().toBase58(), 'regtest'],
    [keyAs(0x0488b21e, 0x0488ade4).neutered().toBase58(), 'namecoin'],
    [keyAs(0x045f1cf6, 0x045f18bc).neutered().toBase58(), 'namecoin-regtest'],
  ];
  for (const [text, net] of keys) {
    const k = parseXpub(text, net);
    const want = indices.map((i) => Buffer.from(k.receive.derive(i).publicKey));
    for (const engine of childKeyEngines) {
      let same = 0;
      for (const [n, i] of indices.entries()) {
        if (Buffer.from(engine.child(k, i)).equals(want[n])) same++;
        else t.fail(`${engine.name}: ${text.slice(0, 4)} index ${i} differs from bip32`);
      }
      t.equal(same, indices.length, `${engine.name}: ${text.slice(0, 4)} on ${net}, ${same} child keys as bip32 derives them`);
    }
    let same = 0;
    for (const [n, i] of indices.entries()) {
      const pay = payments.p2wpkh({ pubkey: want[n], network: NETWORKS[net] });
      const fast = deriveFileAddress(k, i);
      if (fast.address === pay.address && Buffer.from(fast.script).equals(Buffer.from(pay.output!))) same++;
      else t.fail(`${text.slice(0, 4)} index ${i}: ${fast.address} ≠ ${pay.address}`);
    }
    t.equal(same, indices.length, `${text.slice(0, 4)} on ${net}: ${same} addresses as bip32 + bitcoinjs give them`);
  }
});
