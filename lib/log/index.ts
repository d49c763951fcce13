// The daemon's log, through pino: readable lines by default (what an operator reads in a terminal or
// journalctl), one JSON object a line with --log-format json (for a log shipper). Levels: error, warn,
// info, debug (--log-level). No secret is ever written: known secrets (the admin token) and anything shaped
// like a credential (delete tokens, cookies, Authorization headers, passwords in URLs) are masked first.

import pino from 'pino';

export type LogFormat = 'text' | 'json';
export type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  /** a line at the level its wording says (FATAL…, error: …, WARNING …; else info) */
  log(line: string): void;
  debug(line: string): void;
  /** a value that must never appear in the log (the admin token, once read) */
  addSecret(secret: string): void;
}

const CREDENTIALS: Array<[RegExp, string]> = [
  [/(X-(?:Delete|Admin)-Token:\s*)\S+/gi, '$1[redacted]'],
  [/((?:delete|admin)[-_ ]?token[=:]\s*)[A-Za-z0-9_\-+/=]{8,}/gi, '$1[redacted]'],
  [/((?:Set-)?Cookie:\s*)[^\r\n]+/gi, '$1[redacted]'],
  [/(Authorization:\s*)[^\r\n]+/gi, '$1[redacted]'],
  [/(\/\/[^:/@\s]+:)[^@/\s]+@/g, '$1[redacted]@'],
];

export function levelOf(line: string): Exclude<Level, 'debug'> {
  if (/^FATAL\b/.test(line)) return 'fatal';
  if (/^(error\b|.*?: error\b)/i.test(line)) return 'error';
  if (/^(WARNING|warning)\b/.test(line)) return 'warn';
  return 'info';
}

export function createLogger(opts: { format: LogFormat; level: 'info' | 'debug'; destination?: NodeJS.WritableStream }): Logger {
  const secrets = new Set<string>();
  const mask = (line: string) => {
    let out = line;
    for (const s of secrets) if (s) out = out.split(s).join('[redacted]');
    for (const [re, to] of CREDENTIALS) out = out.replace(re, to);
    return out;
  };
  const dest = opts.destination ?? pino.destination({ dest: 1, sync: true });
  const json = pino({
    level: opts.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, dest as pino.DestinationStream);
  // Readable lines: the message as the daemon words it (its level is in its wording), nothing around it.
  const text = pino({ level: opts.level, base: undefined, timestamp: false }, {
    write: (s: string) => { dest.write(`${(JSON.parse(s) as { msg: string }).msg}\n`); },
  });
  const logger = opts.format === 'json' ? json : text;
  return {
    log: (line) => logger[levelOf(line)](mask(line)),
    debug: (line) => logger.debug(opts.format === 'json' ? mask(line) : `debug     ${mask(line)}`),
    addSecret: (secret) => { secrets.add(secret); },
  };
}
