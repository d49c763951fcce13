// The drop box as curl users meet it: upload, download, ranges, errors, deletion — against the real
// daemon running as a child process.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { startDaemon, curl, curlStatus, sha256File, randomFile, tmpDir, chunkFiles, type Daemon } from './helpers/daemon';

const CHUNK = 4 * 1024 * 1024;
let d: Daemon;
let work: string;

t.before(async () => {
  work = tmpDir();
  d = await startDaemon({ args: ['--max-upload-bytes', String(300 * 1024 * 1024)] });
});
t.teardown(async () => {
  await d.stop();
});

async function upload(file: string, ...extra: string[]) {
  const body = await curl('-f', '-T', file, ...extra, `${d.url}/`);
  return body.split('\n')[0];
}

t.test('round trips keep every byte: 0, 1, chunk-1, chunk, chunk+1 and 200 MiB', async (t) => {
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 200 * 1024 * 1024]) {
    const file = randomFile(work, size);
    const url = await upload(file);
    t.match(url, new RegExp(`^${d.url}/[A-Za-z0-9_-]{22}/f-${size}\\.bin$`), `upload of ${size} bytes prints its URL`);
    const out = path.join(work, `out-${size}`);
    await curl('-f', '-o', out, url);
    t.equal(await sha256File(out), await sha256File(file), `${size} bytes come back identical`);
    fs.rmSync(out);
    if (size > CHUNK * 2) fs.rmSync(file);
  }
});

