// Name values: what bitdrop publishes and how resolution reads onions (and subdomains) back out of them.

import t from 'tap';
import { buildValue, domainToName, onionFromValue } from '../lib/names/value';
import { buildNameFirstupdate, buildNameNew, buildNameUpdate, parseNameScript } from '../lib/names/script';

const onion = 'a'.repeat(56) + '.onion';
const other = 'b'.repeat(56) + '.onion';

t.test('the published value: _tor TXT and tor, merged into the operator JSON, at most 520 bytes', async (t) => {
  t.equal(buildValue(onion), `{"map":{"_tor":{"txt":"${onion}"}},"tor":"${onion}"}`);
  const merged = JSON.parse(buildValue(onion.replace('.onion', ''), { email: 'ops@example.org', map: { files: { tor: other } }, tor: 'ignored' }));
  t.same(merged, { email: 'ops@example.org', map: { files: { tor: other }, _tor: { txt: onion } }, tor: onion }, 'ours win for _tor and tor, theirs stay');
  t.throws(() => buildValue(onion, { pad: 'x'.repeat(480) }), /would be \d+ bytes; Namecoin allows at most 520/);
  t.throws(() => buildValue('not-an-onion'), /not a v3 onion/);
});

t.test('resolution reads the _tor TXT first, then tor, and subdomains through map', async (t) => {
  const value = JSON.stringify({ map: { _tor: { txt: onion }, files: { map: { _tor: { txt: other } } }, '*': { tor: onion } }, tor: other });
  t.equal(onionFromValue(value, [], 'example.bit'), onion, '_tor TXT before tor');
  t.equal(onionFromValue(JSON.stringify({ tor: other }), [], 'example.bit'), other, 'tor alone');
  t.equal(onionFromValue(value, ['files'], 'files.example.bit'), other, 'a subdomain through map');
  t.equal(onionFromValue(value, ['www'], 'www.example.bit'), onion, 'the * entry');
  t.throws(() => onionFromValue(JSON.stringify({ ip: '192.0.2.1' }), [], 'example.bit'), /holds no onion address/);
  t.throws(() => onionFromValue('not json', [], 'example.bit'), /not JSON/);
  t.throws(() => onionFromValue(JSON.stringify({ map: {} }), ['a'], 'a.example.bit'), /no "a" entry/);
  t.same(domainToName('Files.Example.bit.'), { name: 'd/example', labels: ['files'] });
  t.same(domainToName('a.b.example.bit'), { name: 'd/example', labels: ['a', 'b'] });
  t.throws(() => domainToName('example.com'), /not a \.bit domain/);
});

t.test('name scripts round-trip as Namecoin encodes them (plain pushes, PUSHDATA2 for long values)', async (t) => {
  const addr = Buffer.from('76a914' + '11'.repeat(20) + '88ac', 'hex');
  const rand = Buffer.alloc(20, 7);
  const n = parseNameScript(buildNameNew(addr, Buffer.from('d/x'), rand))!;
  t.equal(n.op, 'name_new');
  t.ok(n.address.equals(addr));
  const one = buildNameUpdate(addr, Buffer.from('d/x'), Buffer.from([1]));
  t.equal(one.subarray(0, 8).toString('hex'), '5303642f7801016d', 'a one-byte value is a plain push, not OP_1');
  const long = buildNameFirstupdate(addr, Buffer.from('d/x'), Buffer.alloc(520, 0x61), rand);
  const f = parseNameScript(long)!;
  t.match(f, { op: 'name_firstupdate' });
  t.equal((f as { value: Buffer }).value.length, 520);
  t.equal(parseNameScript(Buffer.from('5120' + '00'.repeat(32), 'hex')), undefined, 'a taproot output is not a name script');
});

t.test('the RPC client keeps to the clearnet rule and reads credentials', async (t) => {
  const { NamecoinRpc } = await import('../lib/names/rpc');
  t.throws(() => new NamecoinRpc({ url: 'http://u:p@192.0.2.1:8336' }), /not on this machine and Tor is off; refusing a clearnet connection/);
  t.doesNotThrow(() => new NamecoinRpc({ url: 'http://u:p@192.0.2.1:8336', socks: { host: '127.0.0.1', port: 9050 } }), 'through tor');
  t.doesNotThrow(() => new NamecoinRpc({ url: 'http://u:p@192.0.2.1:8336', clearnet: true }), 'with --clearnet');
  t.equal(new NamecoinRpc({ url: 'http://u:p@127.0.0.1:8336/wallet/my%20w' }).wallet, 'my w', 'the /wallet/<name> path');
  t.throws(() => new NamecoinRpc({ url: 'http://127.0.0.1:8336', cookieFile: '/nonexistent/.cookie' }), /cannot read the Namecoin cookie/);
});
