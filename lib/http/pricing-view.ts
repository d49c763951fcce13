// The home page's pricing section under cost pricing: how prices are set here, and their history as a
// server-made SVG chart (no script: the pages' CSP forbids it).

import { lineChart } from './charts';
import { html, Html } from './negotiate';

export function pricingView(p: { policy?: string; history: ReadonlyArray<{ day: number; storagePrice: number; transferPrice: number }> }): Html {
  const date = (d: number) => new Date(d * 86_400_000).toISOString().slice(0, 10);
  const recent = p.history.slice(-90);
  const chart = recent.length > 1
    ? lineChart([
      { name: 'storage, sats/GiB/day', points: recent.map((h) => ({ label: date(h.day), value: h.storagePrice })) },
      { name: 'transfer, sats/GiB', style: 'line2', points: recent.map((h) => ({ label: date(h.day), value: h.transferPrice })) },
    ], { title: 'Prices, last 90 days', format: (n) => `${Math.round(n)} sats` })
    : undefined;
  return html`<section class="panel" aria-labelledby="pricing"><h2 id="pricing">How prices are set</h2>
    <p>${p.policy ?? ''}</p>
    ${chart ?? html`<p class="muted">The price history starts today.</p>`}
  </section>`;
}
