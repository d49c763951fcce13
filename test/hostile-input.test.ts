// What hostile clients send: repeated and oddly typed query parameters, headers and form fields, odd Host
// headers, and connections dropped mid-request. Every answer is a 4xx with one readable line (never a
// 500), nothing raw reaches Location or text answers, and the log gets no stack traces.

import t from 'tap';
import http from 'http';
import net from 'net';
import { curl, randomFile, tmpDir } from './helpers/daemon';
import { startPaidNode, MiB } from './helpers/paid-node';

interface Answer { status: number; body: string; headers: http.IncomingHttpHeaders }

function request(base: string, method: string, path: string, headers: http.OutgoingHttpHeaders = {}, body?: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers: { Connection: 'close', ...headers }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The raw bytes of a request (for what Node's client refuses to send), and the answer's head. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(text));
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
  });
}

const ONE_LINE = /^[1-5]\d\d [A-Za-z ]*: [^\n]+\n([a-z]+:[^\n]*\n)?$/;

t.test('repeated and oddly typed parameters, headers and form fields get a 4xx with one line, never a 500', async (t) => {
  const p = await startPaidNode();
  t.teardown(() => p.stop());
  const work = tmpDir('bitdrop-test-', t);
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 1000, 'a.txt'), `${p.url}/`));
  const id: string = up.id;
  const reserved = JSON.parse(await curl('-f', '-X', 'POST', '-H', 'Accept: application/json', `${p.url}/reserve?size=10`)).reservation;

  const routes: [string, string][] = [
    ['GET', '/'], ['HEAD', '/'], ['GET', `/${id}`], ['HEAD', `/${id}`], ['GET', `/${id}/a.txt`], ['DELETE', `/${id}`],
    ['PUT', '/'], ['PUT', '/x.bin'], ['POST', '/'], ['POST', '/reserve'], ['GET', `/reserve/${reserved}`],
    ['GET', '/style.css'], ['GET', '/%ZZ'], ['PUT', '/%ZZ%'], ['GET', `/${id}/%E0%A4%A`], ['OPTIONS', `/${id}`], ['PATCH', '/'],
  ];
  const queries = [
    '?token=a&token=b', '?token[]=a', '?token=', '?token=%ZZ', `?token=${'x'.repeat(5000)}`,
    '?size=1&size=2', '?size=-1', '?size=1e3', '?size=0x10', '?size=', '?size[a]=1', '?size=99999999999999999999',
    '?name=a&name=b', '?name=%00', '?name=../../etc/passwd', '?name[]=x',
    '?reservation=a&reservation=b', `?reservation=${reserved}&reservation=${reserved}`, '?reservation=', '?reservation=%ZZ', '?reservation[]=1',
    '?&&&=&=', '?=', '?a=%',
  ];
  const headerSets: http.OutgoingHttpHeaders[] = [
    {}, { 'X-Delete-Token': ['a', 'b'] }, { 'X-Delete-Token': '' }, { 'X-Reservation': [reserved, reserved] }, { 'X-Reservation': '../x' },
    { 'X-Size': ['1', '2'] }, { 'X-Size': 'NaN' }, { Range: 'bytes=5-1' }, { Range: ['bytes=0-1', 'bytes=2-3'] }, { Range: 'bytes=-0' },
    { Range: 'items=0-1' }, { 'If-Range': 'x', Range: 'bytes=0-1' }, { Accept: ['application/json', 'text/html'] }, { Accept: '*/*;q=x' },
    { 'Content-Type': ['multipart/form-data; boundary=a', 'text/plain'] }, { 'Content-Type': 'multipart/form-data' },
    { 'Content-Type': 'multipart/form-data; boundary=' }, { Expect: 'bogus' }, { 'If-None-Match': ['a', 'b'] },
  ];
  const statuses = new Map<number, number>();
  const bad: string[] = [];
  const check = (request: string, a: Answer) => {
    const what = request.length > 120 ? `${request.slice(0, 120)}…` : request;
    statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    if (a.status >= 500) bad.push(`${what} → ${a.status} ${a.body.trim()}`);
    else if (a.status >= 400 && !what.startsWith('HEAD') && String(a.headers['content-type']).startsWith('text/plain') && !ONE_LINE.test(a.body)) {
      bad.push(`${what} → ${a.status} not one line: ${JSON.stringify(a.body.slice(0, 200))}`);
    }
  };
  let n = 0;
  for (const [method, path] of routes) {
    for (const q of queries) {
      const body = method === 'PUT' ? 'hello' : method === 'POST' && path === '/' ? 'x' : undefined;
      check(`${method} ${path}${q}`, await request(p.url, method, path + q, {}, body));
      n++;
    }
    for (const h of headerSets) {
      const body = method === 'PUT' ? 'hello' : undefined;
      check(`${method} ${path} ${JSON.stringify(h)}`, await request(p.url, method, path, h, body));
      n++;
    }
  }
  // Multipart bodies with odd fields: repeated file fields, no file, a text field named file, a broken envelope.
  const forms = [
    '--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nA\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\nB\r\n--B--\r\n',
    '--B\r\nContent-Disposition: form-data; name="file"\r\n\r\nnot a file\r\n--B--\r\n',
    '--B\r\nContent-Disposition: form-data; name="other"; filename="a"\r\n\r\nA\r\n--B--\r\n',
    '--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nA',
    '--B\r\nContent-Disposition: form-data; name="file"; filename="a"; filename="b"\r\nContent-Type: a/b/c\r\n\r\nA\r\n--B--\r\n',
    'garbage',
  ];
  for (const f of forms) {
    for (const q of ['', '?reservation=a&reservation=b', '?name=a&name=b']) {
      check(`POST / form ${JSON.stringify(f.slice(0, 40))}${q}`, await request(p.url, 'POST', `/${q}`, { 'Content-Type': 'multipart/form-data; boundary=B' }, f));
      n++;
    }
  }
  const del = await request(p.url, 'DELETE', `/${id}?token=a&token=b`);
  t.equal(del.status, 400, 'DELETE /<id>?token=a&token=b is a 400');
  t.equal(del.body, '400 Bad Request: ?token= was given 2 times; give it once\n');
  t.same(bad, [], `${n} requests: no 500, every text error one line (statuses ${JSON.stringify(Object.fromEntries(statuses))})`);
  t.notOk(p.logs.some((l) => /\n\s+at /.test(l)), 'no stack trace in the log');
});

