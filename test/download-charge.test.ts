// Issue 24, item 6: a download cut early is charged for what reached the client (what its TCP stack
// acknowledged), within one chunk, not for what was handed to our socket and read ahead (100 downloads cut
// early received 5.5 MB and were charged for 38.9 MB before). A client with a small receive buffer reads
// a known number of bytes, stops reading, and hangs up; the balance says what it was charged.

import t from 'tap';
import { spawn } from 'child_process';
import { CLI, curl, exec, randomFile, startDaemon, tmpDir } from './helpers/daemon';
import { until, MiB } from './helpers/paid-node';

const PRICES = ['--storage-price', '0', '--transfer-price', '2048000']; // 2000 sats per MiB sent
const SATS_PER_MIB = 2000;
const SIZE = 32 * MiB;
/** a download's write to the socket (CACHED_WRITE, lib/store/reader.ts): the tolerance of the rule */
const CHUNK = MiB;

// Reads the answer to GET `path` until `want` body bytes arrived, stops reading for 1.5 s, then resets the
// connection (as a client that closes with unread bytes does). Prints the body bytes it received.
const CLIENT = `
import socket, struct, sys, time
host, port, path, want = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect((host, port))
s.sendall(('GET %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' % (path, host)).encode())
buf = b''
while b'\\r\\n\\r\\n' not in buf:
    buf += s.recv(65536)
head, body = buf.split(b'\\r\\n\\r\\n', 1)
assert head.startswith(b'HTTP/1.1 200'), head
got = len(body)
while got < want:
    d = s.recv(min(65536, want - got))
    if not d:
        break
    got += len(d)
time.sleep(1.5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.close()
print(got)
`;

const json = async (url: string) => JSON.parse(await curl('-H', 'Accept: application/json', url));

t.test('downloads cut at known points are charged within one chunk of what the client received', async (t) => {
  const dataDir = tmpDir('bitdrop-test-', t);
  const work = tmpDir('bitdrop-test-', t);
  const d = await startDaemon({ dataDir, args: PRICES, paid: true });
  t.teardown(() => d.stop());
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, SIZE, 'big.bin'), `${d.url}/`));
  await exec(process.execPath, [CLI, 'devnet', 'pay', up.address, String(10 * 32 * SATS_PER_MIB), '--data-dir', dataDir]);
  await exec(process.execPath, [CLI, 'devnet', 'mine', '1', '--data-dir', dataDir]);
  const fileUrl = `${d.url}/${up.id}`;
  await until(async () => (await json(fileUrl)).state === 'active', 20_000, 'active');
  const { hostname, port } = new URL(d.url);
  const results: string[] = [];
  for (const cut of [1 * MiB + 12_345, 6 * MiB, 13 * MiB + 777, 24 * MiB]) {
    const before = (await json(fileUrl)).balance as number;
    const got = await new Promise<number>((resolve, reject) => {
      const p = spawn('python3', ['-c', CLIENT, hostname, port, `/${up.id}`, String(cut)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (b) => { out += b; });
      p.once('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`client exited ${code}`))));
    });
    t.equal(got, cut, `the client received ${cut} bytes`);
    // The whole download is debited up front and what was not received comes back when it settles.
    const after = await until(async () => {
      const b = (await json(fileUrl)).balance as number;
      return b > before - SIZE / MiB * SATS_PER_MIB ? b : undefined;
    }, 15_000, 'the cut download settled');
    const charged = ((before - after) / SATS_PER_MIB) * MiB;
    results.push(`${(got / MiB).toFixed(2)} MiB received, ${(charged / MiB).toFixed(2)} charged`);
    t.ok(Math.abs(charged - got) <= CHUNK, `cut at ${(got / MiB).toFixed(2)} MiB: charged ${(charged / MiB).toFixed(2)} MiB (within ${CHUNK / MiB} MiB)`);
  }
  t.comment(results.join('; '));

  // A drop's zip: a range is charged for the file bytes in it (headers are free), and a cut zip download
  // for the file bytes that reached the client.
  const a = randomFile(work, 3 * MiB, 'a.bin');
  const b = randomFile(work, 3 * MiB, 'b.bin');
  const drop = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-F', `file=@${a}`, '-F', `file=@${b}`, `${d.url}/`));
  await exec(process.execPath, [CLI, 'devnet', 'pay', drop.address, String(4 * 6 * SATS_PER_MIB), '--data-dir', dataDir]);
  await exec(process.execPath, [CLI, 'devnet', 'mine', '1', '--data-dir', dataDir]);
  const dropUrl = drop.url as string;
  await until(async () => (await json(dropUrl)).state === 'active', 20_000, 'the drop is active');
  const zipPath = new URL(drop.archive).pathname;
  let before = (await json(dropUrl)).balance as number;
  // bytes 0 … 1 MiB-1: a local header of 35 bytes, then file bytes
  await curl('-f', '-o', '/dev/null', '-r', `0-${MiB - 1}`, drop.archive);
  let after = (await json(dropUrl)).balance as number;
  t.ok(Math.abs((before - after) - SATS_PER_MIB * (MiB - 35) / MiB) <= 1, `a 1 MiB range of the zip: ${before - after} sats, its file bytes`);
  before = after;
  const got = await new Promise<number>((resolve, reject) => {
    const p = spawn('python3', ['-c', CLIENT, hostname, port, zipPath, String(4 * MiB)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (x) => { out += x; });
    p.once('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`client exited ${code}`))));
  });
  after = await until(async () => {
    const v = (await json(dropUrl)).balance as number;
    return v > before - 6 * SATS_PER_MIB ? v : undefined;
  }, 15_000, 'the cut zip download settled');
  const charged = ((before - after) / SATS_PER_MIB) * MiB;
  t.ok(Math.abs(charged - got) <= CHUNK, `a zip download cut at ${(got / MiB).toFixed(2)} MiB: charged ${(charged / MiB).toFixed(2)} MiB`);
});
