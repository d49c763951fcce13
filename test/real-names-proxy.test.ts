// `bitdrop names-proxy` on the test suite's private Tor network, resolving example.bit through the real
// ElectrumX 1.20 (headers and proofs checked, the network learnt from the server's genesis hash): a daemon
// publishes its onion on the private network, d/example is registered on the real Namecoin Core with that
// onion, and curl through a client tor with the proxy attached uploads to http://example.bit/ and downloads
// the file back by the example.bit URL. Finds the rig through BITDROP_TEST_RIG.

import { execFile } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import t from 'tap';
import { requireTorTools, startTorNetwork } from './helpers/tor-network';
import { startDaemon, tmpDir } from './helpers/daemon';
import { waitFor } from './helpers/namecoin';
import { spawnNamesProxy } from './helpers/names-proxy';
import { registerName, rigOrSkip, startRig } from './helpers/rig';
import { buildValue } from '../lib/names/value';
import { fetchStatus } from '../lib/cli/status';

const script = rigOrSkip(t, 'names-proxy through ElectrumX');

function curl(socksPort: number, args: string[], maxSeconds = 60): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(maxSeconds), '--socks5-hostname', `127.0.0.1:${socksPort}`, ...args], { maxBuffer: 1 << 24 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }));
  });
}

async function untilOk(socksPort: number, args: string[], timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await curl(socksPort, args, 20);
    if (r.code === 0) return r;
    if (Date.now() > end) throw new Error(`curl ${args.join(' ')} kept failing: rc ${r.code} ${r.stderr.trim()}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

if (script) {
  requireTorTools();
  t.test('example.bit through names-proxy and the real ElectrumX', { timeout: 540_000 }, async (t) => {
    const [network, rig] = await Promise.all([startTorNetwork(), startRig(t, script)]);
    t.teardown(() => network.stop());
    const dataDir = tmpDir('bitdrop-real-proxy-', t);
    const daemon = await startDaemon({ dataDir, args: ['--tor', 'managed', '--torrc-append', network.torrcAppendFile()], timeoutMs: 120_000 });
    t.teardown(() => daemon.stop());
    const onion = await waitFor('the daemon\'s onion', async () => (await fetchStatus(dataDir)).onion as string | null, 60_000);
    await registerName(rig, 'd/example', buildValue(onion));
    await rig.electrumSynced();

    const client = await network.startClient();
    await client.bootstrapped();
    await untilOk(client.socksPort, ['-o', '/dev/null', `http://${onion}/`], 180_000);

    // no --nmc-network: the server's genesis hash says regtest
    const { child, lines, ready } = spawnNamesProxy(['--tor-control', client.controlArg(), '--electrum-nmc', rig.electrumUrl, '--data-dir', tmpDir('bitdrop-real-proxy-data-', t), '--ttl', '5s']);
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await ready;

    const file = path.join(dataDir, 'upload.bin');
    fs.writeFileSync(file, crypto.randomBytes(100_000));
    const up = await untilOk(client.socksPort, ['-T', file, 'http://example.bit/'], 120_000);
    const url = up.stdout.split('\n')[0].trim();
    t.match(url, /^http:\/\/example\.bit\/\S+/, 'uploaded to example.bit; the answer\'s URL uses example.bit');
    t.ok(lines.some((l) => l.includes(`example.bit → ${onion} port 80`)), 'resolved through the real ElectrumX');
    const down = await curl(client.socksPort, ['-o', path.join(dataDir, 'down.bin'), url]);
    t.equal(down.code, 0, down.stderr);
    t.ok(fs.readFileSync(path.join(dataDir, 'down.bin')).equals(fs.readFileSync(file)), 'the download by the example.bit URL matches');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    t.equal(await exited, 0, 'names-proxy stops cleanly');
  });
}
