// Charts drawn on the server as inline SVG: no JavaScript, no external anything, readable by screen readers
// (role="img", a label that says what the chart shows, a <title> on every bar and point) and themed by the
// stylesheet (.chart classes follow light and dark). Any page may call them: barChart for amounts per
// period (sats earned per day), lineChart for levels over time (bytes stored, bytes sent, profit). With
// `standalone`, a chart is a bare <svg> with its title inside, and svgSheet stacks such charts into one SVG
// file with its own light style (the books' /books.svg, bench/economy's --svg).

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
  /** a bare <svg> for svgSheet instead of a <figure> for a page */
  standalone?: boolean;
}

const W = 600;
/** lines with more points than this get no hover circles */
const MAX_POINTS = 92;
const H = 180;
const PAD = { left: 8, right: 8, top: 18, bottom: 22 };

/** A rounded-up axis maximum (1, 2, 5 × 10^k) so the top gridline reads well. */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/** The vertical scale: from 0 (or a rounded minimum below it) to a rounded maximum. */
function scale(values: number[], plotH: number) {
  const negative = values.some((v) => v < 0);
  const min = negative ? -niceMax(Math.max(...values.map((v) => -v))) : 0;
  const max = negative && values.every((v) => v <= 0) ? 0 : niceMax(Math.max(0, ...values));
  return { max, min, y: (v: number) => PAD.top + plotH - ((v - min) / (max - min)) * plotH };
}

function frame(o: ChartOptions, label: string, body: Html, labels: string[], zeroY?: number): Html {
  const w = o.width ?? W;
  const h = o.height ?? H;
  const first = labels[0] ?? '';
  const last = labels[labels.length - 1] ?? '';
  const caption = html`${o.title}${o.note ? html` · ${o.note}` : ''}`;
  const svg = html`<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${label}" xmlns="http://www.w3.org/2000/svg">
    ${o.standalone ? html`<title>${label}</title>` : ''}
    <line class="axis" x1="${PAD.left}" y1="${h - PAD.bottom}" x2="${w - PAD.right}" y2="${h - PAD.bottom}"/>
    <line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${w - PAD.right}" y2="${PAD.top}" stroke-dasharray="2 4"/>
    ${zeroY !== undefined ? html`<line class="axis" x1="${PAD.left}" y1="${zeroY.toFixed(1)}" x2="${w - PAD.right}" y2="${zeroY.toFixed(1)}"/>` : ''}
    ${body}
    <text x="${PAD.left}" y="${h - 6}">${first}</text>
    ${labels.length > 1 ? html`<text x="${w - PAD.right}" y="${h - 6}" text-anchor="end">${last}</text>` : ''}
    ${o.standalone ? html`<text class="title" x="${w / 2}" y="${h - 6}" text-anchor="middle">${caption}</text>` : ''}
  </svg>`;
  return o.standalone ? svg : html`<figure class="chart">${svg}<figcaption>${caption}</figcaption></figure>`;
}

/** Standalone charts (`standalone: true`) stacked into one SVG document, styled for a white background. */
export function svgSheet(charts: Html[], o: { width?: number; height?: number } = {}): string {
  const w = o.width ?? W;
  const h = o.height ?? H;
  const style = 'text{fill:#555;font:12px sans-serif}.title{fill:#111;font-weight:bold}.axis{stroke:#ccc}.bar{fill:#1f6feb}' +
    '.line{stroke:#1f6feb;fill:none;stroke-width:2}.line2{stroke:#1a7f37;fill:none;stroke-width:2;stroke-dasharray:6 3}';
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${charts.length * h}" width="${w}" height="${charts.length * h}">` +
    `<style>${style}</style><rect width="100%" height="100%" fill="#fff"/>` +
    charts.map((c, i) => `<g transform="translate(0 ${i * h})">${c.text}</g>`).join('') + '</svg>\n';
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
  const plotW = w - PAD.left - PAD.right;
  const plotH = h - PAD.top - PAD.bottom;
  const { max, min, y } = scale(series.flatMap((s) => s.points.map((p) => p.value)), plotH);
  const x = (i: number, n: number) => PAD.left + (n <= 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const label = `${o.title}: ` + (labels.length
    ? series.map((s) => `${s.name} ${o.format(s.points[s.points.length - 1]?.value ?? 0)} on ${labels[labels.length - 1]}`).join('; ')
    : 'no data yet');
  const body = html`<text x="${w - PAD.right}" y="${PAD.top - 5}" text-anchor="end">${o.format(max)}</text>${series.map((s) => {
    const n = s.points.length;
    const pts = s.points.map((p, i) => `${x(i, n).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
    // a point each to hover, up to three months of days; a year's line is a line
    return html`<polyline class="${s.style ?? 'line'}" points="${pts}"/>${n > MAX_POINTS ? '' : s.points.map((p, i) =>
      html`<circle class="${s.style ?? 'line'}" cx="${x(i, n).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3"><title>${s.name}, ${p.label}: ${o.format(p.value)}</title></circle>`)}`;
  })}${min < 0 ? html`<text x="${w - PAD.right}" y="${h - PAD.bottom - 4}" text-anchor="end">${o.format(min)}</text>` : ''}`;
  const legend = series.length > 1
    ? html`<text x="${PAD.left}" y="${PAD.top - 5}">${series.map((s, i) => `${i ? ' · ' : ''}${s.style === 'line2' ? '- - ' : '— '}${s.name}`).join('')}</text>`
    : '';
  return frame(o, label, html`${legend}${body}`, labels, min < 0 ? y(0) : undefined);
}
