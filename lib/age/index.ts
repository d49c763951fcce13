// Files the operator cannot read: age (C2SP age-encryption.org/v1) through the `age-encryption` package,
// which is what Debian's `age` speaks, so either side can be the other.
//
// `age-encryption` is ESM-only ("type": "module"). This CommonJS build loads it with require(), which
// Node ≥ 20.19 does for ES modules without top-level await (as it already does for @noble/curves); it
// is required lazily, so the daemon never loads it.

import fs from 'fs';
import { Readable } from 'stream';
import type { ReadableStream as WebReadableStream } from 'stream/web';
import { envelope, openEnvelope } from './envelope';

type AgeModule = typeof import('age-encryption');
let mod: AgeModule | undefined;
function age(): AgeModule {
  mod ??= require('age-encryption') as AgeModule;
  return mod;
}

/** The first bytes of every binary age file (and of its armored form). */
export const AGE_MAGIC = 'age-encryption.org/v1\n';
export const AGE_ARMOR = '-----BEGIN AGE ENCRYPTED FILE-----';
export const isAgeHeader = (start: Buffer) =>
  start.subarray(0, AGE_MAGIC.length).toString('latin1') === AGE_MAGIC || start.subarray(0, AGE_ARMOR.length).toString('latin1') === AGE_ARMOR;

const IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;
export const isIdentity = (s: string) => IDENTITY.test(s);

export async function newIdentity(): Promise<{ identity: string; recipient: string }> {
  const identity = await age().generateX25519Identity();
  return { identity, recipient: await age().identityToRecipient(identity) };
}

const toWeb = (r: Readable) => Readable.toWeb(r) as unknown as ReadableStream<Uint8Array>;
const fromWeb = (w: ReadableStream<Uint8Array>) => Readable.fromWeb(w as unknown as WebReadableStream<Uint8Array>);

/** The encrypted form of a file: the envelope (name inside, padded size), as a stream of known size. */
export async function sealFile(file: string, name: string, recipient: string, opts: { pad?: boolean } = {}): Promise<{ stream: Readable; size: number }> {
  const { size } = await fs.promises.stat(file);
  const env = envelope(name, size, opts);
  async function* plaintext() {
    yield env.head;
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
    const zeros = Buffer.alloc(Math.min(env.tailBytes, 1024 * 1024));
    for (let left = env.tailBytes; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left);
  }
  const e = new (age().Encrypter)();
  e.addRecipient(recipient);
  const out = await e.encrypt(toWeb(Readable.from(plaintext(), { objectMode: false })));
  return { stream: fromWeb(out), size: out.size(env.size) };
}

/** Decrypts an age stream with an identity; fails with one readable line for a wrong key or damage. */
export async function decryptStream(cipher: Readable, identity: string): Promise<Readable> {
  const d = new (age().Decrypter)();
  d.addIdentity(identity);
  try {
    return fromWeb(await d.decrypt(toWeb(cipher)));
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(/no identity matched/.test(msg) ? 'the key in the link does not open this file (no identity matched its recipients)' : `not a readable age file: ${msg}`);
  }
}

export interface Opened {
  /** the name carried inside our envelope; undefined for a plain age file (made with `age -r`) */
  name?: string;
  /** the plaintext content */
  content: AsyncIterable<Buffer>;
}

/**
 * Unwraps our envelope when the plaintext is one, else passes the plaintext through. Resolves once the
 * start was read, so the caller can pick the output name before writing.
 */
export async function openPlaintext(plain: Readable): Promise<Opened> {
  const it = plain[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let start = Buffer.alloc(0);
  let ended = false;
  let env: ReturnType<typeof openEnvelope> = 'needMore';
  while (env === 'needMore' && !ended && start.length < 128 * 1024) {
    const next = await it.next();
    if (next.done) ended = true;
    else start = Buffer.concat([start, Buffer.from(next.value)]);
    env = openEnvelope(start);
  }
  if (env === 'needMore') env = undefined;
  const found = env;
  async function* rest(): AsyncIterable<Buffer> {
    if (!found) {
      if (start.length) yield start;
      if (!ended) for (let n = await it.next(); !n.done; n = await it.next()) yield Buffer.from(n.value);
      return;
    }
    let left = found.size;
    let first = start.subarray(found.offset, found.offset + left);
    if (first.length) { left -= first.length; yield first; }
    // the rest of the plaintext (block padding, end of archive, size padding) is read, so the last
    // chunk's authentication is checked, and dropped
    if (!ended) {
      for (let n = await it.next(); !n.done; n = await it.next()) {
        if (left > 0) {
          const b = Buffer.from(n.value);
          first = b.subarray(0, left);
          left -= first.length;
          yield first;
        }
      }
    }
    if (left > 0) throw new Error(`the encrypted file ends ${left} bytes before its content does`);
  }
  return { name: found ? found.name : undefined, content: rest() };
}
