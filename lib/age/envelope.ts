// What `bitdrop upload --encrypt` puts inside the age encryption: a one-file tar (POSIX pax), so the
// file's name travels encrypted and Debian's `age -d -i key.txt FILE | tar x` gives the file back by
// name, with no bitdrop needed. Zero blocks after tar's end-of-archive pad the size to a Padmé bucket
// (at most ~12 % more, leaking O(log log n) bits of the size); tar stops reading at the end-of-archive.
//
// Written here rather than with a tar package: the envelope must be byte-predictable (its length is
// known before streaming, so the upload carries a Content-Length and the ciphertext size is padded),
// and the reader must tell our envelope from a tar a user encrypted with `age -r` (the pax comment).

export const BLOCK = 512;
export const MARK = 'bitdrop encrypted file v1';

const pad512 = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/** One pax record "LEN key=value\n", LEN counting itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`, 'utf8');
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, type: '0' | 'x'): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 99), 0, 'ascii');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  // sizes past ustar's 11 octal digits are carried by the pax "size" record
  h.write(octal(size < 8 ** 11 ? size : 0, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime 0: when the file was made is not shared
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** Padmé (Nikitin et al., PETS 2019): rounds to a size with few significant bits. */
export function padme(n: number): number {
  if (n < 2) return n;
  const e = Math.floor(Math.log2(n));
  const s = Math.floor(Math.log2(e)) + 1;
  const lastBits = e - s;
  const mask = 2 ** lastBits - 1;
  return Math.ceil(n / (mask + 1)) * (mask + 1);
}

export interface Envelope {
  /** the pax + ustar headers */
  head: Buffer;
  /** zeros after the content: its block padding, the end-of-archive and the size padding */
  tailBytes: number;
  /** head + content + tail */
  size: number;
}

export function envelope(name: string, size: number, opts: { pad?: boolean } = {}): Envelope {
  const pax = Buffer.concat([paxRecord('comment', MARK), paxRecord('path', name), paxRecord('size', String(size))]);
  const head = Buffer.concat([header('PaxHeader', pax.length, 'x'), pax, Buffer.alloc(pad512(pax.length) - pax.length),
    header('file', size, '0')]);
  const minimal = head.length + pad512(size) + 2 * BLOCK;
  const total = opts.pad === false ? minimal : Math.max(minimal, pad512(padme(minimal)));
  return { head, tailBytes: total - head.length - size, size: total };
}

/** Reads the pax records of a header block's data. */
function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.toString('ascii', i, sp));
    if (!Number.isSafeInteger(len) || len <= 0 || i + len > data.length) break;
    const rec = data.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

function validHeader(h: Buffer): boolean {
  if (h.length < BLOCK || h.toString('ascii', 257, 262) !== 'ustar') return false;
  const stored = parseInt(h.toString('ascii', 148, 156).replace(/\0.*$/, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return stored === sum;
}

/**
 * Recognizes our envelope at the start of a plaintext. Returns the name, the content size and where
 * the content starts; undefined for anything else (a file encrypted with `age -r`, a user's own tar).
 * `needMore` when `start` is too short to tell.
 */
export function openEnvelope(start: Buffer): { name: string; size: number; offset: number } | 'needMore' | undefined {
  if (start.length < BLOCK) return 'needMore';
  const h = start.subarray(0, BLOCK);
  if (!validHeader(h) || h.toString('ascii', 156, 157) !== 'x') return undefined;
  const paxLen = parseInt(h.toString('ascii', 124, 136).replace(/\0.*$/, ''), 8);
  if (!Number.isSafeInteger(paxLen) || paxLen > 64 * 1024) return undefined;
  const fileHeaderAt = BLOCK + pad512(paxLen);
  if (start.length < fileHeaderAt + BLOCK) return 'needMore';
  const pax = parsePax(start.subarray(BLOCK, BLOCK + paxLen));
  if (pax.get('comment') !== MARK) return undefined;
  const fh = start.subarray(fileHeaderAt, fileHeaderAt + BLOCK);
  if (!validHeader(fh)) return undefined;
  const size = Number(pax.get('size'));
  if (!Number.isSafeInteger(size) || size < 0) return undefined;
  return { name: pax.get('path') ?? '', size, offset: fileHeaderAt + BLOCK };
}
