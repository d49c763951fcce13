// Content the operator blocked (a takedown request): by SHA-256 of the whole file, with a reason. An upload
// of blocked bytes is refused with that reason once it is hashed, before anything is committed; files
// already stored with those bytes are deleted, their links answering 410 with the reason. The list can be
// shared between boxes as a text file: one "<sha256 hex> <reason>" a line, # comments.

import type { Db } from './db';
import { layout, PREFIX } from './layout';

export interface BlockEntry {
  sha256: string;
  reason: string;
  /** ms since the epoch */
  added: number;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export async function blocked(db: Db, sha256: string): Promise<BlockEntry | undefined> {
  if (!SHA256_HEX.test(sha256)) return undefined;
  const v = await db.get(layout.blocked(Buffer.from(sha256, 'hex')));
  return v === undefined ? undefined : { sha256, ...(JSON.parse(v.toString()) as { reason: string; added: number }) };
}

export async function block(db: Db, sha256: string, reason: string, now = Date.now()): Promise<BlockEntry> {
  const hex = sha256.trim().toLowerCase();
  if (!SHA256_HEX.test(hex)) throw new Error(`"${sha256}" is not a SHA-256 (64 hex digits)`);
  const why = reason.replace(/\s+/g, ' ').trim().slice(0, 300);
  if (!why) throw new Error('say why the content is blocked (the reason is shown to whoever opens its link)');
  await db.put(layout.blocked(Buffer.from(hex, 'hex')), Buffer.from(JSON.stringify({ reason: why, added: now })), { sync: true });
  return { sha256: hex, reason: why, added: now };
}

export async function unblock(db: Db, sha256: string): Promise<void> {
  const hex = sha256.trim().toLowerCase();
  if (!SHA256_HEX.test(hex)) throw new Error(`"${sha256}" is not a SHA-256 (64 hex digits)`);
  await db.del(layout.blocked(Buffer.from(hex, 'hex')), { sync: true });
}

export async function blocklist(db: Db): Promise<BlockEntry[]> {
  const out: BlockEntry[] = [];
  for await (const [k, v] of db.iterator(layout.range(PREFIX.blocked))) {
    out.push({ sha256: layout.body(k).toString('hex'), ...(JSON.parse(v.toString()) as { reason: string; added: number }) });
  }
  return out.sort((a, b) => b.added - a.added);
}

/** The shareable text form. */
export function formatBlocklist(entries: BlockEntry[]): string {
  return '# bitdrop blocklist: <sha256> <reason>, one a line\n' + entries.map((e) => `${e.sha256} ${e.reason}\n`).join('');
}

/** Parses the text form; a line that is not "<sha256> <reason>" is an error naming its line number. */
export function parseBlocklist(text: string): Array<{ sha256: string; reason: string }> {
  const out: Array<{ sha256: string; reason: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^([0-9a-fA-F]{64})\s+(.+)$/.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not "<sha256> <reason>": ${line.slice(0, 80)}`);
    out.push({ sha256: m[1].toLowerCase(), reason: m[2] });
  });
  return out;
}
