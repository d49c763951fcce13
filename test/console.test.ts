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

t.test('the console blocks content by SHA-256: stored copies answer 410 with the reason, uploads of it are refused; every change needs the token and a CSRF token, and is logged', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const token = fs.readFileSync(path.join(d.dataDir, 'admin-token'), 'utf8').trim();
  const file = randomFile(work, 5000, 'takedown.bin');
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/`));
  const keep = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 3000, 'keep.txt'), `${d.url}/`));
  const auth = ['-u', `operator:${token}`];
  const html = (await curlStatus(...auth, '-H', 'Accept: text/html', `${d.consoleUrl}/`)).body;
  const csrf = /name="csrf" value="([A-Za-z0-9_-]+)"/.exec(html)?.[1];
  t.ok(csrf, 'the console forms carry a CSRF token');
  t.match(html, /No problems/, 'problems come first');
  t.match(html, /<svg[^>]+role="img" aria-label="Money earned per day/, 'a server-made chart');
  t.match(html, /keep\.txt/, 'the newest files are listed');
  const post = (p: string, form: Record<string, string>, ...extra: string[]) =>
    curl('-X', 'POST', ...extra, '-H', 'Content-Type: application/x-www-form-urlencoded', '--data', new URLSearchParams(form).toString(), '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `${d.consoleUrl}${p}`);
  const code = (p: Promise<string>) => p;

  const reason = 'copyright complaint #42';
  t.match(await code(post('/block', { sha256: up.sha256, reason, csrf: csrf! })), /^401/, 'no admin token: refused');
  t.match(await code(post('/block', { sha256: up.sha256, reason }, ...auth)), /^403/, 'no CSRF token: refused');
  t.match(await code(post('/block', { sha256: up.sha256, reason, csrf: csrf! }, ...auth, '-H', 'Sec-Fetch-Site: cross-site')), /^403/, 'a cross-site form: refused');
  t.match(await code(post('/block', { sha256: up.sha256, reason, csrf: csrf! }, ...auth, '-H', 'Origin: http://evil.example')), /^403/, 'another origin: refused');
  t.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Accept: application/json', up.url), '200', 'nothing was blocked by the refused forms');
  t.match(await code(post('/block', { sha256: 'nonsense', reason, csrf: csrf! }, ...auth)), /^400/, 'a SHA-256 must be one');

  t.match(await code(post('/block', { sha256: up.sha256, reason, csrf: csrf! }, ...auth)), /^303 .*\/\?done=Blocked/, 'blocked, back to the console');
  const gone = await curlStatus(up.url);
  t.equal(gone.status, 410, 'the stored copy is gone');
  t.match(gone.body, new RegExp(`blocked by the operator: ${reason}`), 'its 410 says why');
  const page = await curlStatus('-H', 'Accept: text/html', up.url.replace(/\/[^/]*$/, ''));
  t.equal(page.status, 410);
  t.match(page.body, /Deleted on .*Blocked by the operator: copyright complaint #42/, 'the 410 page shows the reason');
  const again = await curlStatus('-T', file, `${d.url}/`);
  t.equal(again.status, 451, 'the same bytes are refused on upload');
  t.match(again.body, /^451 Unavailable For Legal Reasons: this drop box does not take this file: copyright complaint #42\n/);
  const form = await curlStatus('-F', `file=@${file}`, `${d.url}/`);
  t.equal(form.status, 451, 'through the form too');
  t.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Accept: application/json', keep.url), '200', 'other files stay');

  const list = await curlStatus(...auth, `${d.consoleUrl}/blocklist.txt`);
  t.match(list.body, new RegExp(`^${up.sha256} ${reason}$`, 'm'), 'the blocklist is a file to share');
  const other = randomFile(work, 100, 'other.bin');
  const otherSha = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', other, `${d.url}/`)).sha256;
  t.match(await code(post('/blocklist', { list: `# from another box\n${otherSha} shared takedown\n`, csrf: csrf! }, ...auth)), /^303/, 'a shared blocklist is added');
  t.equal((await curlStatus('-T', other, `${d.url}/`)).status, 451, 'its entries are enforced');
  t.match(await code(post('/blocklist', { list: 'not a line', csrf: csrf! }, ...auth)), /^400/, 'a bad line is refused');

  const files = JSON.parse((await curlStatus(...auth, '-H', 'Accept: application/json', `${d.consoleUrl}/files?sort=largest&q=keep`)).body);
  t.same(files.rows.map((r: { name: string }) => r.name), ['keep.txt'], 'files are searched by name');
  t.match(await code(post(`/files/${keep.id}/delete`, { csrf: csrf! }, ...auth)), /^303/, 'a file is deleted from the console');
  t.match((await curlStatus(keep.url)).body, /deleted by the operator/);
  t.match(await code(post('/unblock', { sha256: up.sha256, csrf: csrf! }, ...auth)), /^303/);
  t.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-T', file, `${d.url}/`), '201', 'unblocked content uploads again');

  const out = d.output();
  t.match(out, new RegExp(`console   blocked ${up.sha256} \\(${reason}\\); 1 stored file deleted`), 'every change is logged');
  t.match(out, /console   added 1 blocklist entry; 1 stored files deleted/);
  t.match(out, new RegExp(`console   deleted ${keep.id} “keep\\.txt” \\(operator\\)`));
  t.match(out, new RegExp(`console   unblocked ${up.sha256}`));
});
