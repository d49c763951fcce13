// The public pages: server-rendered HTML with one stylesheet (/style.css), no scripts, no external
// anything. Every page works with JavaScript off (Tor Browser's Safest level) and on a phone-sized window.

import type { Config } from '../config';
import { activationAmount, DAY_MS, DUST_SATS, GiB, storageCost, transferCost, type Prices } from '../ledger/pricing';
import { html, Html, page } from './negotiate';
import { mirrorsFacts, type MirrorLink } from './mirrors-view';

// ---- words ---------------------------------------------------------------------------------------

export function humanBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} ${n === 1 ? 'byte' : 'bytes'}` : `${v >= 100 ? Math.round(v) : Number(v.toFixed(1))} ${units[i]}`;
}

export const sats = (n: number) => `${n.toLocaleString('en-US')} ${Math.abs(n) === 1 ? 'sat' : 'sats'}`;

const when = (iso: string) => iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');

const daysLeft = (iso: string, now = Date.now()) => {
  const days = Math.floor((Date.parse(iso) - now) / DAY_MS);
  if (days >= 3650) return 'more than 10 years left';
  return days < 0 ? 'ended' : days === 0 ? 'less than a day left' : days === 1 ? '1 day left' : `${days.toLocaleString('en-US')} days left`;
};

const pricesOf = (c: Config): Prices => ({ storagePrice: c.storagePrice, transferPrice: c.transferPrice });
export const isFree = (c: Config) => c.storagePrice === 0 && c.transferPrice === 0;

// ---- pieces --------------------------------------------------------------------------------------

/** An inline SVG QR code of `text`, made here (no image request, nothing external). */
export async function qrSvg(text: string, label: string): Promise<Html> {
  // Loaded on the first payment page, not with the daemon (~2 MiB of RSS a free drop box never needs).
  const QRCode = require('qrcode') as typeof import('qrcode');
  const svg = await QRCode.toString(text, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  return new Html(svg.replace('<svg ', `<svg role="img" aria-label="${label.replace(/[&<>"]/g, '')}" `));
}

/** What a payer needs: how much, where, a bitcoin: link a wallet opens, and its QR code. */
export async function paymentPanel(v: Record<string, unknown>, heading: string): Promise<Html> {
  const uri = String(v.paymentUri ?? '');
  const due = Number(v.amountDue ?? 0);
  const scheme = uri.split(':')[0] || 'bitcoin';
  const pending = Number(v.pending ?? 0);
  return html`<section class="panel" aria-labelledby="pay"><h2 id="pay">${heading}</h2><div class="pay">
    <div class="qr">${await qrSvg(uri, `QR code of ${uri}`)}</div>
    <div class="how">
      ${due > 0 ? html`<p class="lead">Send <strong>${sats(due)}</strong> to</p>` : html`<p class="lead">Send any amount to</p>`}
      <p class="mono" id="address">${String(v.address ?? '')}</p>
      <p><a class="button" href="${uri}">Open in wallet</a></p>
      <p class="muted">Or scan the code, or copy the <code>${scheme}:</code> link: <code id="bip21">${uri}</code></p>
      ${pending > 0 ? html`<p><strong>${sats(pending)}</strong> seen, waiting for confirmation.</p>` : ''}
      <p class="muted">Anyone may pay this address to keep the file online longer; payments add to its balance.</p>
    </div></div></section>`;
}

function stateBadge(state: string): Html {
  return html`<span class="state state-${state.replace(/\s+/g, '-')}">${state}</span>`;
}

/** The money facts of a file or drop as a definition list. */
function accountFacts(v: Record<string, unknown>, size: number, c: Config): Html {
  if (isFree(c) || v.state === undefined) return html`<dt>Cost</dt><dd>free: this drop box charges nothing</dd>`;
  const p = pricesOf(c);
  const paidThrough = v.paidThrough ? String(v.paidThrough) : '';
  return html`<dt>State</dt><dd>${stateBadge(String(v.state))}</dd>
    <dt>Balance</dt><dd>${sats(Number(v.balance ?? 0))}</dd>
    <dt>Paid through</dt><dd>${paidThrough ? html`${when(paidThrough)} (${daysLeft(paidThrough)})` : html`<span class="muted">not yet paid</span>`}</dd>
    <dt>24 hours + one download</dt><dd>${sats(activationAmount(size, p))}${activationAmount(size, p) < DUST_SATS ? html` <span class="muted">(a payment is at least ${sats(DUST_SATS)}; the rest extends the time)</span>` : ''}</dd>
    <dt>30 days kept</dt><dd>${sats(storageCost(size, 30 * DAY_MS, p))}</dd>
    <dt>Each download</dt><dd>${sats(transferCost(size, p))}</dd>`;
}

