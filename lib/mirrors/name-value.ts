// The box's .bit value may list its mirrors' onions ("mirrors": ["….onion", …]) so that `bitdrop get` and
// names-proxy can fall back to them when the box itself is unreachable. Namecoin values are at most 520 bytes:
// as many mirrors as fit are listed, in the order given; the rest are left out.

import { buildValue, NameValueError } from '../names/value';

type Json = Record<string, unknown>;

/** The name's value: buildValue's, plus the onion hosts of `mirrors` that fit within 520 bytes. */
export function valueWithMirrors(onion: string, extra: Json, mirrors: string[]): string {
  const onions = mirrors.map((u) => { try { return new URL(u).hostname.toLowerCase(); } catch { return ''; } })
    .filter((h) => /^[a-z2-7]{56}\.onion$/.test(h));
  for (let n = onions.length; n > 0; n--) {
    try {
      return buildValue(onion, { ...extra, mirrors: onions.slice(0, n) });
    } catch (err) {
      if (!(err instanceof NameValueError)) throw err;
    }
  }
  return buildValue(onion, extra);
}
