// `bitdrop names-proxy` as a child process, for the tests that drive it through tor.

import { spawn, type ChildProcess } from 'child_process';
import readline from 'readline';
import { CLI } from './daemon';

export interface NamesProxy {
  child: ChildProcess;
  /** its output so far, stdout and stderr */
  lines: string[];
  /** resolves once it says which resolver it uses; rejects if it exits first */
  ready: Promise<void>;
}

export function spawnNamesProxy(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): NamesProxy {
  const child = spawn(process.execPath, [CLI, 'names-proxy', ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    for (const s of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: s }).on('line', (l) => {
        lines.push(l);
        if (/resolving through/.test(l)) resolve();
      });
    }
    child.once('exit', (code) => reject(new Error(`names-proxy exited (${code}):\n${lines.join('\n')}`)));
  });
  ready.catch(() => {});
  return { child, lines, ready };
}
