// The books on the operator console: GET /books (HTML with server-made SVG charts; JSON; plain text for
// curl), /books.csv (for an accountant), /books.svg (the charts alone). Mounted through the console's
// `routes` by node.ts; the numbers come from lib/economy.

import type Koa from 'koa';
import { booksCsv, booksTable, type BookRow, type BooksSummary, type PricePoint } from '../economy';
import { flavor, html, type Html, page } from './negotiate';
import { lineChart, svgSheet } from './charts';

export interface BooksSource {
  rows(days?: number): Promise<BookRow[]>;
  summary(days?: number): Promise<BooksSummary>;
  priceHistory(): readonly PricePoint[];
  mode: string;
}

/** The books' charts, by day: for the console page, or standalone for /books.svg. */
export function booksCharts(rows: BookRow[], standalone = false): Html[] {
  const by = (value: (r: BookRow) => number) => rows.map((r) => ({ label: r.date, value: value(r) }));
  const sats = (n: number) => `${Math.round(n)} sats`;
  let cum = 0;
  return [
    lineChart([
      { name: 'revenue', points: by((r) => r.revenue) },
      { name: 'costs', style: 'line2', points: by((r) => r.costs) },
    ], { title: 'Revenue and costs by day', format: sats, standalone }),
    lineChart([{ name: 'profit so far', points: by((r) => (cum += r.profit)) }], { title: 'Profit so far', format: sats, standalone }),
    lineChart([{ name: 'disk used', points: by((r) => r.utilization * 100) }], { title: 'Utilization of the disk', format: (n) => `${n.toFixed(0)} %`, standalone }),
    lineChart([{ name: 'storage price', points: by((r) => r.storagePrice) }], { title: 'Storage price', format: (n) => `${Math.round(n)} sats/GiB/day`, standalone }),
  ];
}

export function booksRoute(src: () => BooksSource | undefined) {
  return async (ctx: Koa.Context): Promise<boolean> => {
    if (!['/books', '/books.csv', '/books.svg'].includes(ctx.path)) return false;
    const s = src();
    if (!s) {
      ctx.status = 404;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'no books: this drop box is free (no ledger)\n';
      return true;
    }
    const days = Number(ctx.query.days) > 0 ? Math.floor(Number(ctx.query.days)) : undefined;
    const rows = await s.rows(days);
    if (ctx.path === '/books.csv') {
      ctx.type = 'text/csv; charset=utf-8';
      ctx.body = booksCsv(rows);
      return true;
    }
    if (ctx.path === '/books.svg') {
      ctx.type = 'image/svg+xml';
      ctx.body = svgSheet(booksCharts(rows, true));
      return true;
    }
    const summary = await s.summary(days);
    const f = flavor(ctx);
    if (f === 'json') { ctx.body = { pricing: s.mode, summary, rows, prices: s.priceHistory() }; return true; }
    if (f === 'text') { ctx.type = 'text/plain; charset=utf-8'; ctx.body = booksTable(rows, summary); return true; }
    ctx.type = 'html';
    const runway = summary.runwayDays === null ? 'the box pays for itself' : `${summary.runwayDays} days at ${summary.burnPerDay} sats a day`;
    ctx.body = page('Books', html`<h1>The books</h1>
      <p>Pricing: <strong>${s.mode}</strong>. ${summary.days} days: revenue ${summary.revenue} sats, costs ${summary.costs} sats,
      profit <strong>${summary.profit} sats</strong>${summary.margin === null ? '' : ` (margin ${(summary.margin * 100).toFixed(1)} %)`};
      cash ${summary.cash} sats; runway: ${runway}; utilization ${(summary.utilization * 100).toFixed(1)} %.</p>
      <p><a href="/books.csv">CSV for an accountant</a> · <a href="/">console</a></p>
      ${booksCharts(rows)}
      <div class="wrap"><table><thead><tr><th>date</th><th>revenue</th><th>costs</th><th>profit</th><th>used</th><th>price</th></tr></thead><tbody>${
        rows.slice().reverse().map((r) => html`<tr><td>${r.date}</td><td>${r.revenue}</td><td>${r.costs}</td><td>${r.profit}</td><td>${(r.utilization * 100).toFixed(1)} %</td><td>${r.storagePrice}</td></tr>`)
      }</tbody></table></div>`);
    return true;
  };
}
