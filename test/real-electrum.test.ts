// Node-free .bit resolution through the real ElectrumX 1.20 (Namecoin regtest, merge-mined 294-byte AuxPoW
// headers): resolves with headers and proofs checked, refuses an unknown name, an expired name and a server
// on another network, learns the network from the server's genesis hash, and a second lookup reads its
// headers from disk. Finds the rig (Namecoin Core + ElectrumX) through BITDROP_TEST_RIG.

import t from 'tap';
import net from 'net';
import path from 'path';
import { CLI, exec, tmpDir } from './helpers/daemon';
import { randomOnion, registerName, rigOrSkip, startRig } from './helpers/rig';
import { lookupName, NameLookupError } from '../lib/names/electrum';
import { HeaderChain } from '../lib/chain';

const script = rigOrSkip(t, 'node-free resolution against ElectrumX');

/** A TCP relay to ElectrumX that counts the client's blockchain.block.headers requests. */
async function countingRelay(t: Test, target: string): Promise<{ url: string; headerRequests: () => number }> {
  const u = new URL(target);
  let count = 0;
  const server = net.createServer((client) => {
    const up = net.connect(Number(u.port), u.hostname);
    client.on('data', (d) => {
      count += d.toString().split('blockchain.block.headers').length - 1;
      up.write(d);
    });
    up.pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`, headerRequests: () => count };
}

type Test = typeof t;

if (script) {
  t.test('real ElectrumX', async (t) => {
    const rig = await startRig(t, script);
    const onion = randomOnion();
    await registerName(rig, 'd/example', JSON.stringify({ map: { _tor: { txt: onion } }, tor: onion }));
    await rig.electrumSynced();
    const resolve = (...args: string[]) => exec(process.execPath, [CLI, 'resolve', ...args], { timeout: 120_000 }).then((r) => ({ ...r, code: 0 }), (e) => e as { stdout: string; stderr: string; code: number });

    t.test('bitdrop resolve --electrum-nmc resolves example.bit, learning the network from the server (bug: protocol 1.6 split AuxPoW headers wrongly)', async (t) => {
      const dataDir = tmpDir('bitdrop-real-electrum-', t);
      const r = await resolve('example.bit', '--electrum-nmc', rig.electrumUrl, '--data-dir', dataDir);
      t.equal(r.stderr.trim(), '', 'no error');
      t.equal(r.stdout.trim(), onion, 'example.bit → the onion, without --nmc-network');
      const r2 = await resolve('example.bit', '--electrum-nmc', rig.electrumUrl, '--nmc-network', 'namecoin-regtest', '--data-dir', dataDir, '--json');
      t.match(JSON.parse(r2.stdout), { domain: 'example.bit', name: 'd/example', onion }, 'and with --nmc-network namecoin-regtest');
    });

    t.test('refuses a server of another network in one line', async (t) => {
      const dataDir = tmpDir('bitdrop-real-electrum-', t);
      const r = await resolve('example.bit', '--electrum-nmc', rig.electrumUrl, '--nmc-network', 'namecoin', '--data-dir', dataDir);
      t.not(r.code, 0, 'fails');
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      t.match(r.stderr, /serves namecoin-regtest, not namecoin/);
    });

    t.test('refuses an unknown name and an expired one; a second lookup reads its headers from disk', async (t) => {
      const chainDir = tmpDir('bitdrop-real-chain-', t);
      const relay = await countingRelay(t, rig.electrumUrl);
      const opts = { servers: [relay.url], network: 'namecoin-regtest' as const, chainDir };
      const first = await lookupName('d/example', opts);
      const fetched = relay.headerRequests();
      t.ok(fetched > 0, `the first lookup fetched headers (${fetched} requests)`);
      const onDisk = HeaderChain.open({ network: 'namecoin-regtest', dir: chainDir });
      t.equal(onDisk.height, await rig.height(), 'the checked headers are on disk');
      onDisk.close();
      const again = await lookupName('d/example', opts);
      t.equal(again.txid, first.txid);
      t.equal(relay.headerRequests(), fetched, 'the second lookup fetched no headers: it read them from disk');

      const unknown = await lookupName('d/nobody', opts).catch((e) => e as NameLookupError);
      t.equal(unknown.kind, 'unknown', `unknown: ${unknown.message}`);

      await rig.mine(30);
      await rig.electrumSynced();
      const expired = await lookupName('d/example', opts).catch((e) => e as NameLookupError);
      t.equal(expired.kind, 'expired', `expired: ${expired.message}`);
      const r = await resolve('example.bit', '--electrum-nmc', rig.electrumUrl, '--data-dir', path.join(chainDir, 'cli'));
      t.match(r.stderr, /expired/, 'the CLI says expired');
    });
  });
}
