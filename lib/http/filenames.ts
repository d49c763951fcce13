// Names come from strangers: strip anything that could escape a directory, hide itself, spoof its
// extension with bidi controls, or break a header; and rename what a zip entry or a Windows disk cannot
// hold (drive letters and other reserved characters, names of only dots and spaces, CON/NUL/COM1…), so the
// name stored is one every download (the file, its Content-Disposition, its drop's zip) can carry as is.

const MAX_NAME_BYTES = 200;

/** Windows devices: a file named so (with any extension) cannot be created there. */
const RESERVED = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;

export function safeName(raw: string | undefined | null): string {
  let s = String(raw ?? '');
  try { s = s.normalize('NFC'); } catch { /* keep as is */ }
  s = s.split(/[/\\]/).pop() ?? '';
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '');
  // ":" makes "C:x" a drive-relative path (yazl refuses it as absolute) and "a:b" an NTFS stream; the rest
  // cannot be in a Windows name at all.
  s = s.replace(/[:*?"<>|]/g, '_');
  s = trimEnds(s);
  s = trimEnds(truncateUtf8(s, MAX_NAME_BYTES));
  if (RESERVED.test(s)) s = `_${s}`;
  return s || 'file';
}

/** Leading dots hide a file; trailing dots and spaces are dropped by Windows; a name of only those is none. */
function trimEnds(s: string): string {
  return s.replace(/^[\s.]+/, '').replace(/[\s.]+$/, '');
}

/**
 * Names inside one drop must differ, and not only in case (one folder on Windows or macOS holds one of
 * "A.txt" and "a.txt"): "a.txt", "a (2).txt" … `used` holds the lower-cased names taken so far.
 */
export function uniqueName(name: string, used: Set<string>): string {
  let candidate = name;
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  for (let i = 2; used.has(foldCase(candidate)); i++) candidate = `${stem} (${i})${ext}`;
  used.add(foldCase(candidate));
  return candidate;
}

const foldCase = (s: string) => s.normalize('NFC').toLowerCase();

/** Keeps the extension when cutting a long name to at most `max` UTF-8 bytes. */
function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  const dot = s.lastIndexOf('.');
  const ext = dot > 0 && s.length - dot <= 16 ? s.slice(dot) : '';
  let base = s.slice(0, s.length - ext.length);
  while (Buffer.byteLength(base + ext) > max) base = Array.from(base).slice(0, -1).join('');
  return base + ext;
}

/** RFC 6266: an ASCII fallback plus the exact UTF-8 name. */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
