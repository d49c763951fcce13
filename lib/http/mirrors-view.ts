// What the file routes show of a file's mirrors (lib/mirrors): the JSON field `mirrors` (an array of objects,
// each with at least `url`, the file's URL on that mirror — a contract), the X-Mirrors header, and a short
// list on the file page. Kept apart so the pages can change without touching it.

import type { Context } from 'koa';
import type { Deps, MirrorLink } from './deps';

export type { MirrorLink } from './deps';
import { html, Html } from './negotiate';

export const mirrorsOf = (d: Deps, id: string): MirrorLink[] => d.mirrors?.(id) ?? [];

/** The `mirrors` field of a file's JSON, when this box has mirrors configured. */
export const mirrorsField = (d: Deps, id: string): { mirrors?: MirrorLink[] } => (d.mirrors ? { mirrors: mirrorsOf(d, id) } : {});

/** X-Mirrors: the file's URLs on its mirrors, comma-separated (absent when there are none). */
export function setMirrorsHeader(ctx: Context, d: Deps, id: string): void {
  const list = mirrorsOf(d, id);
  if (list.length) ctx.set('X-Mirrors', list.map((l) => l.url).join(', '));
}

/** A definition-list entry for the file page. */
export function mirrorsFacts(list: MirrorLink[] | undefined): Html | string {
  if (!list?.length) return '';
  return html`<dt>Mirrors</dt><dd>${list.map((l, i) => html`${i ? ', ' : ''}<a href="${l.url}" rel="noreferrer">${new URL(l.mirror).host}</a>`)}</dd>`;
}
