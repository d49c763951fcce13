// Runs the real daemon (build/bin/bitdrop.js) as a child process, as an operator would.

import { spawn, execFile, type ChildProcess } from 'child_process';
import fs from 'fs';
import path from 'path';
import { promisify } from 'util';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'build', 'bin', 'bitdrop.js');
/** the node flags of bin/bitdrop's #! line, so that a test's daemon runs as `npx bitdrop start` does */
export const NODE_FLAGS = (/^#!.*\bnode\b(.*)$/m.exec(fs.readFileSync(path.join(ROOT, 'bin', 'bitdrop'), 'utf8'))?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
export const exec = promisify(execFile);

export interface Daemon {
  url: string;
  /** the operator console (loopback) */
  consoleUrl: string;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  stop: () => Promise<number | null>;
  kill9: () => Promise<void>;
}

import { tmpDir } from './tmp';

export { tmpDir };

export interface DaemonOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  /** a line the daemon prints once ready (default: the serving line) */
  readyPattern?: RegExp;
  timeoutMs?: number;
  /** run with prices (pay per use, the default of `bitdrop start`); otherwise the helper passes --free */
  paid?: boolean;
}

/** Starts `bitdrop start` on a free loopback port and resolves once it prints its URL. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const dataDir = opts.dataDir ?? tmpDir();
  // Storage and HTTP tests run a free box on purpose (--free); payment tests ask for prices with `paid`.
  const args = [...NODE_FLAGS, CLI, 'start', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--tor', 'off',
    ...(opts.paid ? [] : ['--free']), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const ready = opts.readyPattern ?? /^ready\s/m;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // the caller gets no handle to stop it: do not leave it running
      reject(new Error(`daemon did not start in time:\n${out}`));
    }, opts.timeoutMs ?? 30_000);
    const check = () => {
      const m = /serving\s+(http:\/\/\S+?)\/?\s/.exec(out);
      if (m && ready.test(out)) { clearTimeout(timer); resolve(m[1]); }
    };
    proc.stdout!.on('data', check);
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited with ${code}:\n${out}`)); });
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const consoleUrl = /console\s+(http:\/\/\S+?)\/?\s/.exec(out)?.[1] ?? '';
  return {
    url,
    consoleUrl,
    dataDir,
    proc,
    output: () => out,
    ...signals(proc, exited),
  };
}

/** SIGTERM (resolving with the exit code) and kill -9 of a daemon's own process. */
function signals(proc: ChildProcess, exited: Promise<number | null>) {
  return {
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** curl with arguments; resolves with stdout (buffer-safe for text answers). */
export async function curl(...args: string[]): Promise<string> {
  const { stdout } = await exec('curl', ['-sS', ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** curl printing "<status>\n<body>" via -w, so tests can assert both. */
export async function curlStatus(...args: string[]): Promise<{ status: number; body: string }> {
  const out = await curl('-w', '\n%{http_code}', ...args);
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

export async function sha256File(file: string): Promise<string> {
  const { createHash } = await import('crypto');
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A file of `size` pseudo-random bytes (fast: a repeated random block with a counter). */
export function randomFile(dir: string, size: number, name = `f-${size}.bin`): string {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(1024 * 1024);
  let written = 0;
  let n = 0;
  while (written < size) {
    require('crypto').randomFillSync(block, 0, 4096);
    block.writeUInt32BE(n++, 0);
    const len = Math.min(block.length, size - written);
    fs.writeSync(fd, block, 0, len);
    written += len;
  }
  fs.closeSync(fd);
  return file;
}

/** Every chunk payload file in a data dir (the default file backend). */
export function chunkFiles(dataDir: string): string[] {
  const root = path.join(dataDir, 'chunks');
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root).filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => fs.readdirSync(path.join(root, d)));
}

export interface Standby {
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  /** resolves with the URL once the standby took over and printed its final 'ready' line */
  served: (timeoutMs?: number) => Promise<string>;
  stop: () => Promise<number | null>;
  kill9: () => Promise<void>;
}

/**
 * Starts `bitdrop start --standby` and resolves once it says it is standing by (another daemon holds
 * the data dir). `served()` then waits for the takeover.
 */
export async function startStandby(opts: DaemonOptions & { dataDir: string }): Promise<Standby> {
  const args = [...NODE_FLAGS, CLI, 'start', '--standby', '--data-dir', opts.dataDir, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--tor', 'off',
    ...(opts.paid ? [] : ['--free']), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => { out += d; for (const l of listeners) l(); };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const waitFor = <T>(what: string, match: () => T | undefined, timeoutMs: number) => new Promise<T>((resolve, reject) => {
    const check = () => {
      const m = match();
      if (m !== undefined) { done(); resolve(m); }
    };
    const timer = setTimeout(() => { done(); reject(new Error(`standby: no ${what} in ${timeoutMs} ms:\n${out}`)); }, timeoutMs);
    const onExit = (code: number | null) => { done(); reject(new Error(`standby exited with ${code} before ${what}:\n${out}`)); };
    const done = () => { clearTimeout(timer); listeners.delete(check); proc.off('exit', onExit); };
    listeners.add(check);
    proc.once('exit', onExit);
    check();
  });
  await waitFor('standby line', () => (/^standby\s/m.test(out) ? true : undefined), opts.timeoutMs ?? 30_000);
  return {
    dataDir: opts.dataDir,
    proc,
    output: () => out,
    served: (timeoutMs = 60_000) => waitFor('takeover', () => {
      const m = /serving\s+(http:\/\/\S+?)\/?\s/.exec(out);
      return m && /^ready\s/m.test(out) ? m[1] : undefined;
    }, timeoutMs),
    ...signals(proc, exited),
  };
}
