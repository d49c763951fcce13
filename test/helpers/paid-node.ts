// A bitdrop node with prices, running in this process on its embedded devnet, with a clock the test moves.
// HTTP goes through real sockets (curl); payments are real transactions over the Electrum protocol.

import { BitdropNode, type NodeOptions } from '../../lib/node';
import { loadConfig } from '../../lib/config';
import { tmpDir } from './daemon';
import path from 'path';

export interface PaidNode {
  node: BitdropNode;
  url: string;
  dataDir: string;
  devnetDir: string;
  clock: { now: number; advance(ms: number): void };
  logs: string[];
  stop(): Promise<void>;
}

export const MiB = 1024 * 1024;
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export async function startPaidNode(flags: Record<string, unknown> = {}, dataDir = tmpDir(), nodeOpts: Partial<NodeOptions> = {}): Promise<PaidNode> {
  const clock = { now: Date.UTC(2026, 0, 1), advance(ms: number) { this.now += ms; } };
  const logs: string[] = [];
  const config = loadConfig({
    env: {},
    flags: {
      dataDir,
      listen: '127.0.0.1:0',
      console: '127.0.0.1:0',
      tor: 'off',
      // 1 MiB: 977 sats a day stored, 2000 sats a download; activation = 2977 sats
      storagePrice: 1_000_000,
      transferPrice: 2_048_000,
      ...flags,
    },
  });
  const node = new BitdropNode(config, { clock: () => clock.now, log: (l) => logs.push(l), sweepEveryMs: 3_600_000, coldSweepPeriodMs: 2000, ...nodeOpts });
  await node.start();
  return {
    node,
    url: node.url,
    dataDir,
    devnetDir: path.join(dataDir, 'devnet'),
    clock,
    logs,
    stop: () => node.stop(),
  };
}

/** Polls `fn` until it returns a truthy value (payments arrive asynchronously over Electrum). */
export async function until<T>(fn: () => Promise<T> | T, ms = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
