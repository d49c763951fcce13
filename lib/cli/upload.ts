// `bitdrop upload FILE`: a streaming PUT with a progress bar, directly or through a SOCKS5 proxy (tor).

import fs from 'fs';
import http from 'http';
import https from 'https';
import path from 'path';
import { SingleBar, Presets } from 'cli-progress';
import { socksAgent } from '../net/socks-agent';

export interface UploadOptions {
  url: string;
  /** HOST:PORT of a SOCKS5 proxy; names are resolved by the proxy (needed for .onion) */
  socks?: string;
  progress?: boolean;
  json?: boolean;
}

export interface UploadResult {
  status: number;
  body: string;
  url?: string;
  deleteToken?: string;
}

export async function uploadFile(file: string, opts: UploadOptions): Promise<UploadResult> {
  const stat = await fs.promises.stat(file).catch(() => {
    throw new Error(`cannot read ${file}: no such file`);
  });
  if (!stat.isFile()) throw new Error(`${file} is not a regular file`);
  const target = new URL(encodeURIComponent(path.basename(file)), opts.url.endsWith('/') ? opts.url : opts.url + '/');
  const agent = opts.socks ? socksAgent(opts.socks) : undefined;
  const bar = opts.progress ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} bytes | {speed} MB/s' }, Presets.shades_classic) : undefined;
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise<UploadResult>((resolve, reject) => {
    const req = lib.request(target, {
      method: 'PUT',
      agent,
      headers: {
        'Content-Length': stat.size,
        Expect: '100-continue',
        Accept: opts.json ? 'application/json' : 'text/plain',
      },
    });
    const started = Date.now();
    let sent = 0;
    let sending = false;
    const send = () => {
      if (sending) return;
      sending = true;
      bar?.start(stat.size, 0, { speed: '0.0' });
      const src = fs.createReadStream(file, { highWaterMark: 1024 * 1024 });
      src.on('data', (chunk) => {
        sent += chunk.length;
        bar?.update(sent, { speed: (sent / 1e6 / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1) });
      });
      src.pipe(req);
    };
    req.on('continue', send);
    // Servers that ignore Expect: 100-continue get the body after a second anyway, as curl does.
    const fallback = setTimeout(send, 1000);
    req.on('response', (res) => {
      clearTimeout(fallback);
      bar?.stop();
      const parts: Buffer[] = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          body,
          url: res.headers.location,
          deleteToken: res.headers['x-delete-token'] as string | undefined,
        });
      });
    });
    req.on('error', (err) => {
      clearTimeout(fallback);
      bar?.stop();
      reject(new Error(`upload to ${target.origin} failed: ${err.message}`));
    });
    if (stat.size === 0) { clearTimeout(fallback); sending = true; req.end(); } else req.flushHeaders();
  });
}
