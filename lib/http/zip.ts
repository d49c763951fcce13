// The byte layout of a drop's zip, computed from its manifests alone: files are stored (not compressed)
// with the sizes known up front, each followed by a data descriptor holding its CRC-32, then the central
// directory. Every offset is known before a byte is read, so the zip has an exact Content-Length and any
// range of it can be served (a 2 GiB zip cut at 1.9 GiB resumes at 1.9 GiB), and the same drop always
// gives the same bytes. The CRCs are only needed by the descriptors and the central directory; they are
// computed while a file is sent, or by reading the file when the range skips it (and then kept).
//
// Why not yazl (which wrote the zip before): it writes the archive as one stream from the first byte, so a
// range would mean producing, and reading from disk, everything before it through its CRC code anyway; and
// the layout must be stable across releases for a resumed download, which is ours to keep here. The format
// is the one yazl writes (general purpose bit 3 with zeros in the local header, ZIP64 where a size or an
// offset needs it, UTF-8 names), checked with Info-ZIP's unzip and Python's zipfile in test/drops-zip.

export interface ZipEntry {
  name: string;
  size: number;
  mtime: Date;
}

export type ZipPart =
  | { kind: 'bytes'; offset: number; length: number; buf: Buffer }
  | { kind: 'data'; offset: number; length: number; entry: number }
  | { kind: 'descriptor'; offset: number; length: number; entry: number }
  | { kind: 'central'; offset: number; length: number };

export interface ZipLayout {
  size: number;
  parts: ZipPart[];
  /** the data descriptor of an entry, given its CRC-32 */
  descriptor(entry: number, crc: number): Buffer;
  /** the central directory and end records, given every entry's CRC-32 */
  central(crcs: number[]): Buffer;
  /** bytes of file data among zip bytes [from, to] (what a download of them is charged for) */
  dataBytes(from: number, to: number): number;
}

const FLAGS = 0x0008 | 0x0800; // sizes and CRC in a data descriptor; UTF-8 names
const MADE_BY = (3 << 8) | 63; // Unix, spec 6.3
const NEEDS = 20;
const NEEDS_ZIP64 = 45;
const FILE_MODE = (0o100644 << 16) >>> 0;
const MAX32 = 0xffffffff;

function dosTime(d: Date): [number, number] {
  const t = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2);
  const year = Math.min(Math.max(d.getUTCFullYear(), 1980), 2107);
  const date = ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  return [t, date];
}

