// Random bytes for ids and tokens, drawn from a pool refilled 4 KiB at a time from the same CSPRNG as
// crypto.randomBytes. A randomBytes(16) call per id and per delete token was 9 % of the daemon's busy time
// under 32 clients of small uploads (--cpu-prof): each is a trip into OpenSSL's DRBG. Node's randomUUID
// keeps such a pool for the same reason.

import crypto from 'crypto';

const POOL = Buffer.alloc(4096);
let used = POOL.length;

/** `n` (≤ 4096) cryptographically random bytes, in a buffer of their own. */
export function randomBytes(n: number): Buffer {
  if (n > POOL.length) return crypto.randomBytes(n);
  if (used + n > POOL.length) {
    crypto.randomFillSync(POOL);
    used = 0;
  }
  const out = Buffer.from(POOL.subarray(used, used + n));
  POOL.fill(0, used, used + n); // what was handed out does not stay behind in the pool
  used += n;
  return out;
}
