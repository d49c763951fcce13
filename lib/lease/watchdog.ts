// Starts the watchdog process (watchdog-child.ts) and tells it each new deadline.

import { fork, type ChildProcess } from 'child_process';
import fs from 'fs';
import path from 'path';

export class Watchdog {
  private child?: ChildProcess;

  /** `graceMs`: how long past a deadline the watchdog waits for the daemon to fence itself before it kills it */
  constructor(private readonly graceMs: number, private readonly onLost: (why: string) => void) {}

  start(): void {
    const js = path.join(__dirname, 'watchdog-child.js');
    const file = fs.existsSync(js) ? js : path.join(__dirname, 'watchdog-child.ts');
    // execArgv of the daemon (a TypeScript loader under tests), without inspector flags
    const child = fork(file, [String(process.pid), String(this.graceMs)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')),
    });
    child.unref();
    (child.channel as unknown as { unref?: () => void })?.unref?.();
    child.once('exit', (code, signal) => {
      if (this.child === child) this.onLost(`the lease watchdog (pid ${child.pid}) exited (${signal ?? code})`);
    });
    this.child = child;
  }

  /** The daemon's new fencing deadline (monotonic ms). */
  arm(deadline: number): void {
    this.child?.send({ deadline }, () => undefined);
  }

  /** No lease to guard any more (released, or fenced and exiting by itself). */
  stop(): void {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    try { child.send({ off: true }, () => undefined); } catch { /* gone */ }
    child.disconnect?.();
    child.kill();
  }
}
