// The command line as an operator and a script use it.

import t from 'tap';
import path from 'path';
import { spawnSync } from 'child_process';
import { startDaemon, exec, CLI, randomFile, tmpDir, curl, sha256File } from './helpers/daemon';

t.test('bitdrop upload prints the URL; status reports the daemon; SIGTERM stops it cleanly', async (t) => {
  const d = await startDaemon();
  const work = tmpDir();
  const file = randomFile(work, 300_000, 'cli upload.bin');
  const { stdout } = await exec(process.execPath, [CLI, 'upload', file, '--url', d.url]);
  const url = stdout.split('\n')[0];
  t.match(url, /\/[A-Za-z0-9_-]{22}\/cli%20upload\.bin$/);
  await curl('-f', '-o', path.join(work, 'out'), url);
  t.equal(await sha256File(path.join(work, 'out')), await sha256File(file));
  const json = JSON.parse((await exec(process.execPath, [CLI, 'upload', file, '--url', d.url, '--json'])).stdout);
  t.equal(json.size, 300_000);

  const missing = spawnSync(process.execPath, [CLI, 'upload', path.join(work, 'nope'), '--url', d.url]);
  t.equal(missing.status, 1);
  t.match(missing.stderr.toString(), /^bitdrop: cannot read .*nope: no such file\n$/);

  const status = JSON.parse((await exec(process.execPath, [CLI, 'status', '--data-dir', d.dataDir, '--json'])).stdout);
  t.match(status, { files: 2, listen: d.url, dataDir: d.dataDir, payments: { mode: 'free' }, tor: { mode: 'off' } });
  const text = (await exec(process.execPath, [CLI, 'status', '--data-dir', d.dataDir])).stdout;
  t.match(text, /^  Files +2 files \(/m, "bitdrop status in sections with aligned columns");
  t.match(d.output(), /storing\s+\S+\s+\(0 files/);
  t.match(d.output(), /not configured yet: /);

  t.equal(await d.stop(), 0, 'SIGTERM exits 0');
  t.match(d.output(), /SIGTERM, stopping/);
  const after = spawnSync(process.execPath, [CLI, 'status', '--data-dir', d.dataDir]);
  t.equal(after.status, 1);
  t.match(after.stderr.toString(), /no bitdrop is running with data dir/);
});

t.test('bad flags stop start-up with one line and exit code 2', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'start', '--data-dir', tmpDir(), '--max-upload-bytes', 'lots', '--tor', 'off']);
  t.equal(r.status, 2);
  t.equal(r.stderr.toString(), 'bitdrop: --max-upload-bytes: "lots" is not a size (try 1048576, 100MB or 5GiB)\n');
  const env = spawnSync(process.execPath, [CLI, 'start', '--tor', 'off'], { env: { ...process.env, BITDROP_LISTEN: '8.8.8.8:80', BITDROP_DATA_DIR: tmpDir() } });
  t.equal(env.status, 2);
  t.match(env.stderr.toString(), /^bitdrop: --listen 8\.8\.8\.8:80 is not a loopback address/);
});

