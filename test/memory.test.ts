// Streaming both ways: the daemon's memory stays flat for a 4 GiB upload and for 64 parallel downloads.
// (Peak RSS is read from /proc; no timing is asserted.)

import t from 'tap';
import fs from 'fs';
import http from 'http';
import { startDaemon, randomFile, tmpDir } from './helpers/daemon';

const MiB = 1024 * 1024;
const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

t.test('a 4 GiB upload and 64 parallel downloads keep peak RSS under 200 MiB', async (t) => {
  const d = await startDaemon({ args: ['--max-upload-bytes', '5GiB'] });
  t.teardown(() => d.stop());
  const size = 4 * 1024 * MiB;
  // Zeros: every chunk is the same, so the disk holds one chunk while the daemon still streams,
  // hashes and dedups all 4 GiB.
  const zeros = Buffer.alloc(MiB);
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${d.url}/zeros.bin`, { method: 'PUT', headers: { 'Content-Length': size } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += zeros.length;
        if (!req.write(zeros)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
  t.equal(status, 201, '4 GiB accepted');
  const afterUpload = peakRssMiB(d.proc.pid!);
  t.ok(afterUpload < 200, `peak RSS after a 4 GiB upload: ${afterUpload.toFixed(0)} MiB`);

  const file = randomFile(tmpDir(), 64 * MiB, 'dl.bin');
  const url = await new Promise<string>((resolve, reject) => {
    const req = http.request(`${d.url}/dl.bin`, { method: 'PUT', headers: { 'Content-Length': 64 * MiB } }, (res) => {
      res.resume();
      resolve(res.headers.location!);
    });
    req.on('error', reject);
    fs.createReadStream(file).pipe(req);
  });
  const sizes = await Promise.all(Array.from({ length: 64 }, () => new Promise<number>((resolve, reject) => {
    http.get(url, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; });
      res.on('end', () => resolve(n));
    }).on('error', reject);
  })));
  t.ok(sizes.every((n) => n === 64 * MiB), '64 downloads complete');
  const afterDownloads = peakRssMiB(d.proc.pid!);
  t.ok(afterDownloads < 200, `peak RSS after 64 parallel downloads of 64 MiB: ${afterDownloads.toFixed(0)} MiB`);
});