t.test('upload answers 201 with Location, X-Delete-Token and JSON on request', async (t) => {
  const file = randomFile(work, 1000, 'photo.jpg');
  const headers = await curl('-D', '-', '-o', '/dev/null', '-T', file, `${d.url}/`);
  t.match(headers, /^HTTP\/1\.1 201 Created\r$/m);
  t.match(headers, /\r\nlocation: http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{22}\/photo\.jpg\r\n/i);
  t.match(headers, /\r\nx-delete-token: [A-Za-z0-9_-]{22}\r\n/i);
  t.notMatch(headers, /\r\n(server|x-powered-by):/i, 'no Server or X-Powered-By');
  t.match(headers, /content-security-policy: default-src 'none'/i);
  t.match(headers, /x-frame-options: DENY/i);
  t.match(headers, /referrer-policy: no-referrer/i);
  t.match(headers, /x-content-type-options: nosniff/i);

  const json = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/`));
  t.match(json, { name: 'photo.jpg', size: 1000, sha256: await sha256File(file), type: 'image/jpeg' });
  t.match(json.id, /^[A-Za-z0-9_-]{22}$/);
  t.match(json.deleteToken, /^[A-Za-z0-9_-]{22}$/);
  t.not(json.id, json.sha256, 'the id is not the content hash');
  t.ok(Date.parse(json.created) > 0, 'created is a date');
  t.equal(json.url, `${d.url}/${json.id}/photo.jpg`);

  const view = JSON.parse(await curl('-f', '-H', 'Accept: application/json', `${d.url}/${json.id}`));
  t.same(
    { id: view.id, url: view.url, name: view.name, size: view.size, sha256: view.sha256, created: view.created },
    { id: json.id, url: json.url, name: json.name, size: json.size, sha256: json.sha256, created: json.created },
    'GET with Accept: application/json gives the same facts',
  );
  t.notOk('deleteToken' in view, 'the delete token is only given at upload');
});

t.test('multipart POST with field "file" (curl -F)', async (t) => {
  const file = randomFile(work, 12345, 'report.pdf');
  const body = await curl('-f', '-F', `file=@${file}`, `${d.url}/`);
  const url = body.split('\n')[0];
  t.match(url, /\/report\.pdf$/);
  const out = path.join(work, 'mp.out');
  await curl('-f', '-o', out, url);
  t.equal(await sha256File(out), await sha256File(file));
});

t.test('malformed multipart is a 400 and stores nothing', async (t) => {
  const before = JSON.parse(await curl('-H', 'Accept: application/json', `${d.url}/`));
  t.ok(before.maxUploadBytes > 0);
  const chunksBefore = chunkFiles(d.dataDir).length;
  const cut = await curlStatus('-H', 'Content-Type: multipart/form-data; boundary=XYZ', '--data-binary',
    '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello', `${d.url}/`);
  t.equal(cut.status, 400, 'a body cut before its closing boundary');
  t.match(cut.body, /^400 Bad Request: malformed multipart/);
  const noBoundary = await curlStatus('-H', 'Content-Type: multipart/form-data', '--data-binary', 'x', `${d.url}/`);
  t.equal(noBoundary.status, 400, 'no boundary');
  const noField = await curlStatus('-F', 'other=@/etc/hostname', `${d.url}/`);
  t.equal(noField.status, 400, 'no "file" field');
  t.match(noField.body, /no field named "file"/);
  const notMultipart = await curlStatus('--data-binary', 'x', `${d.url}/`);
  t.equal(notMultipart.status, 400);
  t.equal(chunkFiles(d.dataDir).length, chunksBefore, 'no chunk was kept');
});

t.test('ranges: one range → 206, suffix, open-ended, unsatisfiable → 416, HEAD', async (t) => {
  const file = randomFile(work, CHUNK + 100, 'range.bin');
  const url = await upload(file);
  const all = fs.readFileSync(file);
  const get = async (range: string) => {
    const out = path.join(work, 'range.out');
    const headers = await curl('-D', '-', '-o', out, '-H', `Range: ${range}`, url);
    return { headers, body: fs.readFileSync(out) };
  };
  let r = await get('bytes=0-9');
  t.match(r.headers, /^HTTP\/1\.1 206/);
  t.match(r.headers, new RegExp(`content-range: bytes 0-9/${all.length}`, 'i'));
  t.ok(r.body.equals(all.subarray(0, 10)), 'first ten bytes');
  r = await get(`bytes=${CHUNK - 5}-${CHUNK + 4}`);
  t.ok(r.body.equals(all.subarray(CHUNK - 5, CHUNK + 5)), 'a range across a chunk boundary');
  r = await get('bytes=-7');
  t.ok(r.body.equals(all.subarray(all.length - 7)), 'suffix range');
  r = await get(`bytes=${CHUNK}-`);
  t.ok(r.body.equals(all.subarray(CHUNK)), 'open-ended range');
  const bad = await curlStatus('-H', `Range: bytes=${all.length + 10}-`, url);
  t.equal(bad.status, 416);
  const badHeaders = await curl('-D', '-', '-o', '/dev/null', '-H', `Range: bytes=${all.length + 10}-`, url);
  t.match(badHeaders, new RegExp(`content-range: bytes \\*/${all.length}`, 'i'));

  const head = await curl('-I', url);
  t.match(head, /^HTTP\/1\.1 200/);
  t.match(head, new RegExp(`content-length: ${all.length}\\r`, 'i'));
  t.match(head, /accept-ranges: bytes/i);
  t.match(head, /etag: "[0-9a-f]{64}"/i);
  t.match(head, /content-type: application\/octet-stream/i);
  t.match(head, /content-disposition: attachment; filename="range\.bin"/i);
  const etag = /etag: ("[0-9a-f]{64}")/i.exec(head)![1];
  const cached = await curlStatus('-o', '/dev/null', '-H', `If-None-Match: ${etag}`, url);
  t.equal(cached.status, 304, 'If-None-Match → 304');
  const withName = await curlStatus('-o', '/dev/null', url.replace(/\/range\.bin$/, '/any-name'));
  t.equal(withName.status, 200, 'GET /<id>/<anything> works');
  const bare = await curlStatus('-o', '/dev/null', url.replace(/\/range\.bin$/, ''));
  t.equal(bare.status, 200, 'GET /<id> works');
});

t.test('413: by Content-Length before the body, and while streaming without one', async (t) => {
  const small = await startDaemon({ args: ['--max-upload-bytes', '1000'] });
  t.teardown(() => small.stop());
  const big = randomFile(work, 5000, 'big.bin');
  const declared = await curlStatus('-T', big, `${small.url}/`);
  t.equal(declared.status, 413);
  t.match(declared.body, /^413 Payload Too Large: file too large: the limit is 1000 bytes/);
  // Chunked transfer: no Content-Length, the cap is enforced while streaming.
  const streamed = await curlStatus('-H', 'Transfer-Encoding: chunked', '-T', big, `${small.url}/`);
  t.equal(streamed.status, 413);
  const mp = await curlStatus('-F', `file=@${big}`, `${small.url}/`);
  t.equal(mp.status, 413, 'multipart over the cap');
  const exact = randomFile(work, 1000, 'exact.bin');
  const ok = await curlStatus('-H', 'Accept: application/json', '-T', exact, `${small.url}/`);
  t.equal(ok.status, 201, 'exactly the cap is fine');
  // Files this small live inline in LevelDB, in their manifest's batch: no chunk file at all, and the
  // refused uploads left none either.
  t.equal(chunkFiles(small.dataDir).length, 0, 'no chunk file: the refused uploads left none');
  const back = path.join(work, 'exact.out');
  await curl('-f', '-o', back, `${small.url}/${JSON.parse(ok.body).id}`);
  t.equal(await sha256File(back), await sha256File(exact), 'the accepted file reads back whole');
});

t.test('hostile file names are neutralised', async (t) => {
  const file = randomFile(work, 10, 'x.bin');
  const cases: Array<[string, RegExp]> = [
    ['..%2F..%2Fetc%2Fpasswd', /^passwd$/],
    ['a%5Cb%5Cevil.exe', /^evil\.exe$/],
    ['%2E%2E', /^file$/],
    ['bad%0D%0AX-Injected%3A%201.txt', /^badX-Injected_ 1\.txt$/], // ":" cannot be in a zip entry or a Windows name (issue 24)
    ['gpj.%E2%80%AEexe', /^gpj\.exe$/],
    ['.hidden', /^hidden$/],
    [encodeURIComponent('x'.repeat(400) + '.txt'), /^x{196}\.txt$/],
    [encodeURIComponent('日本語 ファイル.txt'), /^日本語 ファイル\.txt$/],
  ];
  for (const [raw, expected] of cases) {
    const json = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/${raw}`));
    t.match(json.name, expected, `${decodeURIComponent(raw).slice(0, 40)} → ${json.name.slice(0, 40)}`);
    const head = await curl('-I', json.url);
    t.notMatch(head, /\r\nx-injected:/i, 'no header injection');
    t.match(head, /content-disposition: attachment; filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9%._~!-]*\r\n/i);
  }
});

