import type { Context } from 'koa';
import type { Deps } from './deps';
import { flavor } from './negotiate';
import { homePage, humanBytes } from './pages';
import { baseUrl } from './views';
import { pricingView } from './pricing-view';

/** The front door: usage for curl, a form for browsers, service facts for scripts. */
export async function home(ctx: Context, d: Deps) {
  const base = baseUrl(ctx, d.config.publicUrl);
  const pricing = d.pricing?.();
  const facts = {
    service: 'bitdrop',
    upload: `${base}/`,
    maxUploadBytes: d.config.maxUploadBytes,
    storagePrice: d.config.storagePrice,
    transferPrice: d.config.transferPrice,
    free: d.config.storagePrice === 0 && d.config.transferPrice === 0,
    ...(d.onion?.() ? { onion: `${d.onion()}/` } : {}),
    ...(pricing ? { pricing: pricing.mode, pricingPolicy: pricing.policy, priceHistory: pricing.history } : {}),
  };
  const f = flavor(ctx);
  if (f === 'json') { ctx.body = facts; return; }
  if (f === 'html') {
    ctx.type = 'html';
    ctx.body = homePage({ base, onion: d.onion?.(), config: d.config, pricing: pricing?.mode === 'cost' ? pricingView(pricing) : undefined });
    return;
  }
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = [
    'bitdrop: a pay-per-use file drop box',
    '',
    `upload:    curl -T photo.jpg ${base}/`,
    `           curl -F file=@photo.jpg ${base}/`,
    `download:  curl -fO ${base}/<id>/<name>   (-f: an unpaid file's 402 is not saved as the file)`,
    `details:   curl -H 'Accept: application/json' ${base}/<id>`,
    `delete:    curl -X DELETE -H 'X-Delete-Token: <token>' ${base}/<id>`,
    `several:   curl -F file=@a.txt -F file=@b.txt ${base}/   (one drop: one link, one payment, a zip of all)`,
    d.config.storagePrice === 0 && d.config.transferPrice === 0
      ? 'prices:    none, this drop box is free'
      : `prices:    ${d.config.storagePrice} sats per GiB per day stored, ${d.config.transferPrice} sats per GiB sent`,
    ...(pricing?.mode === 'cost' && pricing.policy ? [`           ${pricing.policy}`] : []),
    `largest upload: ${humanBytes(d.config.maxUploadBytes)} (${d.config.maxUploadBytes} bytes)`,
    '',
  ].join('\n');
}
