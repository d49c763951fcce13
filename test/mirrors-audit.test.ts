// Audits against mirrors that misbehave: a stand-in bitdrop on loopback (free, so no wallet is needed) keeps
// the copy honestly, then answers false bytes; another raises its price past the bound. Both are dropped,
// named in the log, and no longer listed. The audit cost stays within its share.
import t from 'tap';
import crypto from 'crypto';
import http from 'http';
import type { AddressInfo } from 'net';
import { Readable } from 'stream';
import { Store } from '../lib/store';
import { Mirrors, AUDIT_SHARE, valueWithMirrors } from '../lib/mirrors';
import { mirrorsFromValue } from '../lib/names/value';
import { candidateUrls, parseMirrorsHeader } from '../lib/mirrors/candidates';
import { tmpDir } from './helpers/tmp';
import { createApp, createServer } from '../lib/http/app';
import { loadConfig } from '../lib/config';
import { curl } from './helpers/daemon';

interface Fake { url: string; mode: 'honest' | 'lie' | 'gone'; price: number; stored: Map<string, Buffer>; ranges: number; close(): Promise<void> }

async function fakeMirror(): Promise<Fake> {
  const f = { mode: 'honest', price: 1, stored: new Map<string, Buffer>(), ranges: 0 } as Fake;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'GET' && url.pathname === '/') {
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify({ service: 'bitdrop', storagePrice: f.price, transferPrice: 0, free: true }));
    }
    if (req.method === 'PUT') {
      const parts: Buffer[] = [];
      for await (const d of req) parts.push(d as Buffer);
      const body = Buffer.concat(parts);
      const id = crypto.randomBytes(16).toString('base64url').slice(0, 22);
      f.stored.set(id, body);
      res.statusCode = 201;
      res.setHeader('Content-Type', 'application/json');
      return res.end(JSON.stringify({ id, url: `${f.url}/${id}${url.pathname}`, sha256: crypto.createHash('sha256').update(body).digest('hex'), deleteToken: 'token' }));
    }
    const m = /^\/([A-Za-z0-9_-]{22})\//.exec(url.pathname);
    const body = m && f.mode !== 'gone' ? f.stored.get(m[1]) : undefined;
    if (!body) { res.statusCode = 404; return res.end('no such file\n'); }
    if (req.method === 'HEAD') { res.setHeader('Content-Length', body.length); return res.end(); }
    const r = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!r) {
      if (f.mode === 'lie') { const bad = Buffer.from(body); bad[bad.length - 1] ^= 0xff; return res.end(bad); }
      return res.end(body);
    }
    f.ranges++;
    const part = Buffer.from(body.subarray(Number(r[1]), Number(r[2]) + 1));
    if (f.mode === 'lie') part[0] ^= 0xff;
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${r[1]}-${r[2]}/${body.length}`);
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  f.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  f.close = () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); });
  return f;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('audits drop a mirror that lies, loses a file or raises its price', async (t) => {
  const store = await Store.open({ dir: tmpDir('bitdrop-mirror-audit-', t) });
  t.teardown(() => store.close());
  const data = crypto.randomBytes(200_000);
  const { manifest } = await store.ingest(Readable.from([data]), { name: 'a.bin', type: 'application/octet-stream', maxBytes: 1e6 });
  const liar = await fakeMirror();
  const pricey = await fakeMirror();
  t.teardown(() => liar.close());
  t.teardown(() => pricey.close());
  const lines: string[] = [];
  const mirrors = new Mirrors({
    urls: [liar.url, pricey.url], policy: 'all', store, fileState: async () => ({ active: true }),
    syncEveryMs: 3_600_000, auditEveryMs: 200, maxPrice: 10, log: (l) => lines.push(l),
  });
  await mirrors.start();
  t.teardown(() => mirrors.stop());
  await until(() => mirrors.links(manifest.id).length === 2, 'two live copies');
  t.same(mirrors.links(manifest.id).map((l) => l.mirror).sort(), [liar.url, pricey.url].sort(), 'copied to both');
  t.ok(mirrors.links(manifest.id).every((l) => l.paidThrough === null), 'free mirrors: nothing paid');
  t.equal([...liar.stored.values()][0].equals(data), true, 'the mirror got the file\'s bytes');

  await until(() => liar.ranges >= 3, 'audits of the honest mirror');
  t.notMatch(lines.join('\n'), /DROPPED/, 'an honest mirror passes its audits');
  const status = mirrors.status();
  t.ok(status.mirrors.every((m) => m.auditsPassed > 0), 'audits counted');

  liar.mode = 'lie';
  await until(() => /DROPPED/.test(lines.join('\n')), 'the liar dropped');
  t.match(lines.join('\n'), new RegExp(`DROPPED ${liar.url}: audit: answered false bytes`), 'false bytes: dropped at the first audit, and named');
  t.same(mirrors.links(manifest.id).map((l) => l.mirror), [pricey.url], 'no longer listed');

  pricey.price = 50;
  await mirrors.kickSync();
  t.match(lines.join('\n'), new RegExp(`DROPPED ${pricey.url}: it asks 50 sats per GiB per day, above --mirror-max-price 10`), 'a price past the bound drops it');
  t.same(mirrors.links(manifest.id), [], 'no mirror left');
  t.same(mirrors.status().mirrors.map((m) => m.state), ['dropped', 'dropped']);
  await mirrors.stop();

  await t.test('a dropped mirror stays dropped after a restart', async (t) => {
    const again = new Mirrors({
      urls: [liar.url, pricey.url], policy: 'all', store, fileState: async () => ({ active: true }),
      syncEveryMs: 3_600_000, auditEveryMs: 200, maxPrice: 100, log: (l) => lines.push(l),
    });
    await again.start();
    t.same(again.links(manifest.id), []);
    t.match(lines.join('\n'), /was dropped on .* not used/);
    await again.stop();
  });
});

t.test('a mirror that loses the file is dropped; one that is unreachable three times too', async (t) => {
  const store = await Store.open({ dir: tmpDir('bitdrop-mirror-audit2-', t) });
  t.teardown(() => store.close());
  const { manifest } = await store.ingest(Readable.from([crypto.randomBytes(5000)]), { name: 'b.bin', type: 'application/octet-stream', maxBytes: 1e6 });
  const loser = await fakeMirror();
  const flaky = await fakeMirror();
  t.teardown(() => loser.close());
  const lines: string[] = [];
  const mirrors = new Mirrors({
    urls: [loser.url, flaky.url], policy: 'all', store, fileState: async () => ({ active: true }),
    syncEveryMs: 3_600_000, auditEveryMs: 200, maxPrice: 10, log: (l) => lines.push(l),
  });
  await mirrors.start();
  t.teardown(() => mirrors.stop());
  await until(() => mirrors.links(manifest.id).length === 2, 'two live copies');
  loser.mode = 'gone';
  await flaky.close();
  await until(() => (lines.join('\n').match(/DROPPED/g) ?? []).length === 2, 'both dropped');
  t.match(lines.join('\n'), new RegExp(`DROPPED ${loser.url}: audit: lost ${manifest.id} \\(HTTP 404`));
  t.match(lines.join('\n'), new RegExp(`audit of ${manifest.id} at ${flaky.url} failed \\(1 of 3`), 'an unreachable mirror gets strikes first');
  t.match(lines.join('\n'), new RegExp(`DROPPED ${flaky.url}: audit: unreachable .* 3 audits in a row`));
});

t.test('--mirror-policy downloads>=N mirrors only files downloaded N times', async (t) => {
  const store = await Store.open({ dir: tmpDir('bitdrop-mirror-policy-', t) });
  t.teardown(() => store.close());
  const { manifest } = await store.ingest(Readable.from([crypto.randomBytes(1000)]), { name: 'p.bin', type: 'application/octet-stream', maxBytes: 1e6 });
  const fake = await fakeMirror();
  t.teardown(() => fake.close());
  let sentBytes = 1999;
  const mirrors = new Mirrors({
    urls: [fake.url], policy: 'downloads>=2', store, fileState: async () => ({ active: true, sentBytes }),
    syncEveryMs: 3_600_000, auditEveryMs: 3_600_000, maxPrice: 10, log: () => {},
  });
  await mirrors.start();
  t.teardown(() => mirrors.stop());
  await mirrors.kickSync();
  t.equal(fake.stored.size, 0, 'downloaded less than twice: not mirrored');
  sentBytes = 2000;
  await mirrors.kickSync();
  t.equal(fake.stored.size, 1, 'twice: mirrored');
  t.equal(mirrors.links(manifest.id).length, 1);
});

t.test('audit cost and candidate URLs', async (t) => {
  const store = await Store.open({ dir: tmpDir('bitdrop-mirror-audit3-', t) });
  t.teardown(() => store.close());
  const m = new Mirrors({ urls: [], policy: 'all', store, fileState: async () => ({ active: true }), syncEveryMs: 1e9, auditEveryMs: 6 * 3_600_000, maxPrice: 10, log: () => {} });
  const GiB = 1024 ** 3;
  for (const size of [100 * 1024, 10 * 1024 * 1024, GiB, 100 * GiB]) {
    const perDay = m.auditLength(size) * 8; // two audits per 6 h interval on average
    t.ok(perDay / size <= AUDIT_SHARE + 1e-9, `${size} bytes: ${perDay} bytes audited a day (${((100 * perDay) / size).toFixed(3)} %)`);
  }
  t.equal(m.auditLength(10), 10, 'a tiny file is fetched whole');
  t.same(parseMirrorsHeader('http://b.onion/x/f, http://c.onion/y/f'), ['http://b.onion/x/f', 'http://c.onion/y/f']);
  t.same(candidateUrls('http://a.onion/id/f', { mirrors: [{ url: 'http://b.onion/x/f' }, { nope: 1 }] }, 'http://c.onion/y/f'),
    ['http://a.onion/id/f', 'http://b.onion/x/f', 'http://c.onion/y/f'], 'the original first, then the mirrors');

  const onion = (c: string) => `${c.repeat(56)}.onion`;
  const many = ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((c) => `http://${onion(c)}`);
  const value = valueWithMirrors(onion('a'), { ip: '' }, [...many, 'http://127.0.0.1:8080', 'http://example.bit']);
  t.ok(Buffer.byteLength(value) <= 520, `the .bit value stays within 520 bytes (${Buffer.byteLength(value)})`);
  const parsed = JSON.parse(value);
  t.equal(parsed.tor, onion('a'));
  t.ok(parsed.mirrors.length >= 4 && parsed.mirrors.length < many.length, `as many mirror onions as fit (${parsed.mirrors.length} of ${many.length})`);
  t.same(parsed.mirrors, many.slice(0, parsed.mirrors.length).map((u) => new URL(u).hostname), 'onions only, in order');
  t.notOk('mirrors' in JSON.parse(valueWithMirrors(onion('a'), {}, ['http://127.0.0.1:1'])), 'no onion mirror: no field');
  // read back by resolvers (bitdrop get, names-proxy): the onions as written, anything else left out
  t.same(mirrorsFromValue(value), parsed.mirrors, 'a resolver reads the mirror onions back');
  t.same(mirrorsFromValue(JSON.stringify({ tor: onion('a'), mirrors: ['http://x', 7, onion('b').toUpperCase(), onion('b')] })), [onion('b')], 'v3 onions only, once each');
  t.same(mirrorsFromValue('not json'), []);
});

