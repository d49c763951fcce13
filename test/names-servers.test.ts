// The default .bit resolution path: Electrum-NMC's built-in server list, and which resolver a `bitdrop resolve`
// or `bitdrop names-proxy` picks from its flags. Nothing here reaches the Tor network or the internet: the
// resolve run points --socks at a closed loopback port, the names-proxy runs attach to a lone tor with
// DisableNetwork 1.

import { ChildProcess, execFile, spawn } from 'child_process';
import net from 'net';
import readline from 'readline';
import t from 'tap';
import { parseServer } from '../lib/payments/electrum';
import { DEFAULT_SERVER_COUNT, ELECTRUM_NMC_SERVERS, chooseNameResolver, defaultServerPool, entryUrl, pickServers } from '../lib/names/servers';
import { CLI, tmpDir } from './helpers/daemon';
import { startLoneTor } from './helpers/tor-lone';

t.test('the built-in list parses: every entry is a well-formed ssl:// or tcp:// HOST:PORT', async (t) => {
  const hosts = Object.keys(ELECTRUM_NMC_SERVERS);
  t.ok(hosts.length >= 20, `${hosts.length} servers, as Electrum-NMC ships them`);
  for (const [host, e] of Object.entries(ELECTRUM_NMC_SERVERS)) {
    const url = entryUrl(host, e);
    t.ok(url, `${host} has a TLS or TCP port`);
    const s = parseServer(url!);
    t.equal(s.host, host, `${url}: host`);
    t.ok(s.protocol === 'ssl' || s.protocol === 'tcp', `${url}: scheme`);
    t.ok(Number.isInteger(s.port) && s.port > 0 && s.port < 65536, `${url}: port`);
    t.equal(s.protocol, e.s ? 'ssl' : 'tcp', `${url}: TLS whenever the server offers it`);
    t.match(e.version, /^\d+(\.\d+)*$/, `${host}: protocol version`);
  }
  t.equal(entryUrl('2607:5300:203:7ac5:198:50:223:25', { pruning: '-', s: '50002', version: '1.4.3' }), 'ssl://[2607:5300:203:7ac5:198:50:223:25]:50002', 'IPv6 in brackets');
  t.equal(entryUrl('ulrichard.ch', { pruning: '-', t: '50005', version: '1.4' }), 'tcp://ulrichard.ch:50005', 'tcp only when no TLS port');
});

t.test('the default pool: onion servers with protocol 1.4.3 (name proofs), over TLS', async (t) => {
  const pool = defaultServerPool();
  t.same(pool.sort(), [
    'ssl://h6qrnwxtwiaahsw4qhk2nbutswwb54vnqso6jrxeuk6nwtfbos7jkoqd.onion:50002',
    'ssl://mqhok2edqcxdpklwovquuvvl2q5or4g2o777qwrinydgzfxjbixq76yd.onion:50002',
    'ssl://quuzpffsddq3aim3gk4oiczzyt5okjjzf4zpe6okzo6qidao6rshynqd.onion:50002',
    'ssl://wirg2tsto7rme7n26lkd3ivbvxmjyy2pktlozwjuep22jcsfsghfqbqd.onion:50002',
  ]);
  for (const u of pool) t.match(u, /^ssl:\/\/[a-z2-7]{56}\.onion:\d+$/, `${u} is a v3 onion over TLS`);
  t.same(defaultServerPool({ 'a.example': { pruning: '-', s: '1', version: '1.4.3' }, ['b'.repeat(56) + '.onion']: { pruning: '-', t: '2', version: '1.4' } }), [],
    'clearnet servers and onions older than 1.4.3 are left out');
  t.same(defaultServerPool({ ['c'.repeat(56) + '.onion']: { pruning: '-', t: '50001', version: '1.4.5' } }), [`tcp://${'c'.repeat(56)}.onion:50001`], 'tcp when no TLS port');
});

t.test('pickServers: distinct servers, as many as asked, at most the pool', async (t) => {
  const pool = ['ssl://a:1', 'ssl://b:1', 'ssl://c:1', 'ssl://d:1'];
  t.equal(DEFAULT_SERVER_COUNT, 2, 'two servers by default: they must agree');
  t.same(pickServers(pool, 2, () => 0), ['ssl://a:1', 'ssl://b:1']);
  t.same(pickServers(pool, 2, () => 0.99), ['ssl://d:1', 'ssl://c:1']);
  for (let i = 0; i < 50; i++) {
    const p = pickServers(pool);
    t.equal(new Set(p).size, 2, 'two distinct');
    if (!p.every((u) => pool.includes(u))) t.fail(`${p} not from the pool`);
  }
  t.same(pickServers(['ssl://only:1'], 2), ['ssl://only:1'], 'a pool of one gives one');
  t.same(pool, ['ssl://a:1', 'ssl://b:1', 'ssl://c:1', 'ssl://d:1'], 'the pool is not changed');
});

