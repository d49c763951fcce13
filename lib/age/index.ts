// Files the operator cannot read: age (C2SP age-encryption.org/v1) through the `age-encryption` package,
// which is what Debian's `age` speaks, so either side can be the other.
//
// `age-encryption` is ESM-only ("type": "module"). This CommonJS build loads it with require(), which
// Node ≥ 20.19 does for ES modules without top-level await (as it already does for @noble/curves); it
// is required lazily, so the daemon never loads it.

import fs from 'fs';
import { Readable, pipeline } from 'stream';
import type { ReadableStream as WebReadableStream } from 'stream/web';
import { envelope, openEnvelope } from './envelope';
import { OpenStream, SealStream, ciphertextSize, streamKey } from './stream';

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

/**
 * A header for `recipient` and the payload key that goes with it: the package makes the header (stanzas,
 * MAC, nonce) for an empty file, and a second recipient of ours that wraps nothing hands us the file key.
 */
async function headerFor(recipient: string): Promise<{ header: Buffer; key: Buffer }> {
  let fileKey: Uint8Array | undefined;
  const e = new (age().Encrypter)();
  e.addRecipient(recipient);
  e.addRecipient({ wrapFileKey: (k: Uint8Array) => { fileKey = k; return []; } });
  const empty = Buffer.from(await e.encrypt(new Uint8Array(0)));
  const header = empty.subarray(0, empty.length - 16); // the header and its 16-byte nonce, without the empty last chunk
  if (!fileKey) throw new Error('age-encryption did not ask for the file key');
  return { header, key: streamKey(fileKey, header.subarray(header.length - 16)) };
}

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
  const { header, key } = await headerFor(recipient);
  const sealed = new SealStream(key);
  pipeline(Readable.from(plaintext(), { objectMode: false }), sealed, () => undefined);
  async function* all() {
    yield header;
    for await (const c of sealed) yield c as Buffer;
  }
  return { stream: Readable.from(all(), { objectMode: false }), size: header.length + ciphertextSize(env.size) };
}

/** Decrypts an age stream with an identity; fails with one readable line for a wrong key or damage. */
export async function decryptStream(cipher: Readable, identity: string): Promise<Readable> {
  const it = cipher[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let end = -1;
  for (;;) {
    const mac = head.indexOf('\n--- ');
    end = mac >= 0 ? head.indexOf('\n', mac + 1) : -1;
    if (end >= 0 && head.length >= end + 1 + 16) break;
    if (head.length > 64 * 1024 || head.subarray(0, AGE_ARMOR.length).toString('latin1') === AGE_ARMOR) {
      // armored (or unusual) files: the package does it all
      return decryptWithPackage(Readable.from((async function* () { yield head; for (let n = await it.next(); !n.done; n = await it.next()) yield n.value; })()), identity);
    }
    const n = await it.next();
    if (n.done) throw new Error('not an age file (no complete header)');
    head = Buffer.concat([head, Buffer.from(n.value)]);
  }
  const d = new (age().Decrypter)();
  d.addIdentity(identity);
  let fileKey: Uint8Array;
  try {
    fileKey = await d.decryptHeader(head.subarray(0, end + 1));
  } catch (err) {
    throw ageError(err);
  }
  const key = streamKey(fileKey, head.subarray(end + 1, end + 17));
  const rest = head.subarray(end + 17);
  const open = new OpenStream(key);
  async function* payload() {
    if (rest.length) yield rest;
    for (let n = await it.next(); !n.done; n = await it.next()) yield Buffer.from(n.value);
  }
  pipeline(Readable.from(payload(), { objectMode: false }), open, () => undefined);
  return open;
}

function ageError(err: unknown): Error {
  const msg = (err as Error).message;
  return new Error(/no identity matched/.test(msg) ? 'the key in the link does not open this file (no identity matched its recipients)' : `not a readable age file: ${msg}`);
}

async function decryptWithPackage(cipher: Readable, identity: string): Promise<Readable> {
  const d = new (age().Decrypter)();
  d.addIdentity(identity);
  try {
    return fromWeb(await d.decrypt(toWeb(cipher)));
  } catch (err) {
    throw ageError(err);
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