t.test('CDN: downloads proxied through a mirror with each chunk checked, then redirected; a lying mirror is caught mid-download', async (t) => {
  const dataDir = tmpDir('bitdrop-mirror-cdn-', t);
  const store = await Store.open({ dir: dataDir, chunkSize: 64 * 1024 });
  t.teardown(() => store.close());
  const data = crypto.randomBytes(300_000);
  const { manifest } = await store.ingest(Readable.from([data]), { name: 'c.bin', type: 'application/octet-stream', maxBytes: 1e6 });
  const fake = await fakeMirror();
  t.teardown(() => fake.close());
  const lines: string[] = [];
  const mirrors = new Mirrors({
    urls: [fake.url], policy: 'all', store, fileState: async () => ({ active: true }),
    syncEveryMs: 3_600_000, auditEveryMs: 3_600_000, maxPrice: 10, cdnShare: 100, log: (l) => lines.push(l),
  });
  await mirrors.start();
  t.teardown(() => mirrors.stop());
  await until(() => mirrors.links(manifest.id).length === 1, 'a live copy');
  const app = createApp({
    config: loadConfig({ env: {}, flags: { dataDir, free: true } }), store, log: (l) => lines.push(l),
    mirrors: (id) => mirrors.links(id),
    cdn: { pick: (id, n) => mirrors.cdnPick(id, n), open: (u) => mirrors.cdnOpen(u), proxied: (id, m, ok, why) => mirrors.cdnResult(id, m, ok, why) },
  });
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${manifest.id}/c.bin`;
  const sha = crypto.createHash('sha256').update(data).digest('hex');
  const dir = tmpDir('bitdrop-mirror-cdn-out-', t);
  const fetchOnce = async (i: number) => {
    const file = `${dir}/${i}.bin`;
    const headers = await curl('-s', '-o', file, '-D', '-', url);
    const fs = await import('fs');
    const body = fs.readFileSync(file);
    return { headers, sha: crypto.createHash('sha256').update(body).digest('hex') };
  };
  for (let i = 0; i < 3; i++) {
    const r = await fetchOnce(i);
    t.match(r.headers, /^HTTP\/1\.1 200/, `download ${i + 1}: 200 from here`);
    t.match(r.headers, new RegExp(`x-served-by: ${fake.url}`, 'i'), '… proxied from the mirror');
    t.equal(r.sha, sha, '… with the file\'s bytes');
  }
  const redirected = await fetchOnce(3);
  t.match(redirected.headers, /^HTTP\/1\.1 302/, 'after three good proxied downloads: a redirect');
  t.match(redirected.headers, new RegExp(`location: ${mirrors.links(manifest.id)[0].url}`, 'i'), 'to the file on the mirror');
  t.match(lines.join('\n'), /3 good downloads of .* proxied: downloads sent there are redirected/);

  await t.test('a mirror that serves false bytes through the CDN', async (t) => {
    const liar = await fakeMirror();
    t.teardown(() => liar.close());
    const m2 = new Mirrors({
      urls: [liar.url], policy: 'all', store, fileState: async () => ({ active: true }),
      syncEveryMs: 3_600_000, auditEveryMs: 3_600_000, maxPrice: 10, cdnShare: 100, log: (l) => lines.push(l),
    });
    await m2.start();
    t.teardown(() => m2.stop());
    await until(() => m2.links(manifest.id).length === 1, 'a live copy');
    liar.mode = 'lie'; // the last byte flipped: its last chunk does not match
    const app2 = createApp({
      config: loadConfig({ env: {}, flags: { dataDir, free: true } }), store, log: (l) => lines.push(l),
      mirrors: (id) => m2.links(id),
      cdn: { pick: (id, n) => m2.cdnPick(id, n), open: (u) => m2.cdnOpen(u), proxied: (id, m, ok, why) => m2.cdnResult(id, m, ok, why) },
    });
    const server2 = createServer(app2);
    await new Promise<void>((r) => server2.listen(0, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => { server2.close(() => r()); server2.closeAllConnections(); }));
    const file = `${dir}/liar.bin`;
    const headers = await curl('-s', '-o', file, '-D', '-', `http://127.0.0.1:${(server2.address() as AddressInfo).port}/${manifest.id}/c.bin`);
    const fs = await import('fs');
    t.match(headers, new RegExp(`x-served-by: ${liar.url}`, 'i'), 'proxied from the liar');
    t.equal(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), sha, 'the downloader still gets the right bytes (the bad chunk came from here)');
    await until(() => new RegExp(`DROPPED ${liar.url}: CDN: served false bytes`).test(lines.join('\n')), 'the liar dropped');
    t.same(m2.links(manifest.id), [], 'and no longer used');
  });
});
