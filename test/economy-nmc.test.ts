// Paid in NMC too, on the devnet: a file's page offers a bitcoin and a Namecoin address; one file is paid in
// NMC only (to an address of the names' node wallet, --nmc-xpub node), the Namecoin watcher credits it at
// --nmc-rate, the books count it as NMC revenue, and the name's renewal — which the wallet could not pay
// before — is paid from that NMC income (the name_update spends the file's payment).

import t from 'tap';
import { openDevnet } from './helpers/devnet';
import { curl, randomFile, tmpDir } from './helpers/daemon';
import { offlineAppendFile } from './helpers/tor-lone';
import { startPaidNode, until } from './helpers/paid-node';
import { rpcCall } from '../lib/devnet/wallet';
import { parseNameScript } from '../lib/names/script';

const RATE = 1_000_000; // sats per NMC

t.test('one file paid in NMC; the name is renewed from that NMC income', async (t) => {
  const devnet = await openDevnet(t);
  const base = devnet.namecoinRpcUrl;
  const def = `${base}/wallet/default`;
  await rpcCall(base, 'createwallet', ['bitdrop']);
  const own = `${base}/wallet/bitdrop`;
  // The names' wallet gets enough for the registration and nothing more.
  await rpcCall(def, 'sendtoaddress', [await rpcCall<string>(own, 'getnewaddress'), 0.0115]);
  devnet.mineNames(1);
  const dataDir = tmpDir('bitdrop-test-', t);
  const work = tmpDir('bitdrop-test-', t);
  const p = await startPaidNode({
    xpub: devnet.xpub, electrum: [devnet.electrumUrl],
    tor: 'managed', torrcAppend: offlineAppendFile(work),
    name: ['d/example'], namecoinRpc: own, namecoinPoll: '100ms',
    nmcXpub: 'node', nmcRate: RATE, nmcElectrum: [devnet.namecoinElectrumUrl],
  }, dataDir, { coldSweepPeriodMs: 1000 });
  t.teardown(() => p.stop());
  const reg = p.node.registrar!;
  const state = () => reg.status().find((n) => n.name === 'd/example')!;
  const tick = () => new Promise((r) => setTimeout(r, 250));

  // registration: name_new, 12 confirmations, name_firstupdate
  await until(() => state().state === 'new-sent', 30_000, 'name_new');
  devnet.mineNames(1);
  await until(() => state().state === 'waiting', 30_000, 'name_new confirmed');
  devnet.mineNames(11);
  await until(() => state().state === 'firstupdate-sent', 30_000, 'name_firstupdate');
  devnet.mineNames(1);
  await until(() => state().state === 'registered', 30_000, 'registered');
  // what is left in the names' wallet goes elsewhere, all but less than a renewal's fee
  const left = await rpcCall<number>(own, 'getbalance');
  if (left > 0.0003) await rpcCall(own, 'sendtoaddress', [await rpcCall<string>(def, 'getnewaddress'), Number((left - 0.0003).toFixed(8))]);
  devnet.mineNames(1);
  t.ok((await rpcCall<number>(own, 'getbalance')) < 0.0003, 'the names\' wallet has too little for a renewal\'s fee');
  // the name nears expiry: its renewal is due and cannot be paid
  for (let i = 0; i < 25 && !/too few coins|insufficient/i.test(state().lastError ?? ''); i++) {
    devnet.mineNames(1);
    await tick();
  }
  t.match(state().lastError ?? '', /too few coins|insufficient/i, 'the renewal is due and the wallet cannot pay it');
  t.ok(state().expiresIn! > 0, 'the name has not expired');

  // a file, paid in NMC only
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 300_000, 'a.bin'), `${p.url}/`));
  const view = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${p.url}/${up.id}`));
  t.match(view.address, /^bcrt1/, 'a bitcoin address');
  t.match(view.nmc, { address: /^ncrt1|^[mn2]/, rate: RATE, paymentUri: /^namecoin:/ }, 'and a Namecoin address');
  t.ok(view.nmc.amountDue * RATE / 1e8 >= view.amountDue, 'the NMC asked covers the sats due at the rate');
  const page = await curl('-f', '-H', 'Accept: text/html', `${p.url}/${up.id}`);
  t.match(page, new RegExp(`id="nmc-address">${view.nmc.address}<`), 'the file page offers both addresses');
  const nmcSent = Math.max(view.nmc.amountDue, 500_000); // base units: 0.005 NMC
  const txid = await rpcCall<string>(def, 'sendtoaddress', [view.nmc.address, nmcSent / 1e8]);
  devnet.mineNames(1);
  const credited = await until(async () => {
    const v = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${p.url}/${up.id}`));
    return v.credits > 0 && v;
  }, 30_000, 'the NMC payment credited');
  t.equal(credited.credits, Math.floor(nmcSent * RATE / 1e8), 'credited in sats at --nmc-rate');
  t.equal(credited.state, 'active', 'the file is paid (in NMC)');
  const stats = p.node.ledger!.stats();
  t.equal(stats.creditsNmc, credited.credits, 'counted as NMC credit');
  t.equal(stats.nmcReceived, nmcSent, 'and as NMC received');
  await p.node.economy!.tick();
  const rows = await p.node.economy!.rows();
  t.equal(rows.reduce((n, r) => n + r.revenueNmc, 0), credited.credits, 'the books count the NMC revenue');
  t.equal(rows.reduce((n, r) => n + r.revenueBtc, 0), 0, 'and no bitcoin revenue');
  const mine = await rpcCall<Array<{ txid: string; category: string }>>(own, 'listtransactions', ['*', 100]);
  t.ok(mine.some((x) => x.txid === txid && x.category === 'receive'), 'the NMC landed in the names\' node wallet, which pays for renewals');

  // the renewal goes out, paid from the file's NMC
  const renewal = await until(() => {
    for (const e of devnet.namecoin.chain.mempool.all()) {
      if (e.tx.outs.some((o) => parseNameScript(o.script)?.op === 'name_update')) return e.tx;
    }
    return undefined;
  }, 120_000, 'a name_update in the mempool').catch((err) => {
    // (a CI run at high load timed out at 30 s; say what the registrar did)
    t.comment(p.logs.filter((l) => /names/.test(l)).slice(-20).join('\n'));
    throw err;
  });
  const spends = renewal.ins.map((i) => Buffer.from(i.hash).reverse().toString('hex'));
  t.ok(spends.includes(txid), 'the renewal spends the NMC paid for the file');
  devnet.mineNames(1);
  await until(() => state().state === 'registered' && state().expiresIn === 30 && !state().lastError, 30_000, 'renewed');
  t.pass('the name is renewed from NMC income');
  // the fees of the name operations are NMC spent: in the books as costs, and off the NMC on hand
  const spent = await until(async () => {
    const e = (await p.node.economy!.spentEntries()).filter((x) => x.coin === 'NMC');
    return e.some((x) => /^name_update d\/example/.test(x.what)) && e;
  }, 15_000, 'the renewal\'s fee booked');
  t.ok(spent.every((x) => x.nmc! > 0 && x.sats === Math.floor(x.nmc! * RATE / 1e8)), 'each fee in NMC and in sats at the rate');
  t.same(spent.map((x) => x.what.split(' ')[0]).sort(), ['name_firstupdate', 'name_new', 'name_update'], 'registration and renewal');
  const status = await p.node.status();
  t.match(status.nmc, { rate: RATE, received: nmcSent, spent: spent.reduce((n, x) => n + x.nmc!, 0) }, 'the console: NMC received, spent, on hand');
  t.equal((status.nmc as { renewalsPaidFor: number }).renewalsPaidFor, Math.floor((nmcSent - spent.reduce((n, x) => n + x.nmc!, 0)) / 500_000), 'and how many renewals it pays for');

});
