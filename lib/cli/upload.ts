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

/**
 * `bitdrop upload a b c`: several files as one drop (one page, one payment, a zip of all), sent as one
 * streamed multipart POST, as `curl -F file=@a -F file=@b` sends it (its length is known up front).
 */
export async function uploadDrop(files: string[], opts: UploadOptions): Promise<UploadResult> {
  const stats = await Promise.all(files.map(async (file) => {
    const stat = await fs.promises.stat(file).catch(() => { throw new Error(`cannot read ${file}: no such file`); });
    if (!stat.isFile()) throw new Error(`${file} is not a regular file`);
    return stat;
  }));
  const boundary = `bitdrop-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const quote = (s: string) => s.replace(/["\\\r\n]/g, (c) => encodeURIComponent(c));
  const heads = files.map((f) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quote(path.basename(f))}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n'));
  const tail = Buffer.from(`--${boundary}--\r\n`);
  const total = stats.reduce((n, s, i) => n + heads[i].length + s.size + 2, 0) + tail.length;
  const fileBytes = stats.reduce((n, s) => n + s.size, 0);
  const target = new URL(opts.url.endsWith('/') ? opts.url : opts.url + '/');
  const agent = opts.socks ? socksAgent(opts.socks) : undefined;
  const bar = opts.progress ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} bytes' }, Presets.shades_classic) : undefined;
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise<UploadResult>((resolve, reject) => {
    const req = lib.request(target, {
      method: 'POST',
      agent,
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': total, Accept: opts.json ? 'application/json' : 'text/plain' },
    });
    let failed = false;
    req.on('response', (res) => {
      bar?.stop();
      const parts: Buffer[] = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), url: res.headers.location, deleteToken: res.headers['x-delete-token'] as string | undefined }));
    });
    req.on('error', (err) => { failed = true; bar?.stop(); reject(new Error(`upload to ${target.origin} failed: ${err.message}`)); });
    (async () => {
      bar?.start(fileBytes, 0);
      let sent = 0;
      const write = (b: Buffer) => new Promise<void>((ok) => { if (!req.write(b)) req.once('drain', ok); else ok(); });
      for (let i = 0; i < files.length && !failed; i++) {
        await write(heads[i]);
        for await (const chunk of fs.createReadStream(files[i], { highWaterMark: 1024 * 1024 })) {
          if (failed) return;
          await write(chunk as Buffer);
          sent += (chunk as Buffer).length;
          bar?.update(sent);
        }
        await write(Buffer.from('\r\n'));
      }
      req.end(tail);
    })().catch((err) => req.destroy(err));
  });
}
