// Issue 24, items 1–4: names that cannot be zip entries (or Windows names) are renamed on the way in, one
// test per class; a drop's zip answers HEAD as GET would and serves ranges; a refused drop leaves nothing.

import t from 'tap';
import fs from 'fs';
import http from 'http';
import path from 'path';
import { safeName, uniqueName } from '../lib/http/filenames';
import { startDaemon, curl, curlStatus, exec, randomFile, sha256File, tmpDir } from './helpers/daemon';

t.test('safeName: each class of name a zip or a Windows disk cannot hold', async (t) => {
  // drive letters: "C:x" is a drive-relative path (yazl refused it as absolute after the download was paid)
  for (const raw of ['C:evil.txt', 'c:evil.txt', 'Z:', 'a:b.txt', 'notes:stream']) {
    const s = safeName(raw);
    t.notMatch(s, /:/, `${JSON.stringify(raw)} → ${JSON.stringify(s)} has no colon`);
    t.notMatch(s, /^[A-Za-z]:/, 'nor a drive letter');
  }
  t.equal(safeName('C:evil.txt'), 'C_evil.txt');
  for (const raw of ['a<b>.txt', 'a|b?.txt', 'a*"b.txt']) t.notMatch(safeName(raw), /[<>|?*"]/, `${raw}: no character Windows forbids`);
  // names of only dots and spaces
  for (const raw of [' . . ', '.', '..', '...', '. .', ' ', '  .  .  ', '\u0000. .', '..\u202e.']) {
    t.equal(safeName(raw), 'file', `${JSON.stringify(raw)} is no name: "file"`);
  }
  t.equal(safeName('report.pdf. . '), 'report.pdf', 'trailing dots and spaces go (Windows drops them)');
  t.equal(safeName(' .hidden'), 'hidden', 'a leading dot goes');
  // reserved device names, with or without an extension, in any case
  for (const raw of ['CON', 'con.txt', 'NUL', 'nul.tar.gz', 'PRN.doc', 'AUX', 'COM1', 'com9.log', 'LPT1.txt', 'lpt3', 'COM¹']) {
    const s = safeName(raw);
    t.equal(s, `_${raw}`, `${raw} → ${s}`);
  }
  for (const raw of ['console.txt', 'nullable.js', 'COM10', 'auxiliary']) t.equal(safeName(raw), raw, `${raw} is an ordinary name`);
  // names differing only in case inside one drop
  const used = new Set<string>();
  t.same(['Readme', 'README', 'readme', 'a.TXT', 'A.txt'].map((n) => uniqueName(n, used)), ['Readme', 'README (2)', 'readme (3)', 'a.TXT', 'A (2).txt']);
  // long names stay within 200 bytes and do not end in a dot after the cut
  const long = safeName('x'.repeat(195) + '.....' + 'y'.repeat(100));
  t.ok(Buffer.byteLength(long) <= 200 && !/[. ]$/.test(long), 'a long name is cut cleanly');
  t.equal(safeName(safeName(' . CON.txt. ')), safeName(' . CON.txt. '), 'safeName of a safe name changes nothing');
});

t.test('a drop of hostile names: stored renamed, the zip unpacks, HEAD and Range on the zip', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const big = randomFile(work, 5 * 1024 * 1024 + 7, 'big.bin');
  const small = randomFile(work, 1000, 'small.bin');
  const names = ['C:evil.txt', ' . . ', 'CON.txt', 'Readme', 'README', 'nul'];
  const args = names.flatMap((n, i) => ['-F', `file=@${i === 0 ? big : small};filename=${n}`]);
  const drop = JSON.parse(await curl('-f', '-H', 'Accept: application/json', ...args, `${d.url}/`));
  t.same(drop.files.map((f: { name: string }) => f.name), ['C_evil.txt', 'file', '_CON.txt', 'Readme', 'README (2)', '_nul'],
    'each name renamed on the way in');
  const one = await curl('-sS', '-D', '-', '-o', '/dev/null', drop.files[1].url);
  t.match(one, /content-disposition: attachment; filename="file"/i, 'a name of dots and spaces never reaches Content-Disposition');

  const zip = path.join(work, 'all.zip');
  const get = await curl('-D', '-', '-o', zip, drop.archive);
  t.match(get, /^HTTP\/1\.1 200 /, 'the zip answers 200 (was 500 for C:evil.txt)');
  t.match(get, /accept-ranges: bytes/i);
  const length = Number(/content-length: (\d+)/i.exec(get)![1]);
  t.equal(fs.statSync(zip).size, length, 'exact Content-Length');
  await exec('unzip', ['-tq', zip]);
  t.same((await exec('unzip', ['-Z1', zip])).stdout.trim().split('\n'), drop.files.map((f: { name: string }) => f.name));
  const py = await exec('python3', ['-c', 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.namelist()))', zip]);
  t.equal(py.stdout.trim(), '6', "Python's zipfile reads it and every CRC matches");
  await exec('unzip', ['-q', '-d', path.join(work, 'x'), zip]);
  t.equal(await sha256File(path.join(work, 'x', 'C_evil.txt')), await sha256File(big));
});

t.test("a drop's zip: HEAD answers what GET would; Range, If-Range and 416 as for a file", async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const big = randomFile(work, 5 * 1024 * 1024 + 7, 'big.bin');
  const small = randomFile(work, 1000, 'small.bin');
  const drop = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-F', `file=@${big}`, '-F', `file=@${small}`, '-F', `file=@${small};filename=c.txt`, `${d.url}/`));
  const zip = path.join(work, 'all.zip');
  const get = await curl('-D', '-', '-o', zip, drop.archive);
  t.match(get, /accept-ranges: bytes/i, 'GET says Accept-Ranges');
  const length = Number(/content-length: (\d+)/i.exec(get)![1]);
  await exec('unzip', ['-tq', zip]);

  const head = await curl('-I', drop.archive);
  t.match(head, /^HTTP\/1\.1 200 /, 'HEAD answers 200 (was 204)');
  t.match(head, /content-type: application\/zip/i);
  t.match(head, new RegExp(`content-length: ${length}\\r`, 'i'), 'with the Content-Length GET sends');
  t.match(head, /accept-ranges: bytes/i);
  const etag = /etag: (\S+)/i.exec(head)![1];

  // Ranges: pieces cut inside a local header, inside file data, inside a descriptor and the central
  // directory put back together are the whole zip; a tail alone (the central directory) as well.
  const whole = fs.readFileSync(zip);
  const cuts = [0, 17, 40, 3 * 1024 * 1024, 5 * 1024 * 1024 + 40, length - 200, length - 10, length];
  const pieces: Buffer[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const out = path.join(work, `piece-${i}`);
    const h = await curl('-D', '-', '-o', out, '-r', `${cuts[i]}-${cuts[i + 1] - 1}`, drop.archive);
    t.match(h, /^HTTP\/1\.1 206 /, `bytes ${cuts[i]}-${cuts[i + 1] - 1}: 206`);
    t.match(h, new RegExp(`content-range: bytes ${cuts[i]}-${cuts[i + 1] - 1}/${length}`, 'i'));
    pieces.push(fs.readFileSync(out));
  }
  t.ok(Buffer.concat(pieces).equals(whole), 'the ranges put together are the zip, byte for byte');
  const resumed = path.join(work, 'resumed.zip');
  fs.writeFileSync(resumed, whole.subarray(0, 4 * 1024 * 1024));
  await curl('-f', '-C', '-', '-o', resumed, drop.archive);
  t.ok(fs.readFileSync(resumed).equals(whole), 'curl -C - resumes a cut zip');
  const again = path.join(work, 'again.zip');
  await curl('-f', '-o', again, drop.archive);
  t.ok(fs.readFileSync(again).equals(whole), 'the same drop always gives the same bytes');
  const bad = await curlStatus('-D', '-', '-o', '/dev/null', '-r', `${length}-`, drop.archive);
  t.equal(bad.status, 416, 'a range past the end: 416');
  t.match(bad.body, new RegExp(`content-range: bytes \\*/${length}`, 'i'));
  const stale = await curl('-D', '-', '-o', '/dev/null', '-r', '0-9', '-H', 'If-Range: "zip-stale"', drop.archive);
  t.match(stale, /^HTTP\/1\.1 200 /, 'If-Range with another ETag: the whole zip');
  t.match(await curl('-D', '-', '-o', '/dev/null', '-r', '0-9', '-H', `If-Range: ${etag}`, drop.archive), /^HTTP\/1\.1 206 /);
  const headRange = await curl('-I', '-r', '100-199', drop.archive);
  t.match(headRange, /^HTTP\/1\.1 206 /, 'HEAD with a Range answers as GET would');
  t.match(headRange, /content-length: 100\r/i);
});

