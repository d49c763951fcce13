// The one stylesheet of every page (public and console), served by the daemon at /style.css.
// No fonts, no images, no external anything: system fonts, readable on a phone, dark when the reader asks.

import crypto from 'crypto';
import type { Context } from 'koa';

export const STYLESHEET = `
:root{--warnbg:#fff8c5;--fg:#1b1f24;--muted:#57606a;--bg:#fff;--panel:#f4f6f8;--line:#d0d7de;--accent:#5a2d82;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e}
@media (prefers-color-scheme:dark){:root{--warnbg:#2d2305;--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--panel:#161b22;--line:#30363d;--accent:#c297ff;--ok:#3fb950;--warn:#d29922;--bad:#f85149}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{overflow-wrap:break-word;margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
header,main,footer{max-width:46rem;margin:0 auto;padding:0 1rem}
header{padding-top:1rem;padding-bottom:.5rem;border-bottom:1px solid var(--line)}
header a{color:var(--fg);font-weight:700;font-size:1.2rem;text-decoration:none}
header a:focus,header a:hover{text-decoration:underline}
footer{color:var(--muted);font-size:.875rem;padding-top:1rem;padding-bottom:2rem;border-top:1px solid var(--line);margin-top:2rem}
h1{font-size:1.6rem;line-height:1.25;margin:1.25rem 0 .5rem;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:1.75rem 0 .5rem}
a{color:var(--accent)}
p,ul,ol,dl,table,form{margin:.75rem 0}
code,pre,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.9em}
code,.mono{overflow-wrap:anywhere;word-break:break-all}
pre{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.lead{font-size:1.1rem}
.muted{color:var(--muted)}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:1rem;margin:1rem 0}
.panel>h2:first-child{margin-top:0}
body.wide header,body.wide main,body.wide footer{max-width:64rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere;min-width:0}
@media (max-width:30rem){dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.4rem}}
.state{display:inline-block;padding:.1rem .6rem;border-radius:999px;font-weight:600;border:2px solid currentColor}
.state-active{color:var(--ok)}
.state-awaiting-payment,.state-partially-paid{color:var(--warn)}
.state-suspended,.state-deleted{color:var(--bad)}
.button,button{display:inline-block;margin:0 .25rem .4rem 0;font:inherit;font-weight:600;color:#fff;background:var(--accent);border:0;border-radius:6px;padding:.6rem 1.1rem;text-decoration:none;cursor:pointer}
@media (prefers-color-scheme:dark){.button,button{color:#0d1117}button.danger,.button.secondary{color:var(--bad)}.button.secondary{color:var(--accent)}}
.button:focus,button:focus,input:focus{outline:3px solid var(--warn);outline-offset:2px}
label{display:block;font-weight:600;margin-bottom:.35rem}
input[type=text]{display:block;width:100%;max-width:26rem;font:inherit;font-family:ui-monospace,Menlo,Consolas,monospace;padding:.45rem .5rem;border:1px solid var(--muted);border-radius:6px;background:var(--bg);color:var(--fg)}
button.danger{background:transparent;color:var(--bad);border:2px solid var(--bad)}
details{margin:1.5rem 0}
summary{cursor:pointer;font-weight:600;color:var(--muted)}
details[open] summary{margin-bottom:.5rem}
input[type=file]{display:block;max-width:100%;margin-bottom:.75rem;font:inherit}
.pay{display:grid;grid-template-columns:14rem minmax(0,1fr);grid-template-areas:"qr amt" "qr rest";gap:0 1.25rem;align-items:start}
.pay .amt{grid-area:amt;min-width:0}.pay .qr{grid-area:qr}.pay .rest{grid-area:rest;min-width:0}
.pay .amt p:first-child{margin-top:0}
@media (max-width:40rem){.pay{grid-template-columns:minmax(0,1fr);grid-template-areas:"amt" "qr" "rest"}}
.amount{font-size:1.35rem;margin:.25rem 0}
.qr{background:#fff;padding:.5rem;border-radius:6px;width:14rem;max-width:100%;line-height:0}
.qr svg{width:100%;height:auto}
.topup .qr{width:10rem}
.topup .pay{grid-template-columns:10rem minmax(0,1fr)}
@media (max-width:40rem){.topup .pay{grid-template-columns:minmax(0,1fr)}}
.next{border-left:4px solid var(--warn);padding-left:.6rem}
.status{font-size:1.05rem}
.token{border-color:var(--warn)}
.banner{margin:.5rem 0 0;padding:.5rem .75rem;border-radius:6px;background:var(--warnbg);color:var(--fg);border:2px solid var(--warn);font-size:.95rem}
.button.secondary,a.button.secondary{background:transparent;color:var(--accent);border:2px solid var(--accent);padding:calc(.6rem - 2px) calc(1.1rem - 2px)}
.problems{border-color:var(--bad)}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:0 1rem}
.chart svg{width:100%;height:auto;display:block}
.chart figcaption{color:var(--muted);font-size:.875rem}
.chart text{fill:var(--muted);font:12px system-ui,sans-serif}
.chart .bar{fill:var(--accent)}.chart .line{stroke:var(--accent);fill:none;stroke-width:2}.chart .line2{stroke:var(--ok);fill:none;stroke-width:2;stroke-dasharray:6 3}
.chart .axis{stroke:var(--line)}
.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
.inline label{margin:0}
input[type=search],textarea{font:inherit;padding:.45rem .5rem;border:1px solid var(--muted);border-radius:6px;background:var(--bg);color:var(--fg);max-width:100%}
textarea{width:100%;font-family:ui-monospace,Menlo,Consolas,monospace}
td form{margin:0}
td button{padding:.25rem .6rem;font-size:.875rem}
nav.tabs a,nav.tabs strong{margin-right:1rem}
.nowrap{white-space:nowrap}
li.bad{color:var(--bad)}li.warn{color:var(--fg)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
td.num,th.num{text-align:right;white-space:nowrap}
.wrap{overflow-x:auto}
.error h1{color:var(--bad)}
`;

const ETAG = `"${crypto.createHash('sha256').update(STYLESHEET).digest('hex').slice(0, 16)}"`;

/** GET /style.css: the stylesheet, cacheable (its ETag changes with its text). */
export function serveStylesheet(ctx: Context) {
  ctx.set('ETag', ETAG);
  ctx.set('Cache-Control', 'public, max-age=3600');
  if (ctx.get('If-None-Match') === ETAG) { ctx.status = 304; return; }
  ctx.type = 'text/css; charset=utf-8';
  ctx.body = STYLESHEET;
}
