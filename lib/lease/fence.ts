// The fencing check every store write passes (lib/store/db.ts, lib/store/index.ts). A leader may write only
// while its lease is surely still held: until the moment its last renewal was *sent*, plus the lease's TTL,
// minus a safety margin. etcd counts the TTL from when it *received* that renewal, so the local deadline
// always falls before the lease can run out on the server, by at least the margin — and a standby takes the
// data dir only after the lease is gone there. A stale leader's write therefore fails here instead of landing.
//
// The clock is CLOCK_MONOTONIC (process.hrtime): it keeps counting while this process is stopped (SIGSTOP,
// a hung FUSE call), so a process that resumes after a freeze finds its deadline past before it writes.

import { UserError } from '../errors';

/** Milliseconds of CLOCK_MONOTONIC: one clock for this process and its watchdog child. */
export const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

/** A write refused because this daemon is not (or no longer surely) the leader. */
export class FencedError extends UserError {
  readonly code = 'FENCED';
  constructor(why: string) {
    super(503, `this bitdrop is not the leader (${why}); nothing was stored: send it again in a few seconds`, {}, { 'retry-after': '5' });
  }
}

/** Throws FencedError when writing is not allowed now. */
export type Fence = () => void;