function explainState(state: string | undefined): string {
  switch (state) {
    case 'awaiting payment': return 'This file is awaiting payment. It can be downloaded once the payment below is confirmed; unpaid, it is deleted after a day.';
    case 'partially paid': return 'Part of the payment has arrived; send the rest to make it downloadable.';
    case 'suspended': return 'The balance is spent: downloads are paused until someone tops it up. Left unpaid, the file is deleted after the grace period.';
    case 'active': return '';
    default: return '';
  }
}

function deleteSection(action: string, token?: string): Html {
  // Folded away for visitors; open for the uploader, who just got the token.
  return html`<details${token ? ' open' : ''}><summary>Delete (uploader only)</summary>
    ${token
      ? html`<p>You uploaded this. Keep this delete token: it is shown only now, and it is the only way to delete.</p>
        <p><code>${token}</code></p>`
      : html`<p class="muted">The uploader deletes with the token they were shown after uploading.</p>`}
    <form method="post" action="${action}">
      <label for="token">Delete token</label>
      <input id="token" name="token" type="text" autocomplete="off" spellcheck="false" required value="${token ?? ''}">
      <input type="hidden" name="action" value="delete">
      <p><button class="danger" type="submit">Delete now</button></p>
    </form></details>`;
}

// ---- pages ---------------------------------------------------------------------------------------

export interface HomeFacts {
  base: string;
  onion?: string;
  config: Config;
}

export function homePage(f: HomeFacts): string {
  const c = f.config;
  const p = pricesOf(c);
  const example = storageCost(GiB, 30 * DAY_MS, p) + transferCost(10 * GiB, p);
  const target = f.onion ? `${f.onion.replace(/\/+$/, '')}/` : `${f.base}/`;
  const curl = f.onion ? `curl --socks5-hostname 127.0.0.1:9050 -T file ${target}` : `curl -T file ${target}`;
  const prices = isFree(c)
    ? html`<p class="lead">This drop box is <strong>free</strong>: uploads and downloads cost nothing.</p>`
    : html`<p class="lead">You pay only for what you use, in bitcoin, with no account.</p>
      <ul>
        <li>Keeping 1 GiB costs ${sats(c.storagePrice)} a day; sending it once costs ${sats(c.transferPrice)}.</li>
        <li>1 GiB kept 30 days and downloaded 10 times costs <strong>${sats(example)}</strong>.</li>
        <li>A file can be downloaded once it is paid for a day plus one download; the smallest payment is ${sats(DUST_SATS)}.</li>
        <li>Unpaid uploads are deleted after a day. Anyone can pay any file to keep it online.</li>
      </ul>`;
  return page('Drop a file', html`<h1>Drop a file, get a link</h1>
    <p>bitdrop keeps the files you give it and hands you a link to share. Each upload gets its own payment address.</p>
    ${prices}
    <section class="panel" aria-labelledby="up"><h2 id="up">Upload</h2>
      <form method="post" action="/" enctype="multipart/form-data">
        <label for="file">Choose one or several files</label>
        <input id="file" name="file" type="file" multiple required>
        <button type="submit">Upload</button>
      </form>
      <p class="muted">Largest upload: ${humanBytes(c.maxUploadBytes)}. Several files together get one link, one payment and a zip of all.</p>
    </section>
    <h2>From a terminal</h2>
    <pre>${curl}</pre>
    <p class="muted">It prints the link. <code>curl -F file=@a -F file=@b ${target}</code> uploads several files as one drop.</p>`);
}

export interface FilePageFacts {
  id: string;
  name: string;
  size: number;
  sha256: string;
  type: string;
  url: string;
  created: number;
  /** the payment view (state, address, balance …); {} on a free drop box */
  view: Record<string, unknown>;
  /** the drop it belongs to: its page */
  dropPage?: string;
  /** shown once, to the uploader, right after the upload */
  deleteToken?: string;
  config: Config;
  /** the file's copies on other drop boxes */
  mirrors?: MirrorLink[];
}

