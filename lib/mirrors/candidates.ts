// Where a file can be downloaded from: its original URL, then its copies on mirrors. For clients such as
// `bitdrop get` (lib/cli/get.ts) that fall back to a mirror when the original box is unreachable. The list
// comes from the file's JSON (`mirrors`: objects with at least `url`) or from an X-Mirrors header kept from
// an earlier answer.

import { mirrorRequest, jsonOf } from './http';

/** The URLs of X-Mirrors (comma-separated). */
export function parseMirrorsHeader(value: string | string[] | undefined | null): string[] {
  const text = Array.isArray(value) ? value.join(',') : value ?? '';
  return text.split(',').map((s) => s.trim()).filter((s) => /^https?:\/\/\S+$/.test(s));
}

/** The original URL first, then each mirror's (duplicates removed), from a file's JSON. */
export function candidateUrls(original: string, fileJson?: { url?: unknown; mirrors?: unknown } | null, header?: string | string[] | null): string[] {
  const out = [original];
  if (fileJson && typeof fileJson.url === 'string') out.push(fileJson.url);
  if (fileJson && Array.isArray(fileJson.mirrors)) {
    for (const m of fileJson.mirrors) if (m && typeof (m as { url?: unknown }).url === 'string') out.push((m as { url: string }).url);
  }
  out.push(...parseMirrorsHeader(header));
  return [...new Set(out)];
}

/**
 * Asks the original box for the file's JSON and returns [original, ...mirror URLs]; when the box does not
 * answer, just [original] (the caller then needs a list it kept, or the .bit value's mirrors).
 */
export async function fetchCandidateUrls(fileUrl: string, opts: { socks?: string; timeoutMs?: number } = {}): Promise<string[]> {
  try {
    const res = await mirrorRequest(fileUrl, { headers: { Accept: 'application/json' }, socks: opts.socks, timeoutMs: opts.timeoutMs ?? 60_000 });
    if (res.status !== 200) return [fileUrl];
    return candidateUrls(fileUrl, jsonOf(res), res.headers['x-mirrors']);
  } catch {
    return [fileUrl];
  }
}
