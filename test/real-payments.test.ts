// Payments against the real servers: a file paid from Namecoin Core's wallet, credited through ElectrumX 1.20
// with its merge-mined (AuxPoW) headers and the merkle proof checked; ElectrumX stopped during a payment and
// restarted; a reorg (invalidateblock) replacing the paying block. One rig for the file (BITDROP_TEST_RIG).

import t from 'tap';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import crypto from 'crypto';
import { curl, curlStatus, randomFile, tmpDir } from './helpers/daemon';
import { startPaidNode, until, MiB, type PaidNode } from './helpers/paid-node';
import { rigOrSkip, startRig } from './helpers/rig';

const script = rigOrSkip(t, 'payments through ElectrumX');

const bip32 = BIP32Factory(ecc);
const vpub = () =>
  bip32.fromSeed(crypto.randomBytes(32), { wif: 0xef, bip32: { public: 0x045f1cf6, private: 0x045f18bc } }).derivePath("m/84'/1'/0'").neutered().toBase58();

const json = async (p: PaidNode, url: string) => JSON.parse(await curl('-H', 'Accept: application/json', url));
const sats = (n: number) => (n / 1e8).toFixed(8);

if (script) {
  t.test('real ElectrumX and Namecoin Core', async (t) => {
    const rig = await startRig(t, script);
    const p = await startPaidNode({ network: 'namecoin-regtest', xpub: vpub(), electrum: [rig.electrumUrl] });
    t.teardown(() => p.stop());
    const upload = async (name: string) => {
      const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(tmpDir('bitdrop-real-pay-', t), MiB, name), `${p.url}/`));
      return { ...up, url: `${p.url}/${up.id}` } as { id: string; address: string; amountDue: number; url: string };
    };
    const wait = <T>(what: string, fn: () => Promise<T | false>) => until(fn, 90_000, what);

    t.test('a file paid from the node wallet is credited through ElectrumX (headers and merkle proof checked)', async (t) => {
      const up = await upload('paid.bin');
      t.match(up.address, /^ncrt1q/, 'a Namecoin regtest address');
      t.equal((await curlStatus('-o', '/dev/null', up.url)).status, 402);
      await rig.rpc('sendtoaddress', [up.address, sats(up.amountDue)]);
      await wait('pending', async () => (await json(p, up.url)).pending === up.amountDue);
      await rig.mine(1);
      const v = await wait('active', async () => { const x = await json(p, up.url); return x.state === 'active' && x; });
      t.equal(v.credits, up.amountDue);
      t.equal((await curlStatus('-o', '/dev/null', up.url)).status, 200, 'downloadable');
    });

    t.test('ElectrumX stopped during a payment and restarted: credited after it is back', async (t) => {
      const up = await upload('outage.bin');
      await rig.electrumxStop();
      await wait('the watcher notices', async () => !p.node.watcher!.status().connected);
      await rig.rpc('sendtoaddress', [up.address, sats(up.amountDue)]);
      await rig.mine(1);
      t.equal((await json(p, up.url)).credits, 0, 'nothing credited while ElectrumX is down');
      await rig.electrumxStart();
      const v = await wait('credited after the restart', async () => { const x = await json(p, up.url); return x.credits > 0 && x; });
      t.equal(v.credits, up.amountDue);
      t.equal(v.state, 'active');
    });

    t.test('a reorg replacing the paying block withdraws the credit; mined again, it comes back', async (t) => {
      const up = await upload('reorg.bin');
      const txid = await rig.rpc<string>('sendtoaddress', [up.address, sats(up.amountDue)]);
      await rig.mine(1);
      await wait('active', async () => (await json(p, up.url)).state === 'active');
      const { blockhash } = await rig.rpc<{ blockhash: string }>('gettransaction', [txid]);
      await rig.rpc('invalidateblock', [blockhash]);
      // two empty blocks in its place: a longer branch without the payment (it waits in the mempool)
      const addr = await rig.rpc<string>('getnewaddress');
      await rig.rpc('generateblock', [addr, []]);
      await rig.rpc('generateblock', [addr, []]);
      const v = await wait('credit withdrawn', async () => { const x = await json(p, up.url); return x.credits === 0 && x; });
      t.equal(v.pending, up.amountDue, 'the payment is pending again');
      await rig.mine(1);
      const back = await wait('credit restored', async () => { const x = await json(p, up.url); return x.credits === up.amountDue && x; });
      t.equal(back.credits, up.amountDue);
    });
  });
}
