// Paid in NMC against the real servers: Namecoin Core nc31.1 hands out the file's address (--nmc-xpub node,
// getnewaddress), the Namecoin watcher follows ElectrumX 1.20 (AuxPoW headers, merkle proofs), and the file
// is credited at --nmc-rate; the name operation fee is read with gettransaction as Core reports it.
// Needs the real servers (BITDROP_TEST_RIG, test/helpers/rig.ts); without them this test says so in one line.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { execFile } from 'child_process';
import { promisify } from 'util';
import { openDevnet } from './helpers/devnet';
import { curl, randomFile, tmpDir } from './helpers/daemon';
import { startPaidNode, until } from './helpers/paid-node';
import { rpcCall } from '../lib/devnet/wallet';
import { rigOrSkip } from './helpers/rig';

const run = promisify(execFile);
const RATE = 2_000_000;

t.test('a file paid in NMC through Namecoin Core and ElectrumX', async (t) => {
  const RIG = rigOrSkip(t, 'NMC payments');
  if (!RIG) return;
  const rigDir = tmpDir('bitdrop-rig-', t);
  await run(RIG, ['start', rigDir], { timeout: 120_000 });
  t.teardown(() => run(RIG, ['stop', rigDir], { timeout: 60_000 }).then(() => undefined, () => undefined));
  const env = Object.fromEntries(fs.readFileSync(path.join(rigDir, 'env'), 'utf8').split('\n')
    .map((l) => /^export (\w+)=(.*)$/.exec(l)).filter((m): m is RegExpExecArray => !!m).map((m) => [m[1], m[2].replace(/^"|"$/g, '')]));
  const wallet = env.NMC_RPC_URL;
  const devnet = await openDevnet(t);
  const work = tmpDir('bitdrop-test-', t);
  const p = await startPaidNode({
    xpub: devnet.xpub, electrum: [devnet.electrumUrl],
    name: ['d/example'], namecoinRpc: wallet, namecoinPoll: '200ms',
    nmcXpub: 'node', nmcRate: RATE, nmcElectrum: [env.ELECTRUM_URL],
  }, tmpDir('bitdrop-test-', t), { coldSweepPeriodMs: 1000 });
  t.teardown(() => p.stop());

  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 100_000, 'a.bin'), `${p.url}/`));
  const view = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${p.url}/${up.id}`));
  t.match(view.nmc.address, /^ncrt1q/, 'Namecoin Core gave a regtest bech32 address');
  const info = await rpcCall<{ ismine: boolean }>(wallet, 'getaddressinfo', [view.nmc.address]);
  t.ok(info.ismine, 'an address of the names\' wallet');
  const sent = Math.max(view.nmc.amountDue, 100_000);
  const txid = await rpcCall<string>(wallet, 'sendtoaddress', [view.nmc.address, sent / 1e8]);
  const fee = await rpcCall<{ fee: number }>(wallet, 'gettransaction', [txid]);
  t.ok(fee.fee < 0, 'Core reports a wallet transaction\'s fee as a negative amount (what bookNameFee reads)');
  await rpcCall(env.NMC_RPC_URL_NODE, 'generatetoaddress', [1, await rpcCall<string>(wallet, 'getnewaddress')]);
  const credited = await until(async () => {
    const v = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${p.url}/${up.id}`));
    return v.credits > 0 && v;
  }, 60_000, 'the NMC payment credited through ElectrumX');
  t.equal(credited.credits, Math.floor(sent * RATE / 1e8), 'credited at the rate, with a merkle proof against checked AuxPoW headers');
  t.equal(p.node.ledger!.stats().nmcReceived, sent);
  t.ok(p.node.ledger!.nmcTip() > 150, 'the Namecoin watcher follows the real chain');
});
