// Issue 24, item 5: fair upload admission. 50 uploads that send a chunk less one byte and stop (each holds
// or waits for one of the 16 upload slots) and 500 idle connections are held open; a 1 MiB upload must
// still finish within 5 s (before, it waited until the stalled holders were cut after 10 s of silence, and
// their slots often went to other stalled uploads: 9–30 s), and the daemon's peak RSS stays ≤ 256 MiB.

import t from 'tap';
import fs from 'fs';
import net from 'net';
import { curlStatus, randomFile, startDaemon, tmpDir } from './helpers/daemon';
import { until, MiB } from './helpers/paid-node';

const status = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

t.test('a 1 MiB upload finishes in < 5 s beside 50 stalled uploads and 500 idle connections', async (t) => {
  const d = await startDaemon();
  const work = tmpDir('bitdrop-test-', t);
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await d.stop();
  });
  const port = Number(new URL(d.url).port);
  const pid = d.proc.pid!;
  const connect = () => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
    return s;
  };
  const idle: net.Socket[] = [];
  for (let i = 0; i < 500; i++) idle.push(connect());
  await until(() => idle.every((s) => !s.connecting), 30_000, '500 idle connections open');
  const file = randomFile(work, MiB, 'probe.bin');
  const part = Buffer.alloc(4 * MiB - 1, 7);
  const stalled: net.Socket[] = [];
  for (let i = 0; i < 50; i++) {
    const s = connect();
    s.write(`PUT /stalled-${i}.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${64 * MiB}\r\n\r\n`);
    s.write(part); // a chunk less one byte, then silence
    stalled.push(s);
  }
  // The probe starts while the siege stands: the slots are taken (at least 16 stalled uploads handed all their
  // bytes over) and the stalled uploads waiting for them are still connected.
  await until(() => stalled.filter((s) => s.writableLength === 0).length >= 16, 60_000, '16 stalled uploads sent their bytes');
  const standing = stalled.filter((s) => !s.destroyed).length;
  t.ok(standing >= 34, `the siege stands when the 1 MiB upload starts: ${standing} of 50 stalled uploads connected (16 may have yielded)`);
  const started = Date.now();
  const probe = await curlStatus('-o', '/dev/null', '-T', file, `${d.url}/`);
  const seconds = (Date.now() - started) / 1000;
  t.equal(probe.status, 201, 'the 1 MiB upload is stored');
  t.ok(seconds < 5, `it took ${seconds.toFixed(2)} s beside 50 stalled uploads and 500 idle connections (< 5 s)`);
  const peak = status(pid, 'VmHWM');
  t.ok(peak <= 256, `the daemon's peak RSS: ${peak.toFixed(0)} MiB (≤ 256)`);
  t.ok(idle.filter((s) => !s.destroyed).length >= 450, 'the idle connections were held meanwhile');
});

t.test('uploads that trickle a byte every half second do not keep the slots from a 1 MiB upload', async (t) => {
  // Found re-reading the admission as a hostile client: only silence counted, so a byte now and then kept a
  // slot for ever (the server's idle timeout restarts with every byte too). A holder now has to receive
  // 16 KiB/s while others wait.
  const d = await startDaemon();
  const work = tmpDir('bitdrop-test-', t);
  const sockets: net.Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  t.teardown(async () => {
    for (const x of timers) clearInterval(x);
    for (const s of sockets) s.destroy();
    await d.stop();
  });
  const port = Number(new URL(d.url).port);
  for (let i = 0; i < 20; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
    s.write(`PUT /trickle-${i}.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${64 * MiB}\r\n\r\n`);
    s.write(Buffer.alloc(1000, 1));
    timers.push(setInterval(() => s.write(Buffer.alloc(1, 1)), 500));
  }
  await until(() => sockets.every((s) => !s.connecting && s.writableLength === 0), 30_000, 'tricklers connected');
  await new Promise((r) => setTimeout(r, 1000));
  const started = Date.now();
  const probe = await curlStatus('-o', '/dev/null', '--max-time', '30', '-T', randomFile(work, MiB, 'probe.bin'), `${d.url}/`);
  const seconds = (Date.now() - started) / 1000;
  t.equal(probe.status, 201, 'the 1 MiB upload is stored');
  t.ok(seconds < 5, `it took ${seconds.toFixed(2)} s beside 20 uploads trickling a byte every 0.5 s (< 5 s)`);
});
