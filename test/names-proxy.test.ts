// Tor Browser's view of .bit names, on the test suite's private Tor network: the daemon registers d/example
// on the devnet; a client tor runs with `bitdrop names-proxy` attached to its control port; curl through that
// tor uploads to http://example.bit/ and the answer's URL uses example.bit; the download matches; an unknown
// .bit fails fast; .onion traffic is unaffected; with the proxy killed, tor still serves ordinary traffic.

import { execFile } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import t from 'tap';
import { requireTorTools, startTorNetwork } from './helpers/tor-network';
import { openDevnet } from './helpers/devnet';
import { startDaemon, tmpDir } from './helpers/daemon';
import { nameStatus, waitFor } from './helpers/namecoin';
import { spawnNamesProxy, type NamesProxy } from './helpers/names-proxy';
import { ControlPort, parseControlAddress } from '../lib/tor/control';

requireTorTools(); // fails with "apt-get install tor" rather than skipping

function curl(socksPort: number, args: string[], maxSeconds = 60): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(maxSeconds), '--socks5-hostname', `127.0.0.1:${socksPort}`, ...args], { maxBuffer: 1 << 24 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
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

/** names-proxy resolving through the node at `rpc`, or with no resolver flag (the default) when rpc is undefined. */
function startProxy(control: string, rpc: string | undefined, cwd?: string): NamesProxy {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => rpc || !k.startsWith('BITDROP_')));
  return spawnNamesProxy(['--tor-control', control, ...(rpc ? ['--namecoin-rpc', rpc] : []), '--ttl', '5s'], { cwd, env });
}

async function leaveStreamsUnattached(control: string): Promise<string> {
  const port = await ControlPort.connect(parseControlAddress(control));
  try {
    await port.authenticate();
    return (await port.command('GETCONF __LeaveStreamsUnattached')).lines[0];
  } finally {
    port.close();
  }
}

t.test('example.bit in a tor with names-proxy', { timeout: 540_000 }, async (t) => {
  const network = await startTorNetwork();
  t.teardown(() => network.stop());
  const devnet = await openDevnet(t);
  const dataDir = tmpDir('bitdrop-names-proxy-', t);
  const daemon = await startDaemon({
    dataDir,
    args: ['--tor', 'managed', '--torrc-append', network.torrcAppendFile(), '--namecoin-rpc', devnet.namecoinRpcUrl, '--name', 'd/example', '--namecoin-poll', '100ms'],
    timeoutMs: 120_000,
  });
  t.teardown(() => daemon.stop());

  // The daemon registers d/example.
  await waitFor('name_new', async () => (await nameStatus(dataDir)).state === 'new-sent', 60_000);
  devnet.mineNames(12);
  await waitFor('firstupdate', async () => (await nameStatus(dataDir)).state === 'firstupdate-sent');
  devnet.mineNames(1);
  const { onion } = await waitFor('registered', async () => {
    const s = await nameStatus(dataDir);
    return s.state === 'registered' && s;
  });
  t.comment(`d/example → ${onion}`);

  const client = await network.startClient();
  await client.bootstrapped();
  // Ordinary onion traffic works before the proxy (and the onion is published).
  await untilOk(client.socksPort, ['-o', '/dev/null', `http://${onion}/`], 180_000);

  const proxy = startProxy(client.controlArg(), devnet.namecoinRpcUrl);
  t.teardown(() => {
    if (proxy.child.exitCode === null) proxy.child.kill('SIGKILL');
  });
  await proxy.ready;
  t.match(await leaveStreamsUnattached(client.controlArg()), /=1/, 'the proxy set __LeaveStreamsUnattached');

  const file = path.join(dataDir, 'upload.bin');
  fs.writeFileSync(file, crypto.randomBytes(300_000));
  const up = await untilOk(client.socksPort, ['-T', file, 'http://example.bit/'], 120_000);
  const url = up.stdout.split('\n')[0].trim();
  t.match(url, /^http:\/\/example\.bit\/\S+/, 'the answer\'s URL uses example.bit');
  t.ok(proxy.lines.some((l) => l.includes(`example.bit → ${onion} port 80`)), 'one log line for the decision');

  const down = await curl(client.socksPort, ['-o', path.join(dataDir, 'down.bin'), url]);
  t.equal(down.code, 0, down.stderr);
  t.ok(fs.readFileSync(path.join(dataDir, 'down.bin')).equals(fs.readFileSync(file)), 'the download by the example.bit URL matches');

  const unknown = await curl(client.socksPort, ['-o', '/dev/null', 'http://nope.bit/'], 30);
  t.not(unknown.code, 0, `unknown .bit fails: ${unknown.stderr.trim()}`);
  t.ok(unknown.seconds < 10, `and fast (${unknown.seconds.toFixed(1)} s)`);
  await waitFor('the reason in the log', () => proxy.lines.some((l) => /nope\.bit not opened: nope\.bit is not registered/.test(l)));

  const plain = await curl(client.socksPort, ['-o', '/dev/null', '-w', '%{http_code}', `http://${onion}/`]);
  t.equal(plain.stdout, '200', '.onion traffic is unaffected while the proxy runs');

  // The proxy killed outright: its guard puts tor back, and tor serves ordinary traffic.
  proxy.child.kill('SIGKILL');
  await waitFor('the setting restored', async () => /=0/.test(await leaveStreamsUnattached(client.controlArg())), 10_000);
  t.pass('the guard put __LeaveStreamsUnattached back to 0');
  const after = await curl(client.socksPort, ['-o', '/dev/null', '-w', '%{http_code}', `http://${onion}/`], 60);
  t.equal(after.stdout, '200', 'after the proxy is killed, tor still serves ordinary traffic');

  // A proxy stopped with SIGTERM restores tor itself.
  const second = startProxy(client.controlArg(), devnet.namecoinRpcUrl);
  t.teardown(() => {
    if (second.child.exitCode === null) second.child.kill('SIGKILL');
  });
  await second.ready;
  t.match(await leaveStreamsUnattached(client.controlArg()), /=1/);
  const exited = new Promise<number | null>((r) => second.child.once('exit', (code) => r(code)));
  second.child.kill('SIGTERM');
  t.equal(await exited, 0, 'names-proxy exits cleanly on SIGTERM');
  t.match(await leaveStreamsUnattached(client.controlArg()), /=0/, 'and restored the setting itself');
  t.ok(second.lines.some((l) => /back to 0/.test(l)), 'saying so');

  // With no resolver flag, names-proxy picks the built-in proof-checked Electrum servers and reaches them
  // through the SocksPort this tor reports (no .bit stream is opened here: nothing is looked up).
  const bare = tmpDir('bitdrop-names-proxy-default-', t);
  const third = startProxy(client.controlArg(), undefined, bare);
  t.teardown(() => {
    if (third.child.exitCode === null) third.child.kill('SIGKILL');
  });
  await third.ready;
  t.ok(third.lines.some((l) => l.endsWith(`resolving through proof-checked Electrum (2 of Electrum-NMC's 4 onion servers per lookup, through tor's SocksPort) 127.0.0.1:${client.socksPort}`)),
    `the default: built-in servers through the tor's own SocksPort 127.0.0.1:${client.socksPort}\n${third.lines.join('\n')}`);
  const thirdExited = new Promise<number | null>((r) => third.child.once('exit', (code) => r(code)));
  third.child.kill('SIGTERM');
  t.equal(await thirdExited, 0, 'and it stops cleanly');
});
