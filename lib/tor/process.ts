// The tor process bitdrop runs in managed mode: spawned in the foreground as our child, with a torrc
// rendered into <dataDir>/tor/. Restarting is TorService's decision; this only starts, watches, stops.

import { ChildProcess, spawn } from 'child_process';
import { EventEmitter } from 'events';
import fs from 'fs';
import path from 'path';
import readline from 'readline';
import { ControlAddress, TorError } from './control';
import { renderTorrc } from './torrc';

export interface TorPaths {
  /** <dataDir>/tor: our files (torrc, onion key, clients) */
  dir: string;
  /** tor's own DataDirectory (0700): consensus cache, guards, the control cookie */
  dataDirectory: string;
  torrc: string;
  controlPortFile: string;
  pidFile: string;
  noticeLog: string;
}

/**
 * Where tor's files are. With a leader term (lib/lease), tor's working files are the term's own —
 * DataDirectory `data.t<term>` (tor locks its `lock` file there), `torrc.t<term>`, `control-port.t<term>`,
 * `tor.pid.t<term>`, `notice.t<term>.log` — so that the tor of a stopped earlier leader (its GlusterFS client
 * stopped or cut off, its locks kept on the bricks) never keeps the new leader's tor from starting or writing.
 * The onion key and the clients stay in `tor/`: they are only ever read once written.
 */
export function torPaths(dataDir: string, term?: number): TorPaths {
  const dir = path.join(dataDir, 'tor');
  const t = term === undefined ? '' : `.t${term}`;
  return {
    dir,
    dataDirectory: path.join(dir, `data${t}`),
    torrc: path.join(dir, `torrc${t}`),
    controlPortFile: path.join(dir, `control-port${t}`),
    pidFile: path.join(dir, `tor.pid${t}`),
    noticeLog: path.join(dir, `notice${t}.log`),
  };
}

/** Creates a directory with mode 0700, tightening it if it already exists (tor refuses a looser DataDirectory). */
export function privateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** The executable a name resolves to on PATH (or the path itself), if it exists. */
export function findExecutable(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  const candidates = name.includes('/') ? [name] : envPath.split(path.delimiter).filter(Boolean).map((d) => path.join(d, name));
  return candidates.find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

const STARTUP_TIMEOUT_MS = 60_000;

export class ManagedTor extends EventEmitter {
  private child?: ChildProcess;
  private lastLines: string[] = [];
  readonly paths: TorPaths;

  constructor(private opts: { binary: string; dataDir: string; term?: number; torrcAppend?: string; log: (line: string) => void }) {
    super();
    this.paths = torPaths(opts.dataDir, opts.term);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Spawns tor and resolves with its control port once tor has written it; emits 'exit' later.
   * socksPort: the port to ask for again after a restart (default: any free one).
   */
  async start(socksPort?: number): Promise<ControlAddress> {
    const p = this.paths;
    privateDir(p.dir);
    privateDir(p.dataDirectory);
    fs.writeFileSync(
      p.torrc,
      renderTorrc({
        dataDirectory: p.dataDirectory,
        controlPortFile: p.controlPortFile,
        pidFile: p.pidFile,
        noticeLog: p.noticeLog,
        ownerPid: process.pid,
        socksPort: `127.0.0.1:${socksPort ?? 'auto'}`,
        appendFile: this.opts.torrcAppend,
      }),
      { mode: 0o600 },
    );
    fs.rmSync(p.controlPortFile, { force: true }); // a stale file would point at a dead tor

    // --defaults-torrc /dev/null: only our torrc counts, not /etc/tor/torrc-defaults.
    // detached: its own process group, so a Ctrl-C meant for bitdrop does not kill tor before bitdrop
    // has said DEL_ONION; tor still dies with bitdrop (TAKEOWNERSHIP, __OwningControllerProcess).
    const child = spawn(this.opts.binary, ['-f', p.torrc, '--defaults-torrc', '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    this.lastLines = [];
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (line) => this.onLine(line));
    }

    let exited: string | undefined;
    child.once('error', (err: NodeJS.ErrnoException) => {
      exited = `cannot run ${this.opts.binary}: ${err.code ?? err.message}`;
    });
    child.once('exit', (code, signal) => {
      exited ??= `tor exited during startup (${signal ?? `code ${code}`})${this.lastError()}`;
      if (this.child === child) this.child = undefined;
      this.emit('exit', code, signal);
    });

    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new TorError(exited);
      const address = readControlPortFile(p.controlPortFile);
      if (address) return address;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new TorError(`tor did not open its control port within ${STARTUP_TIMEOUT_MS / 1000} s${this.lastError()}`);
      }
      await sleep(50);
    }
  }

  /** SIGTERM, then SIGKILL if tor has not exited after 5 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  private onLine(line: string): void {
    const text = line.replace(/^\w{3} \d{1,2} [\d:.]+ /, ''); // drop tor's own timestamp
    this.lastLines = [...this.lastLines.slice(-9), text];
    // Until tor has read its torrc it logs notices to stdout too; only warnings are worth the daemon's log.
    if (!/^\[(notice|info|debug)\]/.test(text)) this.opts.log(`tor: ${text}`);
  }

  /** The most telling line tor printed, to make a one-line startup error. */
  private lastError(): string {
    const recent = [...this.lastLines].reverse();
    let line = recent.find((l) => l.includes('[err]')) ?? recent[0];
    // "[err] Reading config failed--see warnings above": the warning above is the useful line.
    if (line && /see warnings above/.test(line)) line = recent.find((l) => l.includes('[warn]')) ?? line;
    return line ? `: ${line}` : '';
  }
}

/** ControlPortWriteToFile writes "PORT=127.0.0.1:NNNN" (or "UNIX_PORT=/path"). */
function readControlPortFile(file: string): ControlAddress | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const tcp = /^PORT=(.+):(\d+)\s*$/m.exec(text);
  if (tcp) return { host: tcp[1], port: Number(tcp[2]) };
  const unix = /^UNIX_PORT=(.+?)\s*$/m.exec(text);
  return unix ? { path: unix[1] } : undefined;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
