// The Electrum connection: it must never hang, must come back by itself, and must not leak outside Tor.
import t from 'tap';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { execFileSync } from 'child_process';
import { ElectrumClient, parseServer, type ElectrumOptions } from '../lib/payments/electrum';
import { TestElectrum, startTestSocks, until } from './helpers/payments-electrum';

const fast = { timeoutMs: 1000, connectTimeoutMs: 1000, backoff: { minMs: 20, maxMs: 100 }, clearnet: false };

function client(servers: string[], extra: Partial<ElectrumOptions> = {}) {
  const lines: string[] = [];
  const c = new ElectrumClient({ servers, ...fast, log: (l) => lines.push(l), ...extra });
  t.teardown(() => c.stop());
  return { c, lines };
}

t.test('server URLs: tcp, ssl, ssl with a pinned fingerprint, IPv6; anything else is one clear line', async (t) => {
  t.match(parseServer('tcp://127.0.0.1:50001'), { protocol: 'tcp', host: '127.0.0.1', port: 50001, pin: undefined });
  t.match(parseServer('ssl://[::1]:50002'), { protocol: 'ssl', host: '::1', port: 50002 });
  const pin = 'AB:'.repeat(31) + 'AB';
  t.equal(parseServer(`ssl://e.onion:50002#sha256=${pin}`).pin, 'ab'.repeat(32));
  t.throws(() => parseServer('http://x:1'), /expected tcp:\/\/HOST:PORT/);
  t.throws(() => parseServer('tcp://x:1#sha256=' + 'ab'.repeat(32)), /needs ssl:\/\//);
  t.throws(() => parseServer('ssl://x:1#sha256=abcd'), /64 hex digits/);
  t.throws(() => new ElectrumClient({ servers: [], clearnet: false }), /no electrum server configured/);
});

t.test('clearnet guard: a remote server needs Tor (socks) or --clearnet; the hostname goes to the proxy unresolved', async (t) => {
  t.throws(
    () => new ElectrumClient({ servers: ['tcp://127.0.0.1:1', 'ssl://electrum.example.org:50002'], clearnet: false }),
    /electrum server ssl:\/\/electrum.example.org:50002 is not on this machine and Tor is off; refusing a clearnet connection/,
  );
  t.doesNotThrow(() => new ElectrumClient({ servers: ['tcp://electrum.example.org:50001'], clearnet: true }));
  const server = await TestElectrum.start();
  const socks = await startTestSocks({ host: '127.0.0.1', port: server.port });
  t.teardown(async () => {
    await socks.close();
    await server.close();
  });
  const { c } = client(['tcp://electrumabcdefghijklmnop.onion:50001'], { socks: { host: '127.0.0.1', port: socks.port } });
  await c.start();
  t.ok(c.connected, 'connected through the proxy');
  t.same(socks.asked, ['electrumabcdefghijklmnop.onion:50001'], 'Tor resolves the name, not us');
  t.same(await c.request('server.ping'), null);
});

t.test('a stalled server: the request fails after its timeout and the client reconnects', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const { c } = client([server.url], { timeoutMs: 300 });
  await c.start();
  server.stall = true;
  const started = Date.now();
  await t.rejects(c.request('blockchain.headers.subscribe'), /got no answer within 300 ms/);
  t.ok(Date.now() - started < 1000, 'bounded by the timeout');
  server.stall = false;
  await until(() => server.accepted >= 2 && c.connected, 30_000, 'reconnect');
  t.match(await c.request('blockchain.headers.subscribe'), { height: 100 });
});

t.test('server killed and restarted: pending requests fail at once, the client comes back by itself', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const { c } = client([server.url]);
  const events: string[] = [];
  c.on('connected', () => events.push('connected'));
  c.on('disconnected', () => events.push('disconnected'));
  await c.start();
  server.stall = true;
  const pending = c.request('blockchain.headers.subscribe');
  await until(() => (server.counts['blockchain.headers.subscribe'] ?? 0) > 0);
  await server.kill();
  server.stall = false;
  await t.rejects(pending, /connection closed/, 'no hang after a disconnect');
  await t.rejects(c.request('server.ping'), /not connected to any electrum server/);
  await new Promise((r) => setTimeout(r, 200)); // a few failed attempts while it is down
  await server.restart();
  await c.whenConnected(5000);
  t.same(events, ['connected', 'disconnected', 'connected']);
  t.same(await c.request('server.ping'), null);
});

t.test('failover: a dead first server is skipped; losing the current one moves to the next', async (t) => {
  const dead = await TestElectrum.start();
  await dead.kill();
  const a = await TestElectrum.start();
  const b = await TestElectrum.start();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const { c, lines } = client([dead.url, a.url, b.url]);
  await c.start();
  t.equal(c.server, a.url);
  t.match(lines.join('\n'), /ECONNREFUSED/);
  await a.kill();
  await until(() => c.server === b.url, 30_000, 'failover to b');
  t.same(await c.request('server.ping'), null);
});

t.test('TLS: self-signed works only with the right pinned fingerprint', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=electrum.test'], { stdio: 'ignore' });
  const fp = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', cert]).toString().trim().split('=')[1];
  const server = await TestElectrum.start({ tls: { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8') } });
  t.teardown(() => server.close());

  const pinned = client([`${server.url}#sha256=${fp}`]);
  await pinned.c.start();
  t.ok(pinned.c.connected, 'pinned self-signed certificate accepted');
  t.match(await pinned.c.request('blockchain.headers.subscribe'), { height: 100 });

  const wrong = client([`${server.url}#sha256=${'00'.repeat(32)}`]);
  await wrong.c.start();
  t.notOk(wrong.c.connected);
  t.match(wrong.lines.join('\n'), /certificate fingerprint [0-9a-f]{64} does not match the pinned 0000/);

  const unpinned = client([server.url]);
  await unpinned.c.start();
  t.notOk(unpinned.c.connected, 'no pin: normal CA checks refuse a self-signed certificate');
  t.match(unpinned.lines.join('\n'), /self[- ]signed certificate/);
});

t.test('keepalive: server.ping is sent on an idle session', async (t) => {
  const server = await TestElectrum.start();
  t.teardown(() => server.close());
  const { c } = client([server.url], { pingIntervalMs: 50 });
  await c.start();
  await until(() => (server.counts['server.ping'] ?? 0) >= 2, 30_000, 'pings');
  t.pass('pinged');
});
