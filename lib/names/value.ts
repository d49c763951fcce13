// A name's value: what bitdrop publishes, and how a resolver reads an onion address back out of it.
//
// Published: {"map":{"_tor":{"txt":"<onion>"}},"tor":"<onion>"} — the _tor TXT record Tor-side resolvers
// (ncprop279) read and the older domain spec's "tor" field — merged into the operator's extra JSON
// (--name-value FILE), ours winning for those two keys. Namecoin allows at most 520 bytes.

import fs from 'fs';
import { MAX_VALUE_LENGTH } from './script';

export class NameValueError extends Error {}

const ONION = /^[a-z2-7]{56}\.onion$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The operator's extra JSON object from --name-value FILE. */
export function readExtraValue(file: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new NameValueError(`--name-value ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new NameValueError(`--name-value ${file}: not JSON (${(err as Error).message})`);
  }
  if (!isObject(parsed)) throw new NameValueError(`--name-value ${file}: must hold a JSON object, like {"email":"ops@example.org"}`);
  return parsed;
}

/** The value to publish for `onion` (with or without .onion), checked against Namecoin's 520 bytes. */
export function buildValue(onion: string, extra: Json = {}): string {
  const host = onion.endsWith('.onion') ? onion : `${onion}.onion`;
  if (!ONION.test(host)) throw new NameValueError(`"${onion}" is not a v3 onion address`);
  const map = isObject(extra.map) ? extra.map : {};
  const value = { ...extra, map: { ...map, _tor: { txt: host } }, tor: host };
  const text = JSON.stringify(value);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_VALUE_LENGTH) {
    throw new NameValueError(`the value would be ${size} bytes; Namecoin allows at most ${MAX_VALUE_LENGTH} (make the --name-value JSON ${size - MAX_VALUE_LENGTH} bytes shorter)`);
  }
  return text;
}

/** "example.bit" → { name: "d/example", labels: [] }; "files.example.bit" → labels ["files"]; "d/example" as is. */
export function domainToName(domain: string): { name: string; labels: string[] } {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  if (/^d\/[a-z0-9-]+$/.test(d)) return { name: d, labels: [] };
  const parts = d.split('.');
  if (parts.length < 2 || parts[parts.length - 1] !== 'bit' || parts.some((p) => !/^[a-z0-9_-]+$/.test(p) || p.length > 63)) {
    throw new NameValueError(`"${domain}" is not a .bit domain (try example.bit)`);
  }
  return { name: `d/${parts[parts.length - 2]}`, labels: parts.slice(0, -2) };
}

function onionOf(node: Json): string | undefined {
  const tor = isObject(node.map) ? node.map._tor : undefined;
  const txt = isObject(tor) ? tor.txt : undefined;
  for (const candidate of [...(Array.isArray(txt) ? txt : [txt]), node.tor]) {
    if (typeof candidate === 'string' && ONION.test(candidate.trim().toLowerCase())) return candidate.trim().toLowerCase();
  }
  return undefined;
}

/**
 * The onion address a value gives `labels` (subdomain labels, leftmost first): the _tor TXT first, then "tor";
 * a subdomain through "map" (an exact label, else "*"). Throws with the reason when there is none.
 */
export function onionFromValue(value: string, labels: string[], domain: string): string {
  let node: unknown;
  try {
    node = JSON.parse(value);
  } catch {
    throw new NameValueError(`${domain}: its value is not JSON, so it names no onion`);
  }
  for (const label of [...labels].reverse()) {
    const map = isObject(node) && isObject(node.map) ? node.map : {};
    node = map[label] ?? map['*'];
    if (node === undefined) throw new NameValueError(`${domain}: the name's value has no "${label}" entry in its map`);
  }
  const onion = isObject(node) ? onionOf(node) : undefined;
  if (!onion) throw new NameValueError(`${domain}: the name's value holds no onion address (neither map._tor.txt nor tor)`);
  return onion;
}

/**
 * The mirror onions a value lists ("mirrors": ["….onion", …], lib/mirrors/name-value.ts): other boxes that keep
 * copies of this box's files under the same ids, for `bitdrop get` and names-proxy when the box does not answer.
 * Anything that is not a v3 onion is ignored.
 */
export function mirrorsFromValue(value: string): string[] {
  let node: unknown;
  try {
    node = JSON.parse(value);
  } catch {
    return [];
  }
  const list = isObject(node) && Array.isArray(node.mirrors) ? node.mirrors : [];
  const onions = list.filter((m): m is string => typeof m === 'string').map((m) => m.trim().toLowerCase()).filter((m) => ONION.test(m));
  return [...new Set(onions)];
}
