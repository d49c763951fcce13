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

/** Tagged template that escapes every interpolated value unless it is already `Html`. */
export class Html {
  constructor(readonly text: string) {}
  toString() { return this.text; }
}
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  values.forEach((v, i) => { out += render(v) + strings[i + 1]; });
  return new Html(out);
}
const render = (v: unknown): string =>
  v instanceof Html ? v.text : Array.isArray(v) ? v.map(render).join('') : v === undefined || v === null || v === false ? '' : escapeHtml(String(v));

/**
 * The shell of every page: one stylesheet of our own, no scripts, a header that leads home.
 * `bodyHtml` is trusted markup (built with html`` or escapeHtml).
 */
export interface PageOptions { home?: string; footer?: string | Html; className?: string; refresh?: number }

export function page(title: string, bodyHtml: string | Html, opts: PageOptions = {}): string {
  return '<!doctype html>\n' + html`<html lang="en"><head><meta charset="utf-8">` +
    html`<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">` +
    (opts.refresh ? html`<meta http-equiv="refresh" content="${opts.refresh}">` : '') +
    html`<title>${title} · bitdrop</title><link rel="stylesheet" href="/style.css"></head>` +
    html`<body${opts.className ? html` class="${opts.className}"` : ''}><header><a href="${opts.home ?? '/'}">bitdrop</a></header>` +
    html`<main>${new Html(String(bodyHtml))}</main>` +
    html`<footer>${new Html(String(opts.footer ?? 'bitdrop: a pay-per-use file drop box. No accounts, no tracking, no JavaScript.'))}</footer></body></html>\n`;
}
