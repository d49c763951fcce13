// `bitdrop upload --encrypt FILE…`: each file is sealed with age to one fresh X25519 identity on this
// machine (name inside, size padded: lib/age/envelope.ts) and sent as `file.age` (several files: one
// drop, `file-1.age` …). The link's #fragment carries the identity; browsers and bitdrop never send a
// fragment, so the drop box stores what it cannot read.

import crypto from 'crypto';
import http from 'http';
import https from 'https';
import path from 'path';
import { PassThrough, type Readable } from 'stream';
import { SingleBar, Presets } from 'cli-progress';
import { socksAgent } from '../net/socks-agent';
import { newIdentity, sealFile } from '../age';

export interface EncryptedUploadOptions {
  url: string;
  socks?: string;
  progress?: boolean;
  /** pad sizes to a Padmé bucket (default on) */
  pad?: boolean;
}

export interface EncryptedUpload {
  /** the page of the file or drop with the identity as #fragment: what to share */
  link: string;
  identity: string;
  recipient: string;
  deleteToken?: string;
  /** the daemon's JSON answer */
  answer: Record<string, unknown>;
}

export async function uploadEncrypted(files: string[], opts: EncryptedUploadOptions): Promise<EncryptedUpload> {
  if (files.length === 0) throw new Error('nothing to upload');
  const { identity, recipient } = await newIdentity();
  const sealed = [];
  for (const f of files) {
    try {
      sealed.push(await sealFile(f, path.basename(f), recipient, { pad: opts.pad }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`cannot read ${f}: no such file`);
      if ((err as NodeJS.ErrnoException).code === 'EISDIR') throw new Error(`${f} is not a regular file`);
      throw err;
    }
  }
  const base = opts.url.endsWith('/') ? opts.url : opts.url + '/';
  let target: URL;
  let method: string;
  let headers: Record<string, string | number>;
  let body: Readable;
  let size: number;
  if (sealed.length === 1) {
    target = new URL('file.age', base);
    method = 'PUT';
    size = sealed[0].size;
    body = sealed[0].stream;
    headers = { 'Content-Type': 'application/octet-stream' };
  } else {
    // multipart with a computed length: each part's head, its ciphertext, CRLF; then the closing line
    const boundary = `bitdrop-${crypto.randomBytes(12).toString('hex')}`;
    const heads = sealed.map((_, i) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="file-${i + 1}.age"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n'));
    const close = Buffer.from(`--${boundary}--\r\n`);
    size = sealed.reduce((n, s, i) => n + heads[i].length + s.size + 2, close.length);
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    (async () => {
      for (let i = 0; i < sealed.length; i++) {
        out.write(heads[i]);
        for await (const c of sealed[i].stream) if (!out.write(c)) await new Promise<void>((r) => out.once('drain', () => r()));
        out.write('\r\n');
      }
      out.end(close);
    })().catch((err) => out.destroy(err));
    body = out;
    target = new URL(base);
    method = 'POST';
    headers = { 'Content-Type': `multipart/form-data; boundary=${boundary}` };
  }
  const res = await send(target, method, { ...headers, 'Content-Length': size, Accept: 'application/json' }, body, size, opts);
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    throw new Error(`upload failed with HTTP ${res.status}: ${res.body.trim().split('\n')[0]}`);
  }
  if (res.status !== 201) throw new Error(String(answer.error ?? `upload failed with HTTP ${res.status}`));
  const page = sealed.length === 1 ? String(answer.url).replace(/\/[^/]*$/, '') : String(answer.url);
  return { link: `${page}#${identity}`, identity, recipient, deleteToken: answer.deleteToken as string | undefined, answer };
}

function send(target: URL, method: string, headers: Record<string, string | number>, body: Readable, size: number, opts: EncryptedUploadOptions): Promise<{ status: number; body: string }> {
  const lib = target.protocol === 'https:' ? https : http;
  const agent = opts.socks ? socksAgent(opts.socks) : undefined;
  const bar = opts.progress ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} bytes encrypted and sent | ETA {eta_formatted}', stream: process.stderr }, Presets.shades_classic) : undefined;
  return new Promise((resolve, reject) => {
    const req = lib.request(target, { method, agent, headers });
    let sent = 0;
    bar?.start(size, 0);
    body.on('data', (c: Buffer) => { sent += c.length; bar?.update(sent); });
    body.on('error', (err) => req.destroy(err));
    body.pipe(req);
    req.on('response', (res) => {
      bar?.stop();
      const parts: Buffer[] = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', (err) => { bar?.stop(); reject(new Error(`upload to ${target.origin} failed: ${err.message}`)); });
  });
}
