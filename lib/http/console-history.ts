// The console's memory of the days: one LevelDB entry per UTC day (layout H[day]) with the bytes stored, the
// sats earned and the bytes sent, sampled from the daemon's status every few minutes and whenever the
// console is looked at. Earned is the difference of the ledger's persisted creditsEarned counter between
// days; sent adds up what downloads sent (the status's bytesServedSinceStart, per process).

import type { Db } from '../store';
import { layout, PREFIX } from '../store/layout';

export interface DayStats {
  /** UTC day: days since the epoch */
  day: number;
  /** bytes stored at the last sample of the day */
  stored: number;
  files: number;
  /** the ledger's creditsEarned (cumulative) at the first and the last sample of the day */
  earnedFirst: number;
  earnedLast: number;
  /** bytes sent to downloaders that day (sampled) */
  sent: number;
}

export interface Sample { stored: number; files: number; earnedTotal: number; servedSinceStart: number }

export const DAY = 86_400_000;

export class ConsoleHistory {
  private lastServed = 0;
  private chain = Promise.resolve();

  constructor(private readonly db: Db) {}

  /** Folds one sample into today's entry (samples are serialised). */
  record(s: Sample, now = Date.now()): Promise<void> {
    this.chain = this.chain.then(async () => {
      const day = Math.floor(now / DAY);
      const v = await this.db.get(layout.history(day));
      const today: DayStats = v ? JSON.parse(v.toString())
        : { day, stored: 0, files: 0, earnedFirst: s.earnedTotal, earnedLast: s.earnedTotal, sent: 0 };
      const delta = s.servedSinceStart >= this.lastServed ? s.servedSinceStart - this.lastServed : s.servedSinceStart;
      this.lastServed = s.servedSinceStart;
      const next: DayStats = { ...today, stored: s.stored, files: s.files, earnedLast: s.earnedTotal, sent: today.sent + delta };
      await this.db.put(layout.history(day), Buffer.from(JSON.stringify(next)));
    }).catch(() => undefined);
    return this.chain;
  }

  /** The last `days` days, oldest first; days without a sample carry the stored level on and earn nothing. */
  async days(days = 30, now = Date.now()): Promise<Array<DayStats & { earned: number }>> {
    const today = Math.floor(now / DAY);
    const from = today - days + 1;
    const seen = new Map<number, DayStats>();
    let before: DayStats | undefined;
    for await (const [k, v] of this.db.iterator({ ...layout.range(PREFIX.history), lt: layout.history(today + 1) })) {
      const d = JSON.parse(v.toString()) as DayStats;
      if (layout.parseHistory(k) < from) before = d;
      else seen.set(d.day, d);
    }
    const out: Array<DayStats & { earned: number }> = [];
    let prev = before;
    for (let day = from; day <= today; day++) {
      const d = seen.get(day);
      if (!d) {
        if (prev || out.length) out.push({ day, stored: prev?.stored ?? 0, files: prev?.files ?? 0, earnedFirst: prev?.earnedLast ?? 0, earnedLast: prev?.earnedLast ?? 0, sent: 0, earned: 0 });
        continue;
      }
      out.push({ ...d, earned: Math.max(0, d.earnedLast - (prev ? prev.earnedLast : d.earnedFirst)) });
      prev = d;
    }
    return out;
  }
}