t.test('chooseNameResolver: flags first, then the default of two built-in onion servers', async (t) => {
  const given = chooseNameResolver({ electrumNmc: ['tcp://127.0.0.1:1', ' ssl://h:2 '], namecoinRpc: 'http://u:p@127.0.0.1:8336', dataDir: '/d', network: 'namecoin' });
  t.same(given, { kind: 'electrum', servers: ['tcp://127.0.0.1:1', 'ssl://h:2'], builtIn: false }, '--electrum-nmc wins over everything');
  t.same(chooseNameResolver({ namecoinRpc: 'http://u:p@127.0.0.1:8336', dataDir: '/d', network: 'namecoin' }), { kind: 'node', url: 'http://u:p@127.0.0.1:8336' }, '--namecoin-rpc: that node');
  t.same(chooseNameResolver({ electrumNmc: [], dataDir: '/d', network: 'namecoin-regtest' }), { kind: 'node' }, '--data-dir: its devnet node, as before');
  const def = chooseNameResolver({ network: 'namecoin', random: () => 0 });
  t.equal(def.kind, 'electrum');
  if (def.kind !== 'electrum' || !def.builtIn) throw new Error('expected the built-in default');
  t.same(def.pool, defaultServerPool(), 'the built-in onion pool');
  t.same(def.pick(), defaultServerPool().slice(0, 2), 'two of them per lookup');
  t.equal(chooseNameResolver({ electrumNmc: [' '], network: 'namecoin' }).kind, 'electrum', 'blank --electrum-nmc values count as none');
  t.throws(() => chooseNameResolver({ network: 'namecoin-regtest' }), /no Namecoin Electrum server is built in for namecoin-regtest/, 'no mainnet servers for regtest');
});

t.test('bitdrop resolve with no flags: one clear line when tor is not reachable', async (t) => {
  const dir = tmpDir('bitdrop-names-default-', t);
  // a loopback port nobody listens on
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BITDROP_')));
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'resolve', 'example.bit', '--socks', `127.0.0.1:${port}`], { cwd: dir, env, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }));
  });
  t.equal(r.code, 1, 'exit 1');
  t.equal(r.stdout, '', 'no onion printed');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, new RegExp(`^bitdrop: tor is not reachable at 127\\.0\\.0\\.1:${port}: start tor or give its SocksPort \\(--socks HOST:PORT\\)`), r.stderr.trim());
});

/** Runs `bitdrop names-proxy` against `controlArg` until its "resolving through" line (or its exit).
 * (Learning the SocksPort from a tor that has one is tested on the private network: test/names-proxy.test.ts.) */
function namesProxy(controlArg: string, cwd: string): { child: ChildProcess; first: Promise<{ line?: string; code?: number | null; stderr: string }> } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BITDROP_')));
  const child = spawn(process.execPath, [CLI, 'names-proxy', '--tor-control', controlArg], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const first = new Promise<{ line?: string; code?: number | null; stderr: string }>((resolve) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      if (/resolving through/.test(l)) resolve({ line: l, stderr });
    });
    child.once('exit', (code) => resolve({ code, stderr }));
  });
  return { child, first };
}

t.test('names-proxy with no flags and a tor without a SocksPort: one clear line, tor put back', { timeout: 60_000 }, async (t) => {
  const tor = await startLoneTor(); // DisableNetwork 1: nothing leaves this machine
  t.teardown(() => tor.stop());
  const dir = tmpDir('bitdrop-names-default-proxy-', t);
  const control = await tor.connect();
  t.teardown(() => control.close());

  // the lone tor has SocksPort 0: nothing to reach the servers through, said in one line, tor put back
  const none = namesProxy(tor.controlArg, dir);
  t.teardown(() => {
    if (none.child.exitCode === null) none.child.kill('SIGKILL');
  });
  const r1 = await none.first;
  t.equal(r1.code, 1, 'exit 1 without a SocksPort');
  t.match(r1.stderr.trim(), /^bitdrop: the tor at the control port has no TCP SocksPort to reach the Namecoin Electrum servers through; give --socks/, r1.stderr.trim());
  t.match((await control.command('GETCONF __LeaveStreamsUnattached')).lines[0], /=0$/, "tor's setting restored");
});