t.test('bitdrop start with no prices configured runs pay per use on the devnet and says how to pay', async (t) => {
  const d = await startDaemon({ paid: true });
  t.teardown(() => d.stop());
  t.match(d.output(), /^prices\s+2 sats per GiB per day stored, 10 sats per GiB sent \(pay per use\)$/m);
  t.match(d.output(), /^payments\s+SIMULATED on an embedded regtest devnet .*nothing real moves/m);
  t.match(d.output(), /pay a file: (npx )?bitdrop devnet pay <file URL> <sats> --data-dir .*bitdrop devnet mine/);
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(tmpDir(), 1000), `${d.url}/`));
  t.equal(up.state, 'awaiting payment');
  t.equal(up.amountDue, 546, 'a small file costs the smallest payable amount');
  const facts = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${d.url}/`));
  t.match(facts, { storagePrice: 2, transferPrice: 10 });
});

t.test('devnet commands act like a wallet and a miner', async (t) => {
  const d = await startDaemon({ paid: true, args: ['--storage-price', '1000000', '--transfer-price', '2048000'] });
  t.teardown(() => d.stop());
  t.match(d.output(), /payments\s+SIMULATED on an embedded regtest devnet/);
  const work = tmpDir();
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 1024 * 1024, 'p.bin'), `${d.url}/`));
  const txid = (await exec(process.execPath, [CLI, 'devnet', 'pay', up.url, String(up.amountDue), '--data-dir', d.dataDir])).stdout.trim();
  t.match(txid, /^[0-9a-f]{64}$/);
  const mined = (await exec(process.execPath, [CLI, 'devnet', 'mine', '2', '--data-dir', d.dataDir])).stdout.trim().split('\n');
  t.equal(mined.length, 2);
  let state = '';
  for (let i = 0; i < 100 && state !== 'active'; i++) {
    state = JSON.parse(await curl('-H', 'Accept: application/json', up.url)).state;
    if (state !== 'active') await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(state, 'active', 'paid through the CLI');
  const reorg = (await exec(process.execPath, [CLI, 'devnet', 'reorg', '1', '--data-dir', d.dataDir])).stdout.trim().split('\n');
  t.equal(reorg.length, 2, 'a reorg of depth 1 mines 2 new blocks');
  const bad = spawnSync(process.execPath, [CLI, 'devnet', 'pay', up.address, 'ten', '--data-dir', d.dataDir]);
  t.equal(bad.status, 1);
  t.match(bad.stderr.toString(), /^bitdrop: "ten" is not a whole number of satoshis\n$/);
  const nonsense = spawnSync(process.execPath, [CLI, 'devnet', 'pay', 'nonsense', '1000', '--data-dir', d.dataDir]);
  t.equal(nonsense.status, 1);
  t.equal(nonsense.stderr.toString(), 'bitdrop: "nonsense" is neither a file\'s URL (http://…/ID) nor a devnet address (bcrt1…)\n', 'errors in people\'s words');

  // pay and mine say what they did to which file
  const next = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 1000, 'said.txt'), `${d.url}/`));
  const paid = await exec(process.execPath, [CLI, 'devnet', 'pay', next.url, String(next.amountDue), '--data-dir', d.dataDir]);
  t.match(paid.stdout, /^[0-9a-f]{64}\n$/, 'stdout: the txid, for scripts');
  t.match(paid.stderr, new RegExp(`^file “said\\.txt” \\(${next.id}\\): paid ${next.amountDue.toLocaleString('en-US')} sats \\(transaction [0-9a-f]{64}\\), now pending; confirm it with: bitdrop devnet mine\n$`));
  const mined1 = await exec(process.execPath, [CLI, 'devnet', 'mine', '--data-dir', d.dataDir]);
  t.match(mined1.stdout, /^[0-9a-f]{64}\n$/);
  t.match(mined1.stderr, new RegExp(`^mined 1 block\nfile “said\\.txt” \\(${next.id}\\): ${next.amountDue.toLocaleString('en-US')} sats pending → confirmed, now active\n$`));
});

t.test('bitdrop upload of several files makes a drop; --help writes durations and sizes as people do', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const files = ['a.txt', 'b.txt', 'c.txt'].map((n, i) => randomFile(work, 1000 * (i + 1), n));
  const drop = JSON.parse((await exec(process.execPath, [CLI, 'upload', ...files, '--url', d.url, '--json'])).stdout);
  t.same(drop.files.map((f: { name: string }) => f.name), ['a.txt', 'b.txt', 'c.txt'], 'one drop of three files');
  t.equal(drop.size, 6000);
  const text = (await exec(process.execPath, [CLI, 'upload', ...files.slice(0, 2), '--url', d.url])).stdout;
  t.match(text, /^http:\/\/\S+\/[A-Za-z0-9_-]{22}\nall: +\S+\.zip\n/, 'its page first, then the zip');
  t.match(d.output(), /^uploads +up to 5 GiB$/m, 'the banner writes sizes as people do');

  const help = (await exec(process.execPath, [CLI, 'start', '--help'])).stdout.replace(/\s+/g, ' ');
  t.match(help, /--grace <value> how long a negative balance is kept before deletion \(7d, 12h …\) \(default 7d\)/, 'as README says');
  t.match(help, /--unpaid-ttl <value> how long an unpaid upload is kept \(default 24h\)/);
  t.match(help, /--max-upload-bytes <value> .*\(default 5GiB\)/);
  t.match(help, /--onion-pow <on\|off> .*\(default on\)/);
  t.notMatch(help, /default (true|false|\d{6,})/, 'no booleans or raw milliseconds');
});

t.test('bitdrop auth add / list / remove manage private-drop clients', async (t) => {
  const dataDir = tmpDir();
  const add = (await exec(process.execPath, [CLI, 'auth', 'add', 'alice', '--data-dir', dataDir])).stdout;
  t.match(add, /^added alice; give this key to its Tor Browser user/);
  t.match(add, /\n[A-Z2-7]{52}\n/, 'the base32 x25519 private key Tor Browser asks for');
  t.match((await exec(process.execPath, [CLI, 'auth', 'list', '--data-dir', dataDir])).stdout, /^alice/m);
  const dup = spawnSync(process.execPath, [CLI, 'auth', 'add', 'alice', '--data-dir', dataDir]);
  t.equal(dup.status, 1, 'a name is added once');
  t.match(dup.stderr.toString(), /^bitdrop: .*alice/);
  await exec(process.execPath, [CLI, 'auth', 'remove', 'alice', '--data-dir', dataDir]);
  t.match((await exec(process.execPath, [CLI, 'auth', 'list', '--data-dir', dataDir])).stdout, /no clients: the onion is public/);
});
