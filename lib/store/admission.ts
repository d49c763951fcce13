// Who gets an upload slot (4 MiB of the 64 MiB all uploads share, hashers.ts) when there are not enough.
//
// A slot is held by an upload while it fills one chunk; a client that sends a chunk less one byte and stops
// keeps its slot, and 16 such clients used to keep every other upload waiting until they were cut after 10 s
// of silence, their slots often going to the next stalled client (issue 24: a 10 KiB upload took 28 s
// beside 50 stalled ones). The rules here:
//   - a slot goes to an upload that has bytes in hand to put in it (every waiter has: it asks for a slot
//     only with a received piece), preferring the client address holding the fewest slots, then the one
//     that received bytes most recently; so a sending connection goes before one that sent long ago and
//     waits, and one address cannot take the slots of others while they wait (behind Tor every client is
//     127.0.0.1, so each connection also fills one slot at a time: its upload takes the next only after
//     the last one is full);
//   - while anyone waits, a holder that has received nothing for YIELD_MS, or less than MIN_RATE over the
//     last YIELD_MS (a byte every second and a half kept a slot for ever: silence was all that counted),
//     gives its slot up: the upload is cut (408, "send it again"), one per waiter, the slowest first. Its
//     bytes cannot be kept in memory without breaking the memory bound, which is what the slots are for.
// YIELD_MS is 1.5 s: a live Tor circuit pauses for less than that while it has data to send (a pause of
// several seconds is a stall); with 50 stalled uploads and 500 idle connections held, a 1 MiB upload
// finished in 0.7–3.3 s on two cores shared with other test runs (load average 13–28), against 10–37 s
// before (test/uploads-siege.test.ts). 2 s gave 1.8–4.8 s under the same load.

/** An upload that fills slots: when it last received bytes, from whom, and how to cut it. */
export interface SlotHolder {
  lastData: number;
  /** true while it holds a slot it is filling (not one being hashed or written) */
  filling: boolean;
  /** the client's address (the same for every client behind Tor) */
  client?: string;
  /** bytes received so far */
  received?: number;
  cut(): void;
}

interface Waiter {
  holder?: SlotHolder;
  since: number;
  grant: () => void;
}

export const YIELD_MS = 1_500;
/** bytes per second a slot holder must receive while others wait (a slow Tor circuit moves 50 KB/s and more) */
export const MIN_RATE = 16 * 1024;
/** how often waiters look for silent holders */
const CHECK_MS = 200;

export class SlotAdmission {
  private out = 0;
  private readonly waiters: Waiter[] = [];
  private readonly holders = new Set<SlotHolder>();
  /** slots held per client address */
  private readonly perClient = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  /** per holder: when its current rate window began, and what it had received then */
  private readonly windows = new WeakMap<SlotHolder, { at: number; received: number }>();

  constructor(private readonly maxSlots: number, private readonly yieldMs = YIELD_MS) {}

  get inUse() { return this.out; }
  get waiting() { return this.waiters.length; }

  /** Registers an upload, so that it can be cut when it sits on a slot while others wait. */
  hold(holder: SlotHolder): () => void {
    this.holders.add(holder);
    return () => { this.holders.delete(holder); };
  }

  /** Resolves once `holder` may take a slot; the caller must `release(client)` it later. */
  async acquire(holder?: SlotHolder): Promise<void> {
    if (this.out < this.maxSlots && this.waiters.length === 0) {
      this.take(holder?.client, holder);
      return;
    }
    await new Promise<void>((resolve) => {
      this.waiters.push({ holder, since: Date.now(), grant: resolve });
      this.cutSilent();
      this.timer ??= setInterval(() => {
        if (this.waiters.length === 0) { clearInterval(this.timer); this.timer = undefined; return; }
        this.cutSilent();
      }, CHECK_MS);
    });
  }

  /** A slot given back (by the upload of `client`): it goes to the waiter the rules above choose. */
  release(client?: string) {
    this.out--;
    if (client !== undefined) {
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(client);
      else this.perClient.set(client, n);
    }
    while (this.out < this.maxSlots && this.waiters.length > 0) {
      const w = this.pick();
      this.take(w.holder?.client, w.holder);
      if (w.holder) w.holder.lastData = Date.now();
      w.grant();
    }
  }

  private take(client?: string, holder?: SlotHolder) {
    if (holder) this.windows.set(holder, { at: Date.now(), received: holder.received ?? 0 });
    this.out++;
    if (client !== undefined) this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
  }

  /** The waiter of the address holding the fewest slots; among those, the one with the freshest bytes. */
  private pick(): Waiter {
    let best = 0;
    const held = (w: Waiter) => (w.holder?.client === undefined ? 0 : this.perClient.get(w.holder.client) ?? 0);
    const fresh = (w: Waiter) => w.holder?.lastData ?? w.since;
    for (let i = 1; i < this.waiters.length; i++) {
      const a = this.waiters[i];
      const b = this.waiters[best];
      if (held(a) < held(b) || (held(a) === held(b) && fresh(a) > fresh(b))) best = i;
    }
    return this.waiters.splice(best, 1)[0];
  }

  /** While some wait, cuts holders silent or too slow, one per waiter, the slowest first. */
  private cutSilent() {
    if (this.waiters.length === 0) return;
    const now = Date.now();
    const slow: { h: SlotHolder; rate: number }[] = [];
    for (const h of this.holders) {
      if (!h.filling) continue;
      const received = h.received ?? 0;
      let w = this.windows.get(h);
      if (!w) this.windows.set(h, (w = { at: now, received }));
      const silent = now - h.lastData >= this.yieldMs;
      const span = now - w.at;
      const rate = span > 0 ? ((received - w.received) * 1000) / span : Infinity;
      if (silent) slow.push({ h, rate: 0 });
      else if (span >= this.yieldMs) {
        if (rate < MIN_RATE) slow.push({ h, rate });
        else this.windows.set(h, { at: now, received });
      }
    }
    slow.sort((a, b) => a.rate - b.rate || a.h.lastData - b.h.lastData);
    for (const { h } of slow.slice(0, this.waiters.length)) {
      this.holders.delete(h);
      h.cut();
    }
  }
}
