// Renders the managed tor's torrc from the template in hs-config/.

import fs from 'fs';
import path from 'path';
import { TorError } from './control';

/** hs-config/ sits at the package root; walk up because sources (lib/tor) and builds (build/lib/tor) differ in depth. */
export function hsConfigDir(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'hs-config');
    if (fs.existsSync(path.join(candidate, 'torrc.tmpl'))) return candidate;
    if (path.dirname(dir) === dir) throw new TorError(`cannot find hs-config/torrc.tmpl above ${from}`);
  }
}

/** A torrc value: quoted (C escapes) when it has spaces or quotes, which tor's parser unescapes. */
export function torrcValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new TorError(`a torrc value cannot span lines: ${JSON.stringify(value)}`);
  return /^[^\s"\\#]+$/.test(value) ? value : '"' + value.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

/** Replaces every {{name}}; an unknown name is a bug in the template, so it throws. */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in vars)) throw new TorError(`torrc template: no value for {{${name}}}`);
    return torrcValue(vars[name]);
  });
}

export interface ManagedTorrc {
  dataDirectory: string;
  controlPortFile: string;
  pidFile: string;
  noticeLog: string;
  ownerPid: number;
  /** "127.0.0.1:auto", or the port a previous run of this tor had */
  socksPort: string;
  /** --torrc-append FILE: its lines are added after ours */
  appendFile?: string;
}

export function renderTorrc(opts: ManagedTorrc): string {
  const template = fs.readFileSync(path.join(hsConfigDir(), 'torrc.tmpl'), 'utf8');
  let torrc = renderTemplate(template, {
    dataDirectory: opts.dataDirectory,
    controlPortFile: opts.controlPortFile,
    pidFile: opts.pidFile,
    noticeLog: opts.noticeLog,
    ownerPid: String(opts.ownerPid),
    socksPort: opts.socksPort,
  });
  if (opts.appendFile) {
    let extra: string;
    try {
      extra = fs.readFileSync(opts.appendFile, 'utf8');
    } catch (err) {
      throw new TorError(`--torrc-append ${opts.appendFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    torrc += `\n## --torrc-append ${path.resolve(opts.appendFile)}\n${extra}${extra.endsWith('\n') ? '' : '\n'}`;
  }
  return torrc;
}