t.test('the Host header reaches answers only when it is a well-formed host; else the listener address is used', async (t) => {
  const p = await startPaidNode();
  t.teardown(() => p.stop());
  const port = Number(new URL(p.url).port);
  const put = (host: string) => raw(port, `PUT /h.txt HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`);
  const location = (answer: string) => /\r\nLocation: ([^\r]*)\r\n/.exec(answer)?.[1];
  for (const good of ['example.bit', 'abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion', 'example.bit:8080', '127.0.0.1:8080', '[::1]:8080', 'localhost']) {
    const a = await put(good);
    t.match(location(a), new RegExp(`^http://${good.replace(/[.[\]]/g, '\\$&')}/[A-Za-z0-9_-]{22}/h\\.txt$`), `Host: ${good} is used as given`);
  }
  for (const evil of ['evil.com/<script>', 'a b', 'x"onmouseover=1', 'a..b', '-a.com', `${'a'.repeat(64)}.com`, 'a.com:99999', 'a.com:1:2', 'a.com@b.com', '%41.com', '[::1', 'a.com\\x']) {
    const a = await put(evil);
    t.match(a, /^HTTP\/1\.1 (201|400) /, `Host: ${evil} answered`);
    if (a.startsWith('HTTP/1.1 201')) {
      t.equal(new URL(location(a)!).origin, p.url, `Host: ${evil} → the listener's address in Location`);
      t.notOk(a.includes(evil), `Host: ${evil} appears nowhere in the answer`);
    }
  }
  const reserve = await raw(port, 'POST /reserve?size=5 HTTP/1.1\r\nHost: evil.com/x?\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  t.notOk(reserve.includes('evil.com'), 'reservation answers too');
});

t.test('dropped connections and parse errors are one debug line each, not stack traces', async (t) => {
  const debug: string[] = [];
  const p = await startPaidNode({}, tmpDir(), { debug: (l) => debug.push(l) });
  t.teardown(() => p.stop());
  const port = Number(new URL(p.url).port);
  const work = tmpDir('bitdrop-test-', t);
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 4 * MiB, 'b.bin'), `${p.url}/`));
  const before = p.logs.length;
  for (let i = 0; i < 20; i++) {
    await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
    await raw(port, 'BLAH\r\n\r\n');
    await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    await raw(port, `PUT /c.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(1000)}`);
    await raw(port, `GET /${up.id} HTTP/1.1\r\nHost: a\r\n\r\n`);
    await raw(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 1000\r\n\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nAAA');
  }
  await new Promise((r) => setTimeout(r, 500));
  const lines = p.logs.slice(before);
  t.notOk(lines.some((l) => /\n\s+at /.test(l)), `no stack traces (${lines.length} log lines)`);
  t.notOk(lines.some((l) => l.includes('\n')), 'each entry is one line');
  t.notOk(lines.some((l) => /^error/.test(l)), `none logged as an error: ${lines.filter((l) => /^error/.test(l)).slice(0, 3).join(' | ')}`);
  t.ok(debug.filter((l) => /^malformed request/.test(l)).length >= 40, `malformed requests logged at debug level (${debug.length} debug lines)`);
  t.ok(debug.some((l) => /^client gone: PUT \/c\.bin/.test(l)), 'an upload cut by its client logged at debug level');
  t.notOk(debug.some((l) => l.includes('\n')), 'each debug entry is one line');
});
