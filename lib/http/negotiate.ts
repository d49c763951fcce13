import type { Context } from 'koa';

export type Flavor = 'json' | 'html' | 'text';

/** JSON when asked for, HTML for browsers, plain text for curl and scripts. */
export function flavor(ctx: Context): Flavor {
  const accept = ctx.get('Accept');
  if (/application\/json/i.test(accept)) return 'json';
  if (/text\/html/i.test(accept)) return 'html';
  return 'text';
}

export const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A minimal page; the web-pages issue replaces this with real templates. */
export function page(title: string, bodyHtml: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(title)} · bitdrop</title></head><body><main>${bodyHtml}</main></body></html>\n`;
}
