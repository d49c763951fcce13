// The lease watchdog: a process of its own beside the daemon (lib/lease/watchdog.ts starts it). The daemon
// sends it the monotonic deadline of its lease after every renewal. If the deadline passes by `graceMs`
// without a newer one, the daemon could not fence itself — its event loop is stuck, or the process is
// stopped (SIGSTOP, a debugger) — and this process kills it with SIGKILL, which works on a stopped process
// too. The lease runs out on etcd's side only after the margin, so the daemon is gone (its listener and its
// tor control connection closed by the kernel, the onion with them) before a standby can take over.
// Patroni does the same with the Linux watchdog device, one level lower (it resets the machine).

const parent = Number(process.argv[2]);
const graceMs = Number(process.argv[3]);
const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);
let deadline = Infinity;

process.on('message', (m: { deadline?: number; off?: boolean }) => {
  if (m.off) deadline = Infinity;
  else if (typeof m.deadline === 'number') deadline = m.deadline;
});
// the daemon exited (or was killed): nothing left to watch
process.on('disconnect', () => process.exit(0));

setInterval(() => {
  const late = monotonicMs() - deadline;
  if (late < graceMs) return;
  process.stderr.write(`FATAL     watchdog: the leader lease was not renewed ${Math.round(late)} ms past its fencing deadline ` +
    `(event loop stuck or process stopped): killing bitdrop pid ${parent} before the lease runs out\n`);
  try { process.kill(parent, 'SIGKILL'); } catch { /* already gone */ }
  process.exit(0);
}, 100);
