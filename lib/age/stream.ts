// age's payload (the STREAM construction of the spec: 64 KiB chunks of ChaCha20-Poly1305, an 11-byte
// big-endian counter and a last-chunk flag as nonce) with Node's native cipher. The `age-encryption`
// package does the same in pure JavaScript at ~55 MB/s on our machines — slower than a loopback download,
// so it doubled the time of one; OpenSSL's is several times faster. Everything else — the header, the
// X25519 stanzas, its MAC, the file key — stays with the package (lib/age/index.ts).

import crypto from 'crypto';
import { Transform, type TransformCallback } from 'stream';

export const CHUNK = 64 * 1024;
const TAG = 16;

/** The payload key: HKDF-SHA-256(file key, salt = the 16-byte nonce, info "payload"). */
export const streamKey = (fileKey: Uint8Array, nonce: Uint8Array) =>
  Buffer.from(crypto.hkdfSync('sha256', fileKey, nonce, 'payload', 32));

export const ciphertextSize = (plain: number) => plain + TAG * Math.max(1, Math.ceil(plain / CHUNK));

function nonceOf(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(counter, 5, 6); // 11-byte counter; 48 bits of it are more chunks than any file has
  n[11] = last ? 1 : 0;
  return n;
}

abstract class Chunker extends Transform {
  private buf: Buffer[] = [];
  private held = 0;
  protected counter = 0;
  protected sawAny = false;
  constructor(protected key: Buffer, private size: number) { super({ highWaterMark: 1 << 20 }); }
  protected abstract seal(chunk: Buffer, last: boolean): Buffer;

  _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.buf.push(data);
    this.held += data.length;
    try {
      // a full chunk is only known not to be the last once a byte after it arrived
      if (this.held > this.size) {
        let all = Buffer.concat(this.buf);
        const out: Buffer[] = [];
        while (all.length > this.size) {
          out.push(this.seal(all.subarray(0, this.size), false));
          all = all.subarray(this.size);
        }
        this.buf = [all];
        this.held = all.length;
        if (out.length) this.push(Buffer.concat(out));
      }
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  _flush(cb: TransformCallback) {
    try {
      this.push(this.seal(Buffer.concat(this.buf), true));
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}

export class SealStream extends Chunker {
  constructor(key: Buffer) { super(key, CHUNK); }
  protected seal(chunk: Buffer, last: boolean): Buffer {
    const c = crypto.createCipheriv('chacha20-poly1305', this.key, nonceOf(this.counter++, last), { authTagLength: TAG });
    return Buffer.concat([c.update(chunk), c.final(), c.getAuthTag()]);
  }
}

export class OpenStream extends Chunker {
  constructor(key: Buffer) { super(key, CHUNK + TAG); }
  protected seal(chunk: Buffer, last: boolean): Buffer {
    if (chunk.length < TAG) throw new Error('the encrypted file is truncated');
    const d = crypto.createDecipheriv('chacha20-poly1305', this.key, nonceOf(this.counter, last), { authTagLength: TAG });
    d.setAuthTag(chunk.subarray(chunk.length - TAG));
    let out: Buffer;
    try {
      out = Buffer.concat([d.update(chunk.subarray(0, chunk.length - TAG)), d.final()]);
    } catch {
      throw new Error(`the encrypted file is damaged or cut short (chunk ${this.counter} fails its authentication)`);
    }
    if (last && out.length === 0 && this.counter > 0) throw new Error('the encrypted file ends with an empty chunk');
    this.counter++;
    return out;
  }
}
