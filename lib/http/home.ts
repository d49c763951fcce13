import type { Context } from 'koa';
import type { Deps } from './deps';
import { escapeHtml, flavor, page } from './negotiate';
import { baseUrl } from './views';

/** The front door: usage for curl, a form for browsers, service facts for scripts. */
export async function home(ctx: Context, d: Deps) {
  const base = baseUrl(ctx, d.config.publicUrl);
  const facts = {
    service: 'bitdrop',
    upload: `${base}/`,
    maxUploadBytes: d.config.maxUploadBytes,
    storagePrice: d.config.storagePrice,
    transferPrice: d.config.transferPrice,
  };
  const f = flavor(ctx);
  if (f === 'json') { ctx.body = facts; return; }
  if (f === 'html') {
    ctx.type = 'html';
    ctx.body = page('bitdrop', `<h1>bitdrop</h1><form method="post" action="/" enctype="multipart/form-data">` +
      `<input type="file" name="file" required> <button>Upload</button></form>` +
      `<p>Or from a terminal: <code>curl -T photo.jpg ${escapeHtml(base)}/</code></p>`);
    return;
  }
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = [
    'bitdrop: a pay-per-use file drop box',
    '',
    `upload:    curl -T photo.jpg ${base}/`,
    `           curl -F file=@photo.jpg ${base}/`,
    `download:  curl -O ${base}/<id>/<name>`,
    `details:   curl -H 'Accept: application/json' ${base}/<id>`,
    `delete:    curl -X DELETE -H 'X-Delete-Token: <token>' ${base}/<id>`,
    `largest upload: ${d.config.maxUploadBytes} bytes`,
    '',
  ].join('\n');
}
