// Charts drawn on the server as inline SVG: no JavaScript, no external anything, readable by screen readers
// (role="img", a label that says what the chart shows, a <title> on every bar and point) and themed by the
// stylesheet (.chart classes follow light and dark). Any page may call them: barChart for amounts per
// period (sats earned per day), lineChart for levels over time (bytes stored, bytes sent).

import { html, Html } from './negotiate';

export interface Bar {
  /** what the bar stands for, e.g. "2026-12-07" */
  label: string;
  value: number;
}

export interface Series {
  name: string;
  points: Array<{ label: string; value: number }>;
  /** 'line' (solid, accent) or 'line2' (dashed, a second colour) */
  style?: 'line' | 'line2';
}

export interface ChartOptions {
  title: string;
  /** how a value reads: sats, bytes … */
  format: (n: number) => string;
  width?: number;
  height?: number;
  /** shown under the chart */
  note?: string;
}

const W = 600;
const H = 180;
const PAD = { left: 8, right: 8, top: 18, bottom: 22 };

/** A rounded-up axis maximum (1, 2, 5 × 10^k) so the top gridline reads well. */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

function frame(o: ChartOptions, label: string, body: Html, labels: string[]): Html {
  const w = o.width ?? W;
  const h = o.height ?? H;
  const first = labels[0] ?? '';
  const last = labels[labels.length - 1] ?? '';
  return html`<figure class="chart"><svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${label}" xmlns="http://www.w3.org/2000/svg">
    <line class="axis" x1="${PAD.left}" y1="${h - PAD.bottom}" x2="${w - PAD.right}" y2="${h - PAD.bottom}"/>
    <line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${w - PAD.right}" y2="${PAD.top}" stroke-dasharray="2 4"/>
    ${body}
    <text x="${PAD.left}" y="${h - 6}">${first}</text>
    ${labels.length > 1 ? html`<text x="${w - PAD.right}" y="${h - 6}" text-anchor="end">${last}</text>` : ''}
  </svg><figcaption>${o.title}${o.note ? html` · ${o.note}` : ''}</figcaption></figure>`;
}

/** Bars, one per period. An empty list draws an empty frame that says so. */
export function barChart(bars: Bar[], o: ChartOptions): Html {
  const w = o.width ?? W;
  const h = o.height ?? H;
  const max = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const plotW = w - PAD.left - PAD.right;
  const plotH = h - PAD.top - PAD.bottom;
  const step = bars.length ? plotW / bars.length : plotW;
  const bw = Math.min(40, Math.max(1, step * 0.8));
  const total = bars.reduce((n, b) => n + b.value, 0);
  const top = bars.reduce<Bar | undefined>((m, b) => (!m || b.value > m.value ? b : m), undefined);
  const label = bars.length
    ? `${o.title}: ${o.format(total)} over ${bars.length} ${bars.length === 1 ? 'day' : 'days'}${top && top.value > 0 ? `, most ${o.format(top.value)} on ${top.label}` : ''}`
    : `${o.title}: no data yet`;
  const body = html`<text x="${w - PAD.right}" y="${PAD.top - 5}" text-anchor="end">${o.format(max)}</text>${bars.map((b, i) => {
    const bh = (b.value / max) * plotH;
    return html`<rect class="bar" x="${(PAD.left + i * step + (step - bw) / 2).toFixed(1)}" y="${(PAD.top + plotH - bh).toFixed(1)}" width="${bw.toFixed(1)}" height="${bh.toFixed(1)}"><title>${b.label}: ${o.format(b.value)}</title></rect>`;
  })}`;
  return frame(o, label, body, bars.map((b) => b.label));
}

/** Lines over the same labels (e.g. days), sharing one scale. */
export function lineChart(series: Series[], o: ChartOptions): Html {
  const w = o.width ?? W;
  const h = o.height ?? H;
  const labels = series[0]?.points.map((p) => p.label) ?? [];
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.value))));
  const plotW = w - PAD.left - PAD.right;
  const plotH = h - PAD.top - PAD.bottom;
  const x = (i: number, n: number) => PAD.left + (n <= 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const label = `${o.title}: ` + (labels.length
    ? series.map((s) => `${s.name} ${o.format(s.points[s.points.length - 1]?.value ?? 0)} on ${labels[labels.length - 1]}`).join('; ')
    : 'no data yet');
  const body = html`<text x="${w - PAD.right}" y="${PAD.top - 5}" text-anchor="end">${o.format(max)}</text>${series.map((s) => {
    const n = s.points.length;
    const pts = s.points.map((p, i) => `${x(i, n).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
    return html`<polyline class="${s.style ?? 'line'}" points="${pts}"/>${s.points.map((p, i) =>
      html`<circle class="${s.style ?? 'line'}" cx="${x(i, n).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3"><title>${s.name}, ${p.label}: ${o.format(p.value)}</title></circle>`)}`;
  })}`;
  const legend = series.length > 1
    ? html`<text x="${PAD.left}" y="${PAD.top - 5}">${series.map((s, i) => `${i ? ' · ' : ''}${s.style === 'line2' ? '- - ' : '— '}${s.name}`).join('')}</text>`
    : '';
  return frame(o, label, html`${legend}${body}`, labels);
}
