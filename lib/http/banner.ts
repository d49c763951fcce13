// The notice every page carries while payments are simulated (the embedded devnet): a visitor reading
// "Send 546 sats to bcrt1q…" must also read that no real coin is asked for. One middleware puts it in the
// header of every HTML answer of the listener (pages, error pages, pages added later), so none can miss it.

import type { Middleware } from 'koa';
import { html } from './negotiate';

export const SIMULATED_NOTICE = html`<p class="banner" role="note"><strong>Test mode:</strong> payments on this drop box are
  simulated on a private test chain. No real bitcoin is asked for or accepted; do not send any.</p>`;

/** Adds `notice` to the header of every HTML page answered (a string body that has our header). */
export function bannerOn(notice = SIMULATED_NOTICE): Middleware {
  return async (ctx, next) => {
    await next();
    if (typeof ctx.body !== 'string' || !/^text\/html/.test(ctx.response.type || '')) return;
    const at = ctx.body.indexOf('</header>');
    if (at < 0) return;
    ctx.body = ctx.body.slice(0, at) + notice.text + ctx.body.slice(at);
  };
}
