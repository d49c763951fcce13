// The operator console: its own loopback listener, the admin token, the same data as `bitdrop status`.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { startDaemon, exec, CLI, curlStatus, tmpDir, randomFile, curl } from './helpers/daemon';

t.test('the console answers on its loopback port with the admin token only, and bitdrop status reads the same data', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  t.match(d.consoleUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.not(d.consoleUrl, d.url, 'a second listener');
  const token = fs.readFileSync(path.join(d.dataDir, 'admin-token'), 'utf8').trim();
  const work = tmpDir('bitdrop-test-', t);
  await curl('-f', '-T', randomFile(work, 1000), `${d.url}/`);

  const anon = await curlStatus('-i', `${d.consoleUrl}/`);
  t.equal(anon.status, 401, 'no token, no console');
  t.match(anon.body, /WWW-Authenticate: Basic realm="bitdrop console"/i, 'a browser asks for the token');
  t.equal((await curlStatus('-u', 'operator:wrong', `${d.consoleUrl}/status`)).status, 401);
  const rebound = await curlStatus('-H', `X-Admin-Token: ${token}`, '-H', 'Host: evil.example', `${d.consoleUrl}/status`);
  t.equal(rebound.status, 421, 'a foreign Host header (DNS rebinding) is refused');

  const viaBasic = await curlStatus('-u', `operator:${token}`, '-H', 'Accept: text/html', `${d.consoleUrl}/`);
  t.equal(viaBasic.status, 200);
  t.match(viaBasic.body, /<h1>Console<\/h1>/);
  t.match(viaBasic.body, /Recent events/);
  t.notMatch(viaBasic.body, /<script/i, 'no JavaScript');

  const fromConsole = JSON.parse((await curlStatus('-H', `X-Admin-Token: ${token}`, `${d.consoleUrl}/status`)).body);
  const fromCli = JSON.parse((await exec(process.execPath, [CLI, 'status', '--data-dir', d.dataDir, '--json'])).stdout);
  for (const s of [fromConsole, fromCli]) {
    t.match(s, { files: 1, listen: d.url, console: d.consoleUrl, payments: { mode: 'free' }, tor: { mode: 'off' }, totals: { files: 1, bytes: 1000 } });
    t.ok(s.events.some((e: { line: string }) => /^serving/.test(e.line)), 'recent events hold the banner');
  }
  t.equal(fromCli.pid, fromConsole.pid);

  const publicStatus = await curlStatus('-H', `X-Admin-Token: ${token}`, `${d.url}/status`);
  t.equal(publicStatus.status, 404, 'the status is not on the public (onion) listener');
});

t.test('--console must be loopback, and a console address already taken stops start-up with one line', async (t) => {
  const r = await exec(process.execPath, [CLI, 'start', '--data-dir', tmpDir(), '--console', '0.0.0.0:8081', '--tor', 'off']).catch((e) => e);
  t.equal(r.code, 2);
  t.match(r.stderr, /^bitdrop: --console 0\.0\.0\.0:8081 is not a loopback address/);

  const a = await startDaemon();
  t.teardown(() => a.stop());
  const port = new URL(a.consoleUrl).port;
  const b = await startDaemon({ args: ['--console', `127.0.0.1:${port}`] }).catch((e: Error) => e);
  t.match(String(b), /the console address 127\.0\.0\.1:\d+ is already in use; choose another with --console HOST:PORT/);
});
