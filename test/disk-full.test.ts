// Disk full: the upload is refused with 507, nothing of it stays, and what was stored before is intact.
// The data dir lives on a small tmpfs (mounting needs root, as in CI).

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { execFileSync } from 'child_process';
import { startDaemon, curl, curlStatus, randomFile, sha256File, tmpDir, chunkFiles } from './helpers/daemon';

const root = process.getuid?.() === 0;
if (!root && process.env.CI !== 'true') {
  t.skip('mounting a small tmpfs needs root (CI runs as root and runs this test)');
} else {
  t.test('an upload that fills the disk answers 507 and loses nothing', async (t) => {
    const mnt = tmpDir('bitdrop-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
    t.teardown(() => { try { execFileSync('umount', ['-l', mnt]); } catch { /* already gone */ } });
    const dataDir = path.join(mnt, 'data');
    const d = await startDaemon({ dataDir });
    t.teardown(() => d.stop());
    const work = tmpDir();
    const small = randomFile(work, 3 * 1024 * 1024, 'small.bin');
    const kept = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', small, `${d.url}/`));
    const chunksBefore = chunkFiles(dataDir).length;
    const big = randomFile(work, 40 * 1024 * 1024, 'big.bin');
    const r = await curlStatus('-T', big, `${d.url}/`);
    t.equal(r.status, 507, 'out of space');
    t.match(r.body, /^507 Insufficient Storage: the server is out of storage space; nothing was stored/);
    t.equal(chunkFiles(dataDir).length, chunksBefore, 'no chunk of the refused upload stays');
    const out = path.join(work, 'small.out');
    await curl('-f', '-o', out, `${d.url}/${kept.id}`);
    t.equal(await sha256File(out), await sha256File(small), 'the earlier file is intact');
    const again = await curlStatus('-o', '/dev/null', '-T', randomFile(work, 2 * 1024 * 1024, 'fresh.bin'), `${d.url}/`);
    t.equal(again.status, 201, 'space was given back: a small upload works again');
    fs.rmSync(work, { recursive: true, force: true });
  });
}
