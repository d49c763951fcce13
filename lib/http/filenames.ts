// Names come from strangers: strip anything that could escape a directory, hide itself, spoof its
// extension with bidi controls, or break a header.

const MAX_NAME_BYTES = 200;

export function safeName(raw: string | undefined | null): string {
  let s = String(raw ?? '');
  try { s = s.normalize('NFC'); } catch { /* keep as is */ }
  s = s.split(/[/\\]/).pop() ?? '';
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '');
  s = s.trim().replace(/^\.+/, '').trim();
  s = truncateUtf8(s, MAX_NAME_BYTES);
  return s || 'file';
}

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
