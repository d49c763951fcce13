// The pooled random bytes behind ids and delete tokens (lib/store/random.ts).

import t from 'tap';
import { randomBytes } from '../lib/store/random';
import { newId, newToken, ID_PATTERN } from '../lib/store';

t.test('pooled random bytes: the sizes asked for, never repeated, across many refills of the pool', async (t) => {
  const seen = new Set<string>();
  let total = 0;
  for (let i = 0; i < 20_000; i++) {
    const n = 1 + (i % 40);
    const b = randomBytes(n);
    if (b.length !== n) { t.fail(`asked ${n} bytes, got ${b.length}`); return; }
    total += n;
    if (n >= 16) seen.add(b.toString('hex'));
  }
  t.ok(total > 100 * 4096, `${total} bytes drawn: the pool was refilled many times`);
  const big = randomBytes(10_000);
  t.equal(big.length, 10_000, 'more than the pool: straight from crypto');
  const sixteen = [...seen];
  t.equal(new Set(sixteen).size, sixteen.length, 'no value of 16+ bytes came twice');
  // Each bit of fresh bytes is about half ones: a pool handing out zeros (or its own wiped bytes) fails this.
  const sample = Buffer.concat(Array.from({ length: 2000 }, () => randomBytes(32)));
  let ones = 0;
  for (const byte of sample) for (let b = byte; b; b >>= 1) ones += b & 1;
  const share = ones / (sample.length * 8);
  t.ok(share > 0.49 && share < 0.51, `share of one bits: ${share.toFixed(4)}`);
  const a = randomBytes(16);
  const copy = Buffer.from(a);
  randomBytes(4096);
  t.ok(a.equals(copy), 'a buffer handed out is its own: refilling the pool does not change it');
});

t.test('ids and delete tokens: 22 URL-safe characters, unique', async (t) => {
  const ids = new Set(Array.from({ length: 5000 }, () => newId()));
  t.equal(ids.size, 5000, '5000 distinct ids');
  t.ok([...ids].every((id) => ID_PATTERN.test(id)), 'every id matches the id pattern');
  const tokens = new Set(Array.from({ length: 5000 }, () => newToken()));
  t.equal(tokens.size, 5000, '5000 distinct tokens');
  t.ok([...tokens].every((x) => /^[A-Za-z0-9_-]{22}$/.test(x)), 'every token is 22 URL-safe characters');
});
