// The daemon's start and stop as an operator meets them.
// `npx bitdrop start` then a SIGTERM to npx: npx ends without passing the signal on, so the daemon must
// notice that its launcher is gone and stop (with the tor it manages). npx is stood in for by a small
// script named npx that starts the daemon through `sh -c`, as npm exec does, and dies on SIGTERM.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { spawn } from 'child_process';
import { CLI, startDaemon, tmpDir } from './helpers/daemon';
import { offlineAppendFile } from './helpers/tor-lone';

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

t.test('a SIGTERM to npx stops the daemon it started', async (t) => {
  const dir = tmpDir('bitdrop-test-', t);
  const dataDir = path.join(dir, 'data');
  const npx = path.join(dir, 'npx');
  const cmd = `'${process.execPath}' '${CLI}' start --free --tor off --listen 127.0.0.1:0 --console 127.0.0.1:0 --data-dir '${dataDir}'`;
  fs.writeFileSync(npx, `require('child_process').spawn('sh', ['-c', ${JSON.stringify(cmd)}], { stdio: 'inherit', env: { ...process.env, npm_command: 'exec' } });\n`);
  const launcher = spawn(process.execPath, [npx], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  launcher.stdout.on('data', (d) => { out += d; });
  launcher.stderr.on('data', (d) => { out += d; });
  let pid = 0;
  t.teardown(() => { if (pid && alive(pid)) process.kill(pid, 'SIGKILL'); if (launcher.exitCode === null) launcher.kill('SIGKILL'); });
  for (let i = 0; i < 300 && !/^ready/m.test(out); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(out, /^ready/m, 'the daemon started under the stand-in npx');
  pid = JSON.parse(fs.readFileSync(path.join(dataDir, 'bitdrop.json'), 'utf8')).pid;
  t.not(pid, launcher.pid, 'the daemon is a descendant, not npx itself');
  launcher.kill('SIGTERM');
  for (let i = 0; i < 300 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  t.notOk(alive(pid), 'the daemon stopped once npx was gone');
  t.notOk(fs.existsSync(path.join(dataDir, 'bitdrop.json')), 'and cleaned up its runtime file as on SIGTERM');
});

t.test('the banner warns when tor cannot reach the Tor network, and writes sizes as people do', async (t) => {
  const dataDir = tmpDir('bitdrop-test-', t);
  const d = await startDaemon({ dataDir, args: ['--tor', 'managed', '--torrc-append', offlineAppendFile(dataDir)], timeoutMs: 60_000 });
  t.teardown(() => d.stop());
  t.match(d.output(), /^onion +http:\/\/[a-z2-7]{56}\.onion/m, 'the onion is published');
  t.match(d.output(), /^WARNING +tor has not reached the Tor network yet \(bootstrapped \d+ %\): the onion cannot be reached/m, 'and the banner says it cannot be reached yet');
  t.match(d.output(), /^uploads +up to 5 GiB$/m);
});
