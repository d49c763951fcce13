// Uploads from clients that misbehave: dropped mid-body, stalled by the dozen, half-closed after the body.
// A real daemon (build/bin/bitdrop.js); memory is read from /proc, chunk files from its data dir.

import t from 'tap';
import fs from 'fs';
import net from 'net';
import path from 'path';
import { spawn } from 'child_process';
import { chunkFiles, curl, curlStatus, randomFile, startDaemon, tmpDir } from './helpers/daemon';
import { until, MiB } from './helpers/paid-node';

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmpChunks = (dataDir: string) => {
  const dir = path.join(dataDir, 'chunks', 'tmp');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
};

t.test('a multipart upload dropped mid-body leaves no chunk file and frees its memory at once', async (t) => {
  const d = await startDaemon();
  const work = tmpDir();
  t.teardown(async () => {
    await d.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(d.dataDir, { recursive: true, force: true });
  });
  const file = randomFile(work, 64 * MiB, 'big.bin');
  for (let round = 0; round < 3; round++) {
    const c = spawn('curl', ['-sS', '--limit-rate', '4M', '-F', `file=@${file}`, `${d.url}/`], { stdio: 'ignore' });
    const exited = new Promise((r) => c.once('exit', r));
    t.teardown(() => { if (c.exitCode === null) c.kill('SIGKILL'); });
    await until(() => chunkFiles(d.dataDir).length >= 2, 20_000, 'chunks being written');
    const during = chunkFiles(d.dataDir).length;
    c.kill('SIGKILL');
    await exited;
    const left = await until(async () => (chunkFiles(d.dataDir).length === 0 && tmpChunks(d.dataDir).length === 0 ? 'none' : ''), 30_000, 'chunks removed')
      .catch(() => `${chunkFiles(d.dataDir).length} chunk files`);
    t.equal(left, 'none', `round ${round + 1}: ${during} chunk files written before curl was killed; none left after`);
  }
  const ok = await curlStatus('-F', `file=@${randomFile(work, 5 * MiB, 'after.bin')}`, `${d.url}/`);
  t.equal(ok.status, 201, 'the next upload is served (slots were freed)');
});

t.test('a PUT whose client half-closes after the body (nc -N) gets its answer', async (t) => {
  const d = await startDaemon();
  t.teardown(async () => {
    await d.stop();
    fs.rmSync(d.dataDir, { recursive: true, force: true });
  });
  const port = Number(new URL(d.url).port);
  const answer = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`PUT /half.txt HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 12\r\n\r\n`);
      s.end('hello, half\n'); // the body, then FIN: this side will send nothing more
    });
    let out = '';
    s.on('data', (b) => { out += b; });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    setTimeout(() => { s.destroy(); resolve(out); }, 10_000).unref();
  });
  t.match(answer, /^HTTP\/1\.1 201 /, 'answered 201 after the half-close');
  t.match(answer, /\r\nX-Delete-Token: \S+\r\n/, 'with the delete token');
  const url = /\r\n\r\n(http:\/\/\S+)\n/.exec(answer)?.[1];
  t.ok(url, `the file's URL is in the body: ${url}`);
  t.equal(await curl('-f', url!), 'hello, half\n', 'and the file is there');
});

t.test('50 stalled uploads: memory stays bounded and is given back; other uploads still get through', async (t) => {
  const d = await startDaemon();
  const work = tmpDir();
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await d.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(d.dataDir, { recursive: true, force: true });
  });
  const port = Number(new URL(d.url).port);
  const pid = d.proc.pid!;
  // warm up: one upload and its slots, so the baseline includes what any busy daemon holds
  await curl('-f', '-T', randomFile(work, 12 * MiB, 'warm.bin'), `${d.url}/`);
  await sleep(500);
  const baseline = rssMiB(pid);
  const part = Buffer.alloc(3 * MiB, 7);
  for (let i = 0; i < 50; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
    s.write(`PUT /stalled-${i}.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${64 * MiB}\r\n\r\n`);
    s.write(part); // 3 MiB of 64, then silence
  }
  await sleep(3000);
  const stalled = rssMiB(pid);
  t.ok(stalled - baseline < 90, `RSS with 50 stalled uploads: ${stalled.toFixed(0)} MiB (baseline ${baseline.toFixed(0)} MiB, +${(stalled - baseline).toFixed(0)})`);

  const started = Date.now();
  const ok = await curlStatus('-T', randomFile(work, 8 * MiB, 'through.bin'), `${d.url}/`);
  t.equal(ok.status, 201, `an upload among 50 stalled ones is served (after ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const during = rssMiB(pid);
  t.ok(during - baseline < 90, `RSS after it: ${during.toFixed(0)} MiB`);

  for (const s of sockets) s.destroy();
  await sleep(3000);
  const after = rssMiB(pid);
  t.ok(after - baseline < 40, `RSS after the stalled uploads are cut: ${after.toFixed(0)} MiB (baseline ${baseline.toFixed(0)} MiB)`);
  t.equal(chunkFiles(d.dataDir).length, 5, 'only the chunks of the two stored files remain (3 + 2)');
});