/** A multipart body of `count` files of `size` bytes each, written as fast as the daemon reads it. */
function postFiles(url: string, count: number, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const boundary = 'b0undary24';
    const req = http.request(url, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    const body = Buffer.alloc(size, 7);
    (async () => {
      for (let i = 0; i < count && !req.destroyed; i++) {
        const part = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f${i}.bin"\r\n\r\n`),
          body, Buffer.from('\r\n')]);
        body.writeUInt32BE(i, 0);
        if (!req.write(part)) {
          await new Promise<void>((r) => {
            const done = () => { req.off('drain', done); req.off('close', done); r(); };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      req.end(`--${boundary}--\r\n`);
    })().catch(reject);
  });
}

t.test('a drop refused for too many files leaves no file stored', async (t) => {
  const dataDir = tmpDir('bitdrop-test-', t);
  const d = await startDaemon({ dataDir });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : d.stop()));
  // 1001 files: the member being stored when the 1001st arrives used to commit after the drop's files were
  // removed (one file left per refused post on the code before issue 24).
  for (let round = 0; round < 2; round++) t.equal(await postFiles(`${d.url}/`, 1001, 4096), 413, `post ${round + 1}: 413`);
  await d.stop();
  stopped = true;
  const { Store } = await import('../lib/store');
  const store = await Store.open({ dir: dataDir });
  let left = 0;
  for await (const m of store.manifests()) if (m) left++;
  await store.close();
  t.equal(left, 0, 'no member of a refused drop is stored');
});
