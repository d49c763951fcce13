// A copy sent by another box (X-Bitdrop-Copy-Of) is checked against its original before it keeps the
// original's id, and the check holds the upload's slot while it asks. Naming dead or silent originals must not
// let anyone hold the upload slots: at most 4 checks run at once; past them a copy is stored at once with an id
// of its own, and ordinary uploads go on.

import t from 'tap';
import net from 'net';
import crypto from 'crypto';
import { startDaemon } from './helpers/daemon';

const put = async (url: string, body: Buffer, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { method: 'PUT', body, headers: { Accept: 'application/json', ...headers } });
  return { status: res.status, json: (await res.json().catch(() => ({}))) as { id?: string } };
};
const claimedId = () => crypto.randomBytes(16).toString('base64url').slice(0, 22);

t.test('copies naming a silent original hold at most 4 upload slots', async (t) => {
  const d = await startDaemon();
  t.teardown(() => d.stop());
  // an "original box" that accepts connections and never answers
  const held: net.Socket[] = [];
  const silent = net.createServer((s) => { held.push(s); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { held.forEach((s) => s.destroy()); silent.close(() => r()); }));
  const origin = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;

  const ids = Array.from({ length: 6 }, claimedId);
  const checked = ids.slice(0, 4).map((id) => put(`${d.url}/copy-${id}.bin`, crypto.randomBytes(1000), { 'X-Bitdrop-Copy-Of': `${origin}/${id}` }));
  while (held.length < 4) await new Promise((r) => setTimeout(r, 50));

  // four checks wait on the silent box; the next copies are not checked, and get ids of their own
  for (const id of ids.slice(4)) {
    const r = await put(`${d.url}/copy-${id}.bin`, crypto.randomBytes(1000), { 'X-Bitdrop-Copy-Of': `${origin}/${id}` });
    t.equal(r.status, 201, 'a copy past the four checks is stored at once');
    t.not(r.json.id, id, '… with an id of its own');
  }
  const plain = await put(`${d.url}/plain.bin`, crypto.randomBytes(1000));
  t.equal(plain.status, 201, 'an ordinary upload is answered while four checks wait');
  t.equal(held.length, 4, 'only four checks asked the original');
  t.match(d.output(), /not checked as a copy \(4 copy checks already running\)/, 'the log says why a copy was not checked');

  // the original goes away: the waiting copies are stored with ids of their own, nothing is lost
  held.forEach((s) => s.destroy());
  const answers = await Promise.all(checked);
  answers.forEach((r, i) => {
    t.equal(r.status, 201, `copy ${i + 1} stored after its original failed to answer`);
    t.not(r.json.id, ids[i], '… with an id of its own');
  });
});
