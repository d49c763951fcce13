// A server that lies about payments is caught: the watcher keeps its own header chain (lib/chain) and credits
// a confirmation only with a merkle proof against it. Each lie below comes from a proxy in front of the real
// devnet Electrum server; the payment is real, the lie is the server's. Nothing is credited, the liar is named.
import t from 'tap';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Devnet } from '../lib/devnet';
import { devnetPay } from '../lib/devnet/wallet';
import { HeaderChain } from '../lib/chain';
import { Watcher, type Payment } from '../lib/payments/watcher';
import { parseXpub, deriveFileAddress } from '../lib/payments/xpub';
import { until } from './helpers/payments-electrum';
import { startLyingElectrum, type Tamper } from './helpers/lying-electrum';

const sha256d = (b: Buffer) => crypto.createHash('sha256').update(crypto.createHash('sha256').update(b).digest()).digest();
const rev = (hex: string) => Buffer.from(hex, 'hex').reverse();

t.test('a lying Electrum server credits nothing and is dropped by name', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-lies-'));
  const devnet = await Devnet.open({ dir });
  t.teardown(async () => {
    await devnet.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const key = parseXpub(devnet.xpub, 'regtest');
  let next = 0;

  /** A watcher on `servers`; returns every list it emitted for the file's script and its log. */
  async function watch(servers: string[], sh: string) {
    const lists: Payment[][] = [];
    const log: string[] = [];
    const w = new Watcher({
      servers,
      chain: HeaderChain.open({ network: 'regtest' }),
      budget: 10,
      clearnet: false,
      coldSource: async () => [],
      log: (l) => log.push(l),
      electrum: { timeoutMs: 5000, backoff: { minMs: 20, maxMs: 100 } },
    });
    w.on('payments', (s: string, list: Payment[]) => s === sh && lists.push(list));
    t.teardown(() => w.stop());
    await w.start();
    w.watchHot(sh);
    return { w, lists, log, confirmed: () => lists.some((l) => l.some((p) => p.height > 0)) };
  }

  async function lie(name: string, mine: boolean, tamper: (txid: string) => Tamper) {
    await t.test(name, async (t) => {
      // (unmined lies: the payment stays in the mempool, so the lie can never become true by accident)
      const file = deriveFileAddress(key, next++);
      let txid = '';
      const liar = await startLyingElectrum(devnet.electrumUrl, (m, p, a) => (txid ? tamper(txid)(m, p, a) : a));
      t.teardown(() => liar.close());
      const { w, log, confirmed, lists } = await watch([liar.url], file.scriptHash);
      txid = await devnetPay(dir, file.address, 40_000);
      if (mine) {
        await until(() => lists.some((l) => l.some((p) => p.txid === txid)), 30_000, 'the payment seen in the mempool');
        devnet.mine(1);
      }
      await until(() => log.some((l) => l.includes(`dropping ${liar.url}`)), 10_000, 'the liar dropped');
      t.notOk(confirmed(), 'no confirmed payment was ever emitted');
      t.notOk(w.status().connected, 'not connected to the liar any more');
      t.ok(log.find((l) => l.includes(`dropping ${liar.url}`)), log.find((l) => l.includes('dropping')));
    });
  }

  await lie('a wrong merkle branch', true, () => (m, _p, a) => {
    if (m !== 'blockchain.transaction.get_merkle' || !a.result) return a;
    const r = a.result as { merkle: string[] };
    const merkle = r.merkle.length ? [crypto.randomBytes(32).toString('hex'), ...r.merkle.slice(1)] : [crypto.randomBytes(32).toString('hex')];
    return { result: { ...r, merkle } };
  });

  await lie('a history entry for a transaction that is in no block', false, (txid) => {
    return (m, p, a) => {
      // the server claims the mempool payment is already in the current tip block
      if (m === 'blockchain.scripthash.get_history' && Array.isArray(a.result)) {
        return { result: (a.result as Array<{ tx_hash: string; height: number }>).map((e) => (e.tx_hash === txid ? { tx_hash: txid, height: devnet.height } : e)) };
      }
      return a;
    };
  });

  await lie('a block with bad proof of work that "confirms" the payment', false, (txid) => {
    // a header at tip + 1 committing to the payment, whose hash does not meet the regtest target
    let fake: { height: number; hex: string; coinbase: string } | undefined;
    const make = () => {
      const height = devnet.height + 1;
      if (fake?.height === height) return fake;
      const coinbase = crypto.randomBytes(32);
      const h = Buffer.alloc(80);
      h.writeUInt32LE(0x20000000, 0);
      rev(devnet.chain.tipHash).copy(h, 4);
      sha256d(Buffer.concat([coinbase, rev(txid)])).copy(h, 36);
      h.writeUInt32LE(devnet.chain.blockAt(devnet.height)!.timestamp + 1, 68);
      h.writeUInt32LE(0x207fffff, 72);
      for (let n = 0; ; n++) {
        h.writeUInt32LE(n, 76);
        if (sha256d(h)[31] >= 0x80) break; // above the target: no proof of work
      }
      fake = { height, hex: h.toString('hex'), coinbase: coinbase.reverse().toString('hex') };
      return fake;
    };
    return (m, p, a) => {
      const f = make();
      if (m === 'blockchain.headers.subscribe') return { result: { height: f.height, hex: f.hex } };
      if (m === 'blockchain.block.headers' && p[0] === f.height) return { result: { hex: f.hex, count: 1, max: 2016 } };
      if (m === 'blockchain.block.header' && p[0] === f.height) return { result: f.hex };
      if (m === 'blockchain.scripthash.get_history' && Array.isArray(a.result)) {
        return { result: (a.result as Array<{ tx_hash: string; height: number }>).map((e) => (e.tx_hash === txid ? { tx_hash: txid, height: f.height } : e)) };
      }
      if (m === 'blockchain.transaction.get_merkle' && p[0] === txid) return { result: { block_height: f.height, merkle: [f.coinbase], pos: 1 } };
      return a;
    };
  });

  await t.test('with two servers the liar is dropped and named; the honest one confirms the payment', async (t) => {
    const file = deriveFileAddress(key, next++);
    const liar = await startLyingElectrum(devnet.electrumUrl, (m, _p, a) => {
      if (m !== 'blockchain.transaction.get_merkle' || !a.result) return a;
      return { result: { ...(a.result as object), merkle: [crypto.randomBytes(32).toString('hex')] } };
    });
    t.teardown(() => liar.close());
    const { w, log, lists } = await watch([liar.url, devnet.electrumUrl], file.scriptHash);
    t.equal(w.status().server, liar.url, 'starts on the first server, the liar');
    const txid = await devnetPay(dir, file.address, 25_000);
    devnet.mine(1);
    const height = devnet.height;
    await until(() => lists.some((l) => l.some((p) => p.txid === txid && p.height === height)), 15_000, 'confirmed through the honest server');
    t.ok(log.some((l) => l.startsWith(`electrum: dropping ${liar.url}: merkle proof for ${txid}`)), 'the liar is named with what it lied about');
    t.equal(w.status().server, devnet.electrumUrl);
    t.equal(w.tip()?.height, height);
  });
});

t.test('the daemon on a lying server: the paid file stays unpaid; checked headers survive a restart', async (t) => {
  const { startPaidNode, until: poll, MiB } = await import('./helpers/paid-node');
  const { curl, randomFile, tmpDir } = await import('./helpers/daemon');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-lies-daemon-'));
  const devnet = await Devnet.open({ dir });
  t.teardown(async () => {
    await devnet.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const liar = await startLyingElectrum(devnet.electrumUrl, (m, _p, a) => {
    if (m !== 'blockchain.transaction.get_merkle' || !a.result) return a;
    return { result: { ...(a.result as object), merkle: [crypto.randomBytes(32).toString('hex')] } };
  });
  t.teardown(() => liar.close());
  const dataDir = tmpDir();
  const flags = { xpub: devnet.xpub, electrum: [liar.url], network: 'regtest' };
  let p = await startPaidNode(flags, dataDir);
  t.teardown(() => p.stop());
  const json = async (url: string) => JSON.parse(await curl('-H', 'Accept: application/json', url));
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(tmpDir(), MiB, 'lie.bin'), `${p.url}/`));
  const fileUrl = `${p.url}/${up.id}`;
  await devnetPay(dir, up.address, up.amountDue);
  await poll(async () => (await json(fileUrl)).pending === up.amountDue, 15_000, 'pending seen');
  devnet.mine(1);
  await poll(() => p.logs.some((l) => l.includes(`dropping ${liar.url}`)), 15_000, 'the liar dropped');
  const v = await json(fileUrl);
  t.equal(v.state, 'awaiting payment', 'a payment the server could not prove is not credited');
  t.equal(v.credits, 0);
  t.ok(p.logs.find((l) => l.includes(`dropping ${liar.url}: merkle proof for`)), 'the log names the liar and the lie');
  const headers = path.join(dataDir, 'chain', 'regtest', 'headers');
  t.equal(fs.statSync(headers).size, devnet.height * 80, 'checked headers on disk, 80 bytes each after genesis');

  // restart on an honest server: the checked headers are read back from disk (none fetched again); the payment counts
  await p.stop();
  const honest = await startLyingElectrum(devnet.electrumUrl);
  t.teardown(() => honest.close());
  p = await startPaidNode({ ...flags, electrum: [honest.url] }, dataDir);
  await poll(async () => (await json(`${p.url}/${up.id}`)).state === 'active', 15_000, 'active through the honest server');
  t.same(honest.counts['blockchain.block.headers'] ?? 0, 0, 'no header chunk downloaded again after the restart');
});
