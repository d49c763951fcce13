// The pure parts of `bitdrop get` and the envelope: where a link is fetched from (the fragment never kept
// in a URL, .bit hosts resolved), which links go through tor, range bookkeeping, and the padded envelope.

import t from 'tap';
import { addRange, missingRanges, proxyFor, urlCandidates } from '../lib/cli/get';
import { envelope, openEnvelope, padme } from '../lib/age/envelope';

const KEY = 'AGE-SECRET-KEY-1KZ9JQQNPZZF034MS6SFPW0CMLFX7WWUXRACGZ96ALFSNP5WYFXRQ6TERF9';
const ONION = 'http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion';

t.test('urlCandidates: the identity comes out of the fragment and out of every URL', async (t) => {
  const { urls, identity } = await urlCandidates(`${ONION}/fpKrxZ7A9He2kk_j5NJ35w#${KEY}`);
  t.equal(identity, KEY);
  t.equal(urls.length, 1);
  t.equal(urls[0].hash, '');
  t.notOk(urls[0].href.includes('#') || urls[0].href.includes('AGE-SECRET'), 'no URL carries the key');
  const plain = await urlCandidates(`${ONION}/fpKrxZ7A9He2kk_j5NJ35w/file.age`);
  t.equal(plain.identity, undefined);
  await t.rejects(urlCandidates(`${ONION}/fpKrxZ7A9He2kk_j5NJ35w#not-a-key`), /the #fragment of the link is not an age identity/);
  await t.rejects(urlCandidates(`${ONION}/nope`), /is not a bitdrop file or drop link/);
  await t.rejects(urlCandidates('ftp://x/fpKrxZ7A9He2kk_j5NJ35w'), /ftp: URLs are not bitdrop links/);
  await t.rejects(urlCandidates('no url'), /is not a URL/);
});

t.test('urlCandidates: a .bit host becomes the onion its name points to', async (t) => {
  const asked: string[] = [];
  const { urls } = await urlCandidates(`http://files.example.bit/fpKrxZ7A9He2kk_j5NJ35w#${KEY}`, {
    resolveBit: async (d) => { asked.push(d); return ONION.slice(7); },
  });
  t.same(asked, ['files.example.bit']);
  t.equal(urls[0].href, `${ONION}/fpKrxZ7A9He2kk_j5NJ35w`);
  await t.rejects(urlCandidates('http://example.bit/fpKrxZ7A9He2kk_j5NJ35w'), /no Namecoin lookup configured/);
  // the mirror onions the name lists come along, for when the box does not answer
  const mirror = `${'m'.repeat(56)}.onion`;
  const withMirrors = await urlCandidates('http://example.bit/fpKrxZ7A9He2kk_j5NJ35w/f.bin', { resolveBit: async () => ({ onion: ONION.slice(7), mirrors: [mirror] }) });
  t.equal(withMirrors.urls[0].href, `${ONION}/fpKrxZ7A9He2kk_j5NJ35w/f.bin`);
  t.same(withMirrors.mirrors, [mirror], 'the name\'s mirrors');
  t.same((await urlCandidates(`${ONION}/fpKrxZ7A9He2kk_j5NJ35w`)).mirrors, undefined, 'an onion link names none');
});

t.test('proxyFor: tor unless loopback or --clearnet', async (t) => {
  t.equal(proxyFor(new URL(`${ONION}/x`), {}), '127.0.0.1:9050');
  t.equal(proxyFor(new URL(`${ONION}/x`), { clearnet: true }), '127.0.0.1:9050', '.onion always through tor');
  t.equal(proxyFor(new URL('http://127.0.0.1:8080/x'), {}), undefined);
  t.equal(proxyFor(new URL('http://example.com/x'), {}), '127.0.0.1:9050');
  t.equal(proxyFor(new URL('http://example.com/x'), { clearnet: true }), undefined);
  t.equal(proxyFor(new URL('http://127.0.0.1:8080/x'), { socks: '127.0.0.1:9150' }), '127.0.0.1:9150');
});

t.test('ranges: merged as they arrive, the gaps are what is left', async (t) => {
  let done = addRange([], [10, 20]);
  done = addRange(done, [0, 5]);
  done = addRange(done, [5, 10]);
  t.same(done, [[0, 20]]);
  done = addRange(done, [30, 40]);
  t.same(missingRanges(done, 50), [[20, 30], [40, 50]]);
  t.same(missingRanges([], 7), [[0, 7]]);
});

t.test('envelope: padded to a Padmé size, opened back to name and size', async (t) => {
  t.equal(padme(1000), 1024, 'Padmé keeps few significant bits');
  t.equal(padme(1024), 1024);
  t.ok(padme(1_000_000) >= 1_000_000 && padme(1_000_000) <= 1_120_000);
  const e = envelope('Relevé été.pdf', 1_000_000);
  t.equal(e.size % 512, 0);
  t.ok(e.size - 1_000_000 <= 0.12 * 1_000_000 + 4096, `padded to ${e.size}`);
  const opened = openEnvelope(Buffer.concat([e.head, Buffer.alloc(100)]));
  t.same(opened, { name: 'Relevé été.pdf', size: 1_000_000, offset: e.head.length });
  t.equal(openEnvelope(Buffer.alloc(100)), 'needMore');
  t.equal(openEnvelope(Buffer.alloc(2048)), undefined, 'not ours: raw bytes');
  t.equal(envelope('x', 5, { pad: false }).size, 512 * 2 + 512 + 512 + 1024);
});
