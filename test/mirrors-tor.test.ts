// Mirrors over the private Tor network: A (its own managed tor) copies its file to B's onion through its
// SocksPort; A is killed and the file downloads from B by the link A published, over tor.
import t from 'tap';
import { execFile } from 'child_process';
import path from 'path';
import { requireTorTools, startTorNetwork } from './helpers/tor-network';
import { curl, randomFile, sha256File, startDaemon, tmpDir, type Daemon } from './helpers/daemon';

requireTorTools();

t.test('A mirrored on B through the private Tor network', { timeout: 540_000 }, async (t) => {
  const network = await startTorNetwork();
  t.teardown(() => network.stop());
  const torArgs = ['--tor', 'managed', '--torrc-append', network.torrcAppendFile()];
  const daemons: Daemon[] = [];
  t.teardown(async () => { for (const d of daemons) await d.stop(); });
  const B = await startDaemon({ args: torArgs, timeoutMs: 240_000 });
  daemons.push(B);
  const onion = /onion\s+(http:\/\/[a-z2-7]{56}\.onion)/.exec(B.output())?.[1];
  t.ok(onion, `B published ${onion}`);
  const A = await startDaemon({ args: [...torArgs, '--mirror', onion!, '--mirror-sync', '2s', '--mirror-audit', '30s'], timeoutMs: 240_000 });
  daemons.push(A);

  const dir = tmpDir('bitdrop-mirrors-tor-', t);
  const file = randomFile(dir, 100_000, 'tor.bin');
  const up = JSON.parse(await curl('-T', file, '-H', 'Accept: application/json', `${A.url}/`));
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
