// Server-made SVG line charts (no script, no external asset: the console and the onion pages have a strict
// CSP). Issue 26 brings a shared chart helper in lib/http/charts.ts; until then this one serves the books,
// the home page's price history and bench/economy.

export interface Series {
  name: string;
  /** [x, y] points, x increasing */
  points: Array<[number, number]>;
  color?: string;
}

export interface ChartOptions {
  title: string;
  width?: number;
  height?: number;
  /** label of the x values (default: days) */
  xLabel?: (x: number) => string;
  yLabel?: (y: number) => string;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 240;
  const m = { l: 64, r: 12, t: 28, b: 36 };
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  const y0 = Math.min(0, ...(ys.length ? ys : [0]));
  const y1 = Math.max(1, ...(ys.length ? ys : [1]));
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  const fx = o.xLabel ?? ((x: number) => String(Math.round(x)));
  const fy = o.yLabel ?? ((y: number) => String(Math.round(y)));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`);
  parts.push(`<title>${esc(o.title)}</title>`);
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${m.l}" y="18" font-family="sans-serif" font-size="13" font-weight="bold">${esc(o.title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${m.l - 4}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end" font-family="sans-serif" font-size="10">${esc(fy(y))}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const x = x0 + ((x1 - x0) * i) / 4;
    parts.push(`<text x="${sx(x).toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle" font-family="sans-serif" font-size="10">${esc(fx(x))}</text>`);
  }
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    if (s.points.length) {
      const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    }
    const lx = m.l + i * 150;
    parts.push(`<rect x="${lx}" y="${H - 14}" width="10" height="10" fill="${color}"/><text x="${lx + 14}" y="${H - 5}" font-family="sans-serif" font-size="10">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