export function zipLayout(entries: ZipEntry[]): ZipLayout {
  const parts: ZipPart[] = [];
  const info: { name: Buffer; offset: number; zip64: boolean; time: number; date: number; size: number }[] = [];
  let pos = 0;
  for (const [i, e] of entries.entries()) {
    const name = Buffer.from(e.name, 'utf8');
    const zip64 = e.size >= MAX32 || pos >= MAX32;
    const [time, date] = dosTime(e.mtime);
    info.push({ name, offset: pos, zip64, time, date, size: e.size });
    const h = Buffer.alloc(30 + name.length);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(zip64 ? NEEDS_ZIP64 : NEEDS, 4);
    h.writeUInt16LE(FLAGS, 6);
    h.writeUInt16LE(0, 8);
    h.writeUInt16LE(time, 10);
    h.writeUInt16LE(date, 12);
    // CRC and sizes (14..25) stay zero: they are in the data descriptor
    h.writeUInt16LE(name.length, 26);
    h.writeUInt16LE(0, 28);
    name.copy(h, 30);
    parts.push({ kind: 'bytes', offset: pos, length: h.length, buf: h });
    pos += h.length;
    if (e.size > 0) parts.push({ kind: 'data', offset: pos, length: e.size, entry: i });
    pos += e.size;
    const dl = zip64 ? 24 : 16;
    parts.push({ kind: 'descriptor', offset: pos, length: dl, entry: i });
    pos += dl;
  }
  const cdOffset = pos;
  const cdSize = info.reduce((n, e) => n + 46 + e.name.length + (e.zip64 ? 28 : 0), 0);
  const eocd64 = entries.length >= 0xffff || cdSize >= MAX32 || cdOffset >= MAX32;
  const tailLength = cdSize + 22 + (eocd64 ? 56 + 20 : 0);
  parts.push({ kind: 'central', offset: cdOffset, length: tailLength });
  const size = cdOffset + tailLength;

  return {
    size,
    parts,
    descriptor(entry, crc) {
      const e = info[entry];
      const b = Buffer.alloc(e.zip64 ? 24 : 16);
      b.writeUInt32LE(0x08074b50, 0);
      b.writeUInt32LE(crc >>> 0, 4);
      if (e.zip64) {
        b.writeBigUInt64LE(BigInt(e.size), 8);
        b.writeBigUInt64LE(BigInt(e.size), 16);
      } else {
        b.writeUInt32LE(e.size, 8);
        b.writeUInt32LE(e.size, 12);
      }
      return b;
    },
    central(crcs) {
      const out = Buffer.alloc(tailLength);
      let p = 0;
      for (const [i, e] of info.entries()) {
        out.writeUInt32LE(0x02014b50, p);
        out.writeUInt16LE(MADE_BY, p + 4);
        out.writeUInt16LE(e.zip64 ? NEEDS_ZIP64 : NEEDS, p + 6);
        out.writeUInt16LE(FLAGS, p + 8);
        out.writeUInt16LE(0, p + 10);
        out.writeUInt16LE(e.time, p + 12);
        out.writeUInt16LE(e.date, p + 14);
        out.writeUInt32LE(crcs[i] >>> 0, p + 16);
        out.writeUInt32LE(e.zip64 ? MAX32 : e.size, p + 20);
        out.writeUInt32LE(e.zip64 ? MAX32 : e.size, p + 24);
        out.writeUInt16LE(e.name.length, p + 28);
        out.writeUInt16LE(e.zip64 ? 28 : 0, p + 30);
        // comment length, disk number, internal attributes: zero
        out.writeUInt32LE(FILE_MODE, p + 38);
        out.writeUInt32LE(e.zip64 ? MAX32 : e.offset, p + 42);
        e.name.copy(out, p + 46);
        p += 46 + e.name.length;
        if (e.zip64) {
          out.writeUInt16LE(0x0001, p);
          out.writeUInt16LE(24, p + 2);
          out.writeBigUInt64LE(BigInt(e.size), p + 4);
          out.writeBigUInt64LE(BigInt(e.size), p + 12);
          out.writeBigUInt64LE(BigInt(e.offset), p + 20);
          p += 28;
        }
      }
      if (eocd64) {
        const at = cdOffset + cdSize;
        out.writeUInt32LE(0x06064b50, p);
        out.writeBigUInt64LE(44n, p + 4);
        out.writeUInt16LE(MADE_BY, p + 12);
        out.writeUInt16LE(NEEDS_ZIP64, p + 14);
        // this disk, the central directory's disk: zero
        out.writeBigUInt64LE(BigInt(info.length), p + 24);
        out.writeBigUInt64LE(BigInt(info.length), p + 32);
        out.writeBigUInt64LE(BigInt(cdSize), p + 40);
        out.writeBigUInt64LE(BigInt(cdOffset), p + 48);
        p += 56;
        out.writeUInt32LE(0x07064b50, p);
        out.writeUInt32LE(0, p + 4);
        out.writeBigUInt64LE(BigInt(at), p + 8);
        out.writeUInt32LE(1, p + 16);
        p += 20;
      }
      out.writeUInt32LE(0x06054b50, p);
      out.writeUInt16LE(Math.min(info.length, 0xffff), p + 8);
      out.writeUInt16LE(Math.min(info.length, 0xffff), p + 10);
      out.writeUInt32LE(eocd64 ? MAX32 : cdSize, p + 12);
      out.writeUInt32LE(eocd64 ? MAX32 : cdOffset, p + 16);
      return out;
    },
    dataBytes(from, to) {
      let n = 0;
      for (const p of parts) {
        if (p.kind !== 'data') continue;
        const a = Math.max(from, p.offset);
        const b = Math.min(to, p.offset + p.length - 1);
        if (b >= a) n += b - a + 1;
      }
      return n;
    },
  };
}
