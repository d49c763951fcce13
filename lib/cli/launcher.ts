// `npx bitdrop start` runs the daemon under npm (npx → sh -c → node). A SIGTERM sent to npx ends npx but
// is not passed on, which would leave the daemon (and the tor it manages) running with nobody to stop it.
// So under npm the daemon finds the npm process among its ancestors (Linux /proc) and stops, as for
// SIGTERM, once that process is gone. Run directly (node, systemd, a shell), nothing changes.

import fs from 'fs';

function parentOf(pid: number): number | undefined {
  try {
    // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function commandLine(pid: number): string {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { return ''; }
}

/** The npm/npx process this one runs under, when started by `npx`/`npm exec` (npm_command=exec). */
export function npmLauncher(env = process.env): number | undefined {
  if (env.npm_command !== 'exec' && env.npm_lifecycle_event !== 'npx') return undefined;
  let pid: number | undefined = process.ppid;
  for (let depth = 0; pid && pid > 1 && depth < 6; depth++) {
    if (/(^|[/\s])(npx|npm)(-cli\.js)?(\s|$)/.test(commandLine(pid))) return pid;
    pid = parentOf(pid);
  }
  return undefined;
}

/** Calls `onGone` once the launcher process has exited (checked every `everyMs`). Returns a stop function. */
export function whenLauncherGone(onGone: () => void, everyMs = 1000): () => void {
  const pid = npmLauncher();
  if (pid === undefined) return () => {};
  const timer = setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch {
      clearInterval(timer);
      onGone();
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
