// A lone tor with DisableNetwork 1: no Tor network at all, but ADD_ONION, DEL_ONION, authentication
// and key handling work (see shared/notes/private-tor-network.md). Started in ~0.1 s.

import { ChildProcess, execFileSync, spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { ControlAddress, ControlPort } from '../../lib/tor/control';
import { findExecutable } from '../../lib/tor/process';
import { tmpDir as tmpDirOf } from './tmp';

/** Fails loudly (never skips) when tor is not installed. */
export function requireTor(): string {
  const tor = findExecutable('tor');
  if (!tor) throw new Error('tor is not installed: apt-get install tor (these tests need the tor binary)');
  return tor;
}

export function tmpDir(prefix: string): string {
  return tmpDirOf(`bitdrop-${prefix}-`);
}

/** A --torrc-append file that keeps a managed tor off the network. */
export function offlineAppendFile(dir: string): string {
  const file = path.join(dir, 'offline.torrc');
  fs.writeFileSync(file, 'DisableNetwork 1\n');
  return file;
}

export interface LoneTor {
  address: ControlAddress;
  /** "127.0.0.1:PORT" or "unix:PATH", as --tor-control takes it */
  controlArg: string;
  dataDir: string;
  child: ChildProcess;
  /** a fresh, authenticated control connection (a second controller next to the daemon's) */
  connect(): Promise<ControlPort>;
  stop(): Promise<void>;
}

export async function startLoneTor(opts: { password?: string; unix?: boolean } = {}): Promise<LoneTor> {
  const tor = requireTor();
  const dir = tmpDir('lone-tor');
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const portFile = path.join(dir, 'control-port');
  const lines = [
    `DataDirectory ${dataDir}`,
    opts.unix ? `ControlPort unix:${path.join(dir, 'control.sock')}` : 'ControlPort 127.0.0.1:auto',
    `ControlPortWriteToFile ${portFile}`,
    'SocksPort 0',
    'DisableNetwork 1',
    'GeoIPFile ""',
    'GeoIPv6File ""',
    `__OwningControllerProcess ${process.pid}`,
    'Log warn stdout',
  ];
  if (opts.password) {
    const hashed = execFileSync(tor, ['--quiet', '--hash-password', opts.password]).toString().trim().split('\n').pop()!;
    lines.push(`HashedControlPassword ${hashed}`);
  } else {
    lines.push('CookieAuthentication 1');
  }
  fs.writeFileSync(path.join(dir, 'torrc'), lines.join('\n') + '\n');
  const child = spawn(tor, ['-f', path.join(dir, 'torrc'), '--defaults-torrc', '/dev/null'], { stdio: 'ignore' });
  const deadline = Date.now() + 20_000;
  let text = '';
  while (!/PORT=/.test(text)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL'); // a tor that never said its port is not left running
      throw new Error('the lone test tor did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
    text = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8') : '';
  }
  const unix = /UNIX_PORT=(.+)/.exec(text);
  const tcp = /^PORT=(.+):(\d+)/m.exec(text);
  const address: ControlAddress = unix ? { path: unix[1].trim() } : { host: tcp![1], port: Number(tcp![2]) };
  return {
    address,
    controlArg: 'path' in address ? `unix:${address.path}` : `${address.host}:${address.port}`,
    dataDir,
    child,
    async connect() {
      const control = await ControlPort.connect(address);
      await control.authenticate(opts.password);
      return control;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until check() returns something truthy, or fails after timeoutMs with what it was waiting for. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
