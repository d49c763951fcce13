// The data dir belongs to one daemon and to its user only.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { spawnSync } from 'child_process';
import { CLI, curl, randomFile, startDaemon, tmpDir } from './helpers/daemon';

t.test('a second daemon on the same data dir names the first and touches nothing', async (t) => {
  const d = await startDaemon();
  t.teardown(async () => {
    await d.stop();
    fs.rmSync(d.dataDir, { recursive: true, force: true });
  });
  const runtime = path.join(d.dataDir, 'bitdrop.json');
  const before = fs.readFileSync(runtime, 'utf8');
  const second = spawnSync(process.execPath, [CLI, 'start', '--data-dir', d.dataDir, '--listen', '127.0.0.1:0', '--tor', 'off'], { timeout: 30_000 });
  t.equal(second.status, 1, 'the second daemon exits 1');
  t.equal(second.stderr.toString(),
    `bitdrop: another bitdrop (pid ${d.proc.pid}) is using ${d.dataDir}; stop it first, choose another --data-dir, or wait with --standby\n`, 'one line naming the pid and the dir');
  t.equal(fs.readFileSync(runtime, 'utf8'), before, "the running daemon's bitdrop.json is untouched");
  const status = spawnSync(process.execPath, [CLI, 'status', '--data-dir', d.dataDir, '--json'], { timeout: 30_000 });
  t.equal(status.status, 0, 'bitdrop status still finds the running daemon');
  t.equal(JSON.parse(status.stdout.toString()).pid, d.proc.pid);
});

t.test('an existing 0755 data dir and everything bitdrop writes end up owner-only (0700 dirs, 0600 files)', async (t) => {
  const dataDir = path.join(tmpDir(), 'data');
  fs.mkdirSync(dataDir, { mode: 0o755 });
  fs.chmodSync(dataDir, 0o755);
  // as an older bitdrop (or a hand) left it
  fs.writeFileSync(path.join(dataDir, 'admin-token'), 'old-token\n', { mode: 0o644 });
  fs.chmodSync(path.join(dataDir, 'admin-token'), 0o644);
  const d = await startDaemon({ dataDir, paid: true, args: ['--storage-price', '1000000', '--transfer-price', '2048000'] });
  t.teardown(async () => {
    await d.stop();
    fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
  });
  const work = tmpDir('bitdrop-test-', t);
  await curl('-f', '-T', randomFile(work, 5 * 1024 * 1024, 'up.bin'), `${d.url}/`);
  const open: string[] = [];
  let files = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      const mode = fs.statSync(full).mode & 0o777;
      if (e.isDirectory()) {
        if (mode !== 0o700) open.push(`${path.relative(dataDir, full)}/ ${mode.toString(8)}`);
        walk(full);
      } else {
        files++;
        if (mode & 0o077) open.push(`${path.relative(dataDir, full)} ${mode.toString(8)}`);
      }
    }
  };
  t.equal(fs.statSync(dataDir).mode & 0o777, 0o700, 'the data dir is tightened to 0700');
  walk(dataDir);
  t.ok(files > 10, `${files} files looked at`);
  t.ok(fs.existsSync(path.join(dataDir, 'devnet', 'devnet.json')), 'the devnet (RPC cookie and its info) is among them');
  t.ok(fs.readdirSync(path.join(dataDir, 'db')).some((f) => f.endsWith('.log')), 'LevelDB files are among them');
  t.same(open, [], 'nothing readable or listable by other users');
});