export async function filePage(f: FilePageFacts): Promise<string> {
  const state = f.view.state as string | undefined;
  const downloadable = state === undefined || state === 'active';
  const note = explainState(state);
  return page(f.name, html`<h1>${f.name}</h1>
    ${f.deleteToken ? html`<p class="lead">Uploaded. Share this page: <a href="/${f.id}">${f.url.replace(/\/[^/]*$/, '')}</a></p>` : ''}
    ${note ? html`<p>${note}</p>` : ''}
    ${downloadable ? html`<p><a class="button" href="${f.url}" download>Download ${f.name}</a> <span class="muted">${humanBytes(f.size)}</span></p>` : ''}
    <dl class="facts">
      <dt>Size</dt><dd>${humanBytes(f.size)} (${f.size.toLocaleString('en-US')} bytes)</dd>
      <dt>Type</dt><dd>${f.type}</dd>
      <dt>SHA-256</dt><dd class="mono">${f.sha256}</dd>
      <dt>Uploaded</dt><dd>${when(new Date(f.created).toISOString())}</dd>
      ${f.dropPage ? html`<dt>Part of</dt><dd><a href="${f.dropPage}">a drop of several files</a></dd>` : ''}
      ${accountFacts(f.view, f.size, f.config)}
      ${mirrorsFacts(f.mirrors)}
    </dl>
    ${state !== undefined && !f.dropPage ? await paymentPanel(f.view, state === 'active' ? 'Top up' : 'Pay to unlock') : ''}
    ${f.dropPage ? '' : deleteSection(`/${f.id}`, f.deleteToken)}`);
}

export interface DropPageFacts {
  id: string;
  url: string;
  archiveUrl: string;
  files: Array<{ id: string; name: string; size: number; url: string }>;
  size: number;
  created: number;
  view: Record<string, unknown>;
  deleteToken?: string;
  config: Config;
}

export async function dropPage(f: DropPageFacts): Promise<string> {
  const state = f.view.state as string | undefined;
  const downloadable = state === undefined || state === 'active';
  const note = explainState(state);
  return page(`${f.files.length} files`, html`<h1>${f.files.length} files</h1>
    ${f.deleteToken ? html`<p class="lead">Uploaded. Share this page: <a href="/${f.id}">${f.url}</a></p>` : ''}
    ${note ? html`<p>${note.replace('This file is', 'These files are').replace('the file is', 'the files are')}</p>` : ''}
    ${downloadable ? html`<p><a class="button" href="${f.archiveUrl}" download>Download all (zip)</a> <span class="muted">${humanBytes(f.size)}</span></p>` : ''}
    <div class="wrap"><table><caption class="muted">Files in this drop</caption>
      <thead><tr><th scope="col">Name</th><th scope="col" class="num">Size</th></tr></thead><tbody>
      ${f.files.map((x) => html`<tr><td>${downloadable ? html`<a href="${x.url}" download>${x.name}</a>` : x.name}
        <span class="muted">(<a href="/${x.id}">details</a>)</span></td><td class="num">${humanBytes(x.size)}</td></tr>`)}
    </tbody></table></div>
    <dl class="facts">
      <dt>Total size</dt><dd>${humanBytes(f.size)} (${f.size.toLocaleString('en-US')} bytes)</dd>
      <dt>Uploaded</dt><dd>${when(new Date(f.created).toISOString())}</dd>
      ${accountFacts(f.view, f.size, f.config)}
    </dl>
    ${state !== undefined ? await paymentPanel(f.view, state === 'active' ? 'Top up' : 'Pay to unlock') : ''}
    ${deleteSection(`/${f.id}`, f.deleteToken)}`);
}

/** A one-line error message as a sentence: capital first letter, a full stop. */
const sentence = (s: string) => s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?)]$/.test(s) ? '' : '.');

const ERROR_WORDS: Record<number, string> = {
  402: 'This file needs a payment before it can be downloaded.',
  404: 'There is nothing at this address. The link may be mistyped, or the file was never here.',
  410: 'This file was here and has been deleted.',
  413: 'The upload is larger than this drop box accepts.',
  503: 'This drop box is busy or cannot take this now. Try again later.',
  507: 'This drop box is out of disk space right now. Try again later or with a smaller file.',
};

/** An error answer for a browser: the same look as every page; a 402 shows how to pay. */
export async function errorPage(status: number, reason: string, message: string, details: Record<string, unknown>): Promise<string> {
  const words = ERROR_WORDS[status];
  const pay = status === 402 && details.paymentUri ? await paymentPanel(details, 'Pay to unlock') : '';
  return page(`${status} ${reason}`, html`<h1>${status} ${reason}</h1>
    ${words ? html`<p class="lead">${words}</p>` : ''}
    ${pay ? '' : html`<p>${sentence(message)}</p>`}
    ${status === 402 && details.page ? html`<p><a href="${String(details.page)}">See this file's page</a>: its state, balance and how long it is paid for.</p>` : ''}
    ${pay}
    <p><a href="/">Go to the upload page</a></p>`, { className: 'error' });
}

export function deletedPage(what: string): string {
  return page('Deleted', html`<h1>Deleted</h1><p class="lead">${what} is deleted. Its link now answers “gone”.</p><p><a href="/">Go to the upload page</a></p>`);
}
