// Several files in one upload (curl -F file=@a -F file=@b): one drop with one page, one payment account
// and a streamed zip of all; deleting the drop deletes every file; an unpaid drop is a 402 page.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { startDaemon, curl, curlStatus, exec, randomFile, sha256File, tmpDir } from './helpers/daemon';

t.test('a drop of three files on a free box: page, JSON, each file, the zip, deletion', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const a = randomFile(work, 5 * 1024 * 1024 + 3, 'a.bin');
  const b = randomFile(work, 1000, 'same.txt');
  const c = path.join(work, 'c', 'same.txt');
  fs.mkdirSync(path.dirname(c));
  fs.copyFileSync(b, c);
  const text = await curl('-f', '-F', `file=@${a}`, '-F', `file=@${b}`, '-F', `file=@${c}`, `${d.url}/`);
  const [dropUrl] = text.split('\n');
  t.match(dropUrl, new RegExp(`^${d.url}/[A-Za-z0-9_-]{22}$`), 'the first line is the drop');
  t.match(text, /^all:\s+http\S+\.zip$/m);
  t.equal(text.match(/^file:/gm)?.length, 3);
  const token = /X-Delete-Token: (\S+)'/.exec(text)![1];

  const drop = JSON.parse(await curl('-f', '-H', 'Accept: application/json', dropUrl));
  t.equal(drop.files.length, 3);
  t.equal(drop.size, 5 * 1024 * 1024 + 3 + 2000);
  t.same(drop.files.map((f: { name: string }) => f.name), ['a.bin', 'same.txt', 'same (2).txt'], 'names in one drop differ from the upload on (issue 24)');
  await curl('-f', '-o', path.join(work, 'one'), drop.files[0].url);
  t.equal(await sha256File(path.join(work, 'one')), await sha256File(a), 'each file downloads alone');

  const zip = path.join(work, 'all.zip');
  const head = await curl('-f', '-D', '-', '-o', zip, drop.archive);
  t.match(head, /content-type: application\/zip/i);
  t.match(head, /content-disposition: attachment/i);
  t.equal(Number(/content-length: (\d+)/i.exec(head)![1]), fs.statSync(zip).size, 'the zip has an exact Content-Length');
  t.same((await exec('unzip', ['-Z1', zip])).stdout.trim().split('\n'), ['a.bin', 'same.txt', 'same (2).txt'], 'names made unique');
  await exec('unzip', ['-q', '-d', path.join(work, 'x'), zip]);
  t.equal(await sha256File(path.join(work, 'x', 'a.bin')), await sha256File(a));
  t.equal(await sha256File(path.join(work, 'x', 'same (2).txt')), await sha256File(b));

  const page = await curlStatus('-H', 'Accept: text/html', dropUrl);
  t.equal(page.status, 200);
  t.match(page.body, /<h1>3 files<\/h1>/);

  t.equal((await curlStatus('-X', 'DELETE', '-H', `X-Delete-Token: ${token}`, drop.files[1].url.replace(/\/[^/]*$/, ''))).status, 409, 'a file of a drop is deleted with its drop');
  t.equal((await curlStatus('-X', 'DELETE', '-H', `X-Delete-Token: ${token}`, dropUrl)).status, 200);
  t.equal((await curlStatus('-o', '/dev/null', dropUrl)).status, 410);
  for (const f of drop.files) t.equal((await curlStatus('-o', '/dev/null', f.url)).status, 410, 'every file of the drop is gone');
});

t.test('priced: one address for the drop; unpaid, a browser gets the 402 page, never an attachment', async (t) => {
  const d = await startDaemon({ paid: true });
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const drop = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-F', `file=@${randomFile(work, 100, 'x.txt')}`, '-F', `file=@${randomFile(work, 200, 'y.txt')}`, `${d.url}/`));
  t.equal(drop.state, 'awaiting payment');
  t.match(drop.address, /^bcrt1/);
  t.ok(drop.deleteToken);
  for (const url of [drop.archive, drop.files[0].url]) {
    const r = await curl('-s', '-D', '-', '-H', 'Accept: text/html', url);
    t.match(r, /^HTTP\/1\.1 402/);
    t.notMatch(r, /content-disposition/i, 'a 402 is never an attachment');
    t.match(r, /content-type: text\/html/i);
    t.match(r, new RegExp(`Send <strong>546 sats</strong>`));
    t.match(r, /<svg role="img"/, 'with the QR code');
  }
  const single = await curlStatus('-H', 'Accept: application/json', '-F', `file=@${randomFile(work, 10, 'z.txt')}`, `${d.url}/`);
  t.equal(single.status, 201);
  t.notOk(JSON.parse(single.body).files, 'one file in a form is a plain file, not a drop');
});

