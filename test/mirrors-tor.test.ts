// Mirrors over the private Tor network, paid on one devnet chain: A (its own managed tor) copies its file to
// B's onion through its SocksPort and pays B from its operating wallet; A is killed and the file downloads
// from B by the link A published, over tor.
import t from 'tap';
import { execFile } from 'child_process';
import crypto from 'crypto';
import path from 'path';
import * as ecc from '@bitcoinerlab/secp256k1';
import { BIP32Factory } from 'bip32';
import { Devnet } from '../lib/devnet';
import { devnetPay } from '../lib/devnet/wallet';
import { NETWORK } from '../lib/devnet/consensus';
import { requireTorTools, startTorNetwork } from './helpers/tor-network';
import { CLI, curl, exec, randomFile, sha256File, startDaemon, tmpDir, type Daemon } from './helpers/daemon';

requireTorTools();

t.test('A mirrored on B through the private Tor network', { timeout: 540_000 }, async (t) => {
  const network = await startTorNetwork();
  t.teardown(() => network.stop());
  const root = tmpDir('bitdrop-mirrors-tor-chain-', t);
  const devnet = await Devnet.open({ dir: path.join(root, 'devnet') });
  t.teardown(() => devnet.close());
  const miner = setInterval(() => devnet.mine(1), 500);
  t.teardown(() => clearInterval(miner));
  const tpub = BIP32Factory(ecc).fromSeed(crypto.randomBytes(32), NETWORK).derivePath("m/84'/1'/0'").neutered().toBase58();
  const chain = (xpub: string) => ['--network', 'regtest', '--xpub', xpub, '--electrum', devnet.electrumUrl];
  const torArgs = ['--tor', 'managed', '--torrc-append', network.torrcAppendFile()];
  const daemons: Daemon[] = [];
  t.teardown(async () => { for (const d of daemons) await d.stop(); });
  const B = await startDaemon({ paid: true, args: [...torArgs, ...chain(tpub)], timeoutMs: 240_000 });
  daemons.push(B);
  const onion = /onion\s+(http:\/\/[a-z2-7]{56}\.onion)/.exec(B.output())?.[1];
  t.ok(onion, `B published ${onion}`);
  const aDir = tmpDir('bitdrop-mirrors-tor-a-', t);
  const wallet = (await exec(process.execPath, [CLI, 'wallet', 'address', '--data-dir', aDir])).stdout.trim();
  await devnetPay(path.join(root, 'devnet'), wallet, 100_000);
  const A = await startDaemon({ paid: true, dataDir: aDir, args: [...torArgs, ...chain(devnet.xpub), '--mirror', onion!, '--spend-limit', '10000',
    '--mirror-sync', '2s', '--mirror-audit', '30s'], timeoutMs: 240_000 });
  daemons.push(A);

  const dir = tmpDir('bitdrop-mirrors-tor-', t);
  const file = randomFile(dir, 100_000, 'tor.bin');
  const up = JSON.parse(await curl('-T', file, '-H', 'Accept: application/json', `${A.url}/`));
  await devnetPay(path.join(root, 'devnet'), up.address, up.amountDue);
  const deadline = Date.now() + 300_000;
  let links: Array<{ url: string }> = [];
  while (Date.now() < deadline) {
    links = JSON.parse(await curl('-H', 'Accept: application/json', up.url)).mirrors ?? [];
    if (links.length) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (!links.length) t.comment(A.output());
  t.equal(links.length, 1, 'A lists its copy on B');
  t.match(links[0]?.url ?? '', new RegExp(`^${onion}/[A-Za-z0-9_-]{22}/tor\\.bin$`), 'at B\'s onion');
  t.match(A.output(), /copied to http:\/\/[a-z2-7]{56}\.onion/, 'uploaded through tor');
  t.match(A.output(), /wallet\s+paying \d+ sats .* for mirror\|http:\/\/[a-z2-7]{56}\.onion/, 'B paid from A\'s wallet');

  await A.kill9();
  const client = await network.startClient();
  t.teardown(() => client.stop());
  const out = path.join(dir, 'back.bin');
  let code = -1;
  for (let i = 0; i < 20 && code !== 0; i++) {
    code = await new Promise<number>((resolve) => execFile('curl', ['-sS', '-f', '--max-time', '60', '--socks5-hostname', `127.0.0.1:${client.socksPort}`, '-o', out, links[0].url],
      (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0)));
    if (code !== 0) await new Promise((r) => setTimeout(r, 2000));
  }
  t.equal(code, 0, 'the published link answers over tor after A died');
  t.equal(await sha256File(out), await sha256File(file), 'with the file\'s bytes');
});