t.test('delete needs the token', async (t) => {
  const file = randomFile(work, 100, 'del.bin');
  const json = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/`));
  const fileUrl = `${d.url}/${json.id}`;
  t.equal((await curlStatus('-X', 'DELETE', fileUrl)).status, 401, 'no token');
  t.equal((await curlStatus('-X', 'DELETE', '-H', 'X-Delete-Token: wrongwrongwrongwrongwr', fileUrl)).status, 403, 'wrong token');
  t.equal((await curlStatus('-o', '/dev/null', fileUrl)).status, 200, 'still there');
  t.equal((await curlStatus('-X', 'DELETE', '-H', `X-Delete-Token: ${json.deleteToken}`, fileUrl)).status, 200, 'right token');
  const gone = await curlStatus(fileUrl);
  t.equal(gone.status, 410, 'a deleted file is gone (410), not unknown');
  t.match(gone.body, /^410 Gone: deleted on \d{4}-\d\d-\d\d \(the uploader deleted it\)$/m);
  const again = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/`));
  t.equal((await curlStatus('-X', 'DELETE', `${d.url}/${again.id}?token=${again.deleteToken}`)).status, 200, '?token= works too');
  t.equal((await curlStatus('-X', 'DELETE', '-H', `X-Delete-Token: ${json.deleteToken}`, fileUrl)).status, 410, 'deleting it again → 410');
  t.equal((await curlStatus('-o', '/dev/null', `${d.url}/AAAAAAAAAAAAAAAAAAAAAA`)).status, 404, 'an id never used → 404');
});

t.test('unknown ids and routes', async (t) => {
  const r = await curlStatus(`${d.url}/AAAAAAAAAAAAAAAAAAAAAA`);
  t.equal(r.status, 404);
  t.match(r.body, /^404 Not Found: /);
  const j = await curlStatus('-H', 'Accept: application/json', `${d.url}/nope/nope/nope`);
  t.equal(j.status, 404);
  t.equal(JSON.parse(j.body).status, 404);
  t.equal((await curlStatus('-X', 'DELETE', `${d.url}/`)).status, 405);
  t.equal((await curlStatus('-o', '/dev/null', `${d.url}/status`)).status, 404, "the operator's status is on the console, not on the public listener");
});