t.test('files of a drop never finished (the daemon died mid-upload) are removed by the sweep after the next start', async (t) => {
  const { Store } = await import('../lib/store');
  const { Readable } = await import('stream');
  const dir = tmpDir('bitdrop-test-', t);
  let store = await Store.open({ dir });
  const drop = { id: 'DDDDDDDDDDDDDDDDDDDDDD', deleteToken: 'tok' };
  const one = await store.ingest(Readable.from([Buffer.from('first file')]), { name: 'a', type: 'text/plain', maxBytes: 1e6, drop });
  const two = await store.ingest(Readable.from([Buffer.from('second')]), { name: 'b', type: 'text/plain', maxBytes: 1e6, drop });
  const kept = await store.ingest(Readable.from([Buffer.from('a finished drop')]), { name: 'c', type: 'text/plain', maxBytes: 1e6, drop: { id: 'EEEEEEEEEEEEEEEEEEEEEE', deleteToken: 't' } });
  const kept2 = await store.ingest(Readable.from([Buffer.from('its second file')]), { name: 'd', type: 'text/plain', maxBytes: 1e6, drop: { id: 'EEEEEEEEEEEEEEEEEEEEEE', deleteToken: 't' } });
  await store.finishDrop('EEEEEEEEEEEEEEEEEEEEEE', [kept.manifest, kept2.manifest]);
  await store.close();
  store = await Store.open({ dir });
  t.teardown(() => store.close());
  t.ok(await store.get(one.manifest.id), 'opening the store walks no manifests');
  // The daemon runs this in the background once it listens; only files from before its start are looked at.
  t.equal(await store.removeUnfinishedDrops(one.manifest.created), 0, 'files created since the start are left to their upload');
  t.equal(await store.removeUnfinishedDrops(Date.now() + 1, { slice: 1 }), 2, 'the sweep removes both files of the unfinished drop');
  t.notOk(await store.get(one.manifest.id), 'the unfinished drop is gone');
  t.notOk(await store.get(two.manifest.id));
  t.ok(await store.get(kept.manifest.id), 'a finished drop stays');
  t.same((await store.getDrop('EEEEEEEEEEEEEEEEEEEEEE'))?.files, [kept.manifest.id, kept2.manifest.id]);
  t.equal(store.stats().files, 2);
  t.equal(store.stats().chunks, 2, 'the unfinished files freed their chunks');
});

t.test('the home page names the prices in plain words and the onion curl line', async (t) => {
  const { homePage } = await import('../lib/http/pages');
  const { loadConfig } = await import('../lib/config');
  const paid = homePage({ base: 'http://127.0.0.1:8080', onion: 'http://' + 'a'.repeat(56) + '.onion', config: loadConfig({ env: {} }) });
  t.match(paid, /1 GiB kept 30 days and downloaded 10 times costs <strong>160 sats<\/strong>/);
  t.match(paid, new RegExp(`curl --socks5-hostname 127\\.0\\.0\\.1:9050 -T file http://a{56}\\.onion/`));
  t.match(paid, /Largest upload: 5 GiB/);
  t.match(paid, /<input id="file" name="file" type="file" multiple required>/);
  const free = homePage({ base: 'http://127.0.0.1:8080', config: loadConfig({ env: {}, flags: { free: true } }) });
  t.match(free, /This drop box is <strong>free<\/strong>/);
  t.match(free, /curl -T file http:\/\/127\.0\.0\.1:8080\//);
  t.notMatch(paid + free, /<script|style="/, 'no scripts, no inline styles');
});
