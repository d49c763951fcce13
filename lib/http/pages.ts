// The public pages: server-rendered HTML with one stylesheet (/style.css), no scripts, no external
// anything. Every page works with JavaScript off (Tor Browser's Safest level) and on a phone-sized window.

import type { Config } from '../config';
import { activationAmount, DAY_MS, DUST_SATS, GiB, storageCost, storageTime, transferCost, type Prices } from '../ledger/pricing';
import { html, Html, page, type PageOptions } from './negotiate';
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

/** A span of time as people say it: "5 hours", "3 days", "4 months", "12 years", "about a century". */
export function humanDuration(ms: number): string {
  const plural = (n: number, w: string) => `${n.toLocaleString('en-US')} ${w}${n === 1 ? '' : 's'}`;
  if (!Number.isFinite(ms)) return 'for good';
  if (ms >= 99 * 365 * DAY_MS) return 'a century';
  if (ms >= 2 * 365 * DAY_MS) return plural(Math.floor(ms / (365 * DAY_MS)), 'year');
  if (ms >= 60 * DAY_MS) return plural(Math.floor(ms / (30 * DAY_MS)), 'month');
  if (ms >= 2 * DAY_MS) return plural(Math.floor(ms / DAY_MS), 'day');
  if (ms >= 2 * 3600_000) return plural(Math.floor(ms / 3600_000), 'hour');
  return plural(Math.max(1, Math.floor(ms / 60_000)), 'minute');
}

const timeLeft = (iso: string, now = Date.now()) => {
  const ms = Date.parse(iso) - now;
  return ms <= 0 ? 'ended' : `${humanDuration(ms)} left`;
};

/** A fraction of a satoshi as a price reads: "0.0004 sats", "2 sats". */
function fewSats(x: number): string {
  if (x === 0) return 'nothing';
  if (x >= 10) return sats(Math.ceil(x));
  const digits = Number(x.toPrecision(2));
  return `${digits.toLocaleString('en-US', { maximumSignificantDigits: 2 })} ${digits === 1 ? 'sat' : 'sats'}`;
}

const pricesOf = (c: Config): Prices => ({ storagePrice: c.storagePrice, transferPrice: c.transferPrice });
export const isFree = (c: Config) => c.storagePrice === 0 && c.transferPrice === 0;
const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** Size as people read it; the exact byte count only where the short form rounds. */
const sizeOf = (n: number) => (n < 1024 ? humanBytes(n) : `${humanBytes(n)} (${n.toLocaleString('en-US')} bytes)`);

/**
 * What an amount buys for a file of `size`: half of it spent on keeping, half on downloads (the balance pays
 * both, whatever the mix). "546 sats keeps this file about a century and pays 140,000 downloads."
 */
export function whatItBuys(amount: number, size: number, p: Prices, what = 'this file'): { lead: string; detail: string } {
  const perDay = (size * p.storagePrice) / GiB;
  const perDownload = (size * p.transferPrice) / GiB;
  const half = Math.floor(amount / 2);
  const keeps = p.storagePrice === 0 ? 'keeps ' + what + ' for good' : `keeps ${what} about ${humanDuration(storageTime(perDownload === 0 ? amount : half, size, p))}`;
  const downloads = perDownload === 0 ? 'downloads are free' : `pays ${plural(Math.floor((perDay === 0 ? amount : amount - half) / perDownload), 'download')}`;
  return {
    lead: `${sats(amount)} ${keeps} and ${downloads}.`,
    detail: `The balance pays for both, in any mix: each day kept costs ${fewSats(perDay)}, each download ${fewSats(perDownload)}. ` +
      `Whatever is not used stays on ${what === 'this file' ? 'the file' : 'them'}; anyone may add more.`,
  };
}

// ---- pieces --------------------------------------------------------------------------------------

/** An inline SVG QR code of `text`, made here (no image request, nothing external). */
export async function qrSvg(text: string, label: string): Promise<Html> {
  // Loaded on the first payment page, not with the daemon (~2 MiB of RSS a free drop box never needs).
  const QRCode = require('qrcode') as typeof import('qrcode');
  const svg = await QRCode.toString(text, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  return new Html(svg.replace('<svg ', `<svg role="img" aria-label="${label.replace(/[&<>"]/g, '')}" `));
}

export interface PanelOptions {
  /** the page to reload after paying (the file's or drop's page) */
  reload?: string;
  size?: number;
  config?: Config;
  /** "this file" / "these files" */
  what?: string;
  /** a smaller panel: topping up a file that is already paid */
  topUp?: boolean;
  /** the words of the reload button (default "Reload this page") */
  reloadLabel?: string;
}

/** What a payer needs: how much and what it buys, where, a bitcoin: link a wallet opens, its QR code, what happens next. */
export async function paymentPanel(v: Record<string, unknown>, heading: string, o: PanelOptions = {}): Promise<Html> {
  const uri = String(v.paymentUri ?? '');
  const due = Number(v.amountDue ?? 0);
  const scheme = uri.split(':')[0] || 'bitcoin';
  const pending = Number(v.pending ?? 0);
  const what = o.what ?? 'this file';
  const buys = o.config && o.size !== undefined && !isFree(o.config)
    ? whatItBuys(Math.max(due, DUST_SATS), o.size, pricesOf(o.config), what) : undefined;
  const next = pending > 0
    ? html`<p class="next"><strong>${sats(pending)} seen</strong>, waiting for ${o.config && o.config.confirmations > 1 ? `${o.config.confirmations} confirmations` : 'its confirmation'} (usually 10 to 30 minutes).
        ${due > 0 ? html`Still to pay: ${sats(due)}.` : html`Then ${what === 'this file' ? 'it' : 'they'} can be downloaded.`} This page does not change by itself.</p>`
    : o.topUp ? '' : html`<p class="next">After paying, come back to this page: it shows the payment within a minute, and the download once the payment is confirmed (usually 10 to 30 minutes). It does not change by itself.</p>`;
  return html`<section class="panel${o.topUp ? ' topup' : ''}" aria-labelledby="pay"><h2 id="pay">${heading}</h2><div class="pay">
    <div class="amt">
      ${due > 0
        ? html`<p class="amount">Send <strong>${sats(due)}</strong></p>`
        : html`<p class="amount">Send at least <strong>${sats(DUST_SATS)}</strong></p>`}
      ${buys ? html`<p>${buys.lead}</p>` : ''}
    </div>
    <div class="qr">${await qrSvg(uri, `QR code of ${uri}`)}</div>
    <div class="rest">
      <p>to the address</p>
      <p class="mono" id="address">${String(v.address ?? '')}</p>
      <p><a class="button" href="${uri}">Open in wallet</a>${o.reload ? html` <a class="button secondary" href="${o.reload}">${o.reloadLabel ?? 'Reload this page'}</a>` : ''}</p>
      ${next}
      <p class="muted">Or scan the code, or copy the <code>${scheme}:</code> link: <code id="bip21">${uri}</code></p>
      ${buys ? html`<p class="muted">${buys.detail}</p>` : html`<p class="muted">Anyone may pay this address to keep ${what} online longer; payments add to the balance.</p>`}
      ${nmcPanel(v.nmc)}
    </div></div></section>`;
}

/** Paid in NMC too: the file's Namecoin address and the amount at the operator's rate. */
function nmcPanel(n: unknown): Html | string {
  if (!n || typeof n !== 'object') return '';
  const v = n as { address?: string; amountDue?: number; paymentUri?: string; rate?: number };
  const nmc = (base: number) => `${(base / 1e8).toFixed(8).replace(/0+$/, '').replace(/\.$/, '')} NMC`;
  return html`<h3>Or pay in namecoin</h3>
      ${v.amountDue ? html`<p>Send <strong>${nmc(v.amountDue)}</strong> to</p>` : html`<p>Send any amount to</p>`}
      <p class="mono" id="nmc-address">${v.address ?? ''}</p>
      <p><a class="button" href="${v.paymentUri ?? ''}">Open in a Namecoin wallet</a></p>
      <p class="muted">At this box's rate of ${String(v.rate ?? '')} sats per NMC; NMC pays for its .bit names.</p>`;
}

function stateBadge(state: string): Html {
  return html`<span class="state state-${state.replace(/\s+/g, '-')}">${state}</span>`;
}

/** The money facts of a file or drop as a definition list. */
function accountFacts(v: Record<string, unknown>, size: number, c: Config): Html {
  if (isFree(c) || v.state === undefined) return html`<dt>Cost</dt><dd>free: this drop box charges nothing</dd>`;
  const p = pricesOf(c);
  const paidThrough = v.paidThrough ? String(v.paidThrough) : '';
  const pending = Number(v.pending ?? 0);
  return html`<dt>Balance</dt><dd>${sats(Number(v.balance ?? 0))}${pending > 0 ? html` <span class="muted">(+ ${sats(pending)} waiting for confirmation)</span>` : ''}</dd>
    <dt>Paid through</dt><dd>${paidThrough ? html`${when(paidThrough)} (${timeLeft(paidThrough)})` : html`<span class="muted">not yet paid</span>`}</dd>
    <dt>Prices</dt><dd>each day kept ${fewSats((size * p.storagePrice) / GiB)}, each download ${fewSats((size * p.transferPrice) / GiB)}</dd>`;
}

function explainState(state: string | undefined, many = false): string {
  const it = many ? 'These files are' : 'This file is';
  switch (state) {
    case 'awaiting payment': return `${it} waiting for a payment. ${many ? 'They' : 'It'} can be downloaded once the payment below is confirmed; unpaid, ${many ? 'they are' : 'it is'} deleted after a day.`;
    case 'partially paid': return 'Part of the payment has arrived; send the rest to make it downloadable.';
    case 'suspended': return `The balance is spent: downloads are paused until someone tops it up. Left unpaid, ${many ? 'the files are' : 'the file is'} deleted after the grace period.`;
    default: return '';
  }
}

/** The delete token, once, right after the upload: a panel of its own near the top. */
function tokenPanel(token: string): Html {
  return html`<section class="panel token" aria-labelledby="tok"><h2 id="tok">Your delete token</h2>
    <p>Keep it: it is shown only this once, and it is the only way to delete what you uploaded.</p>
    <p><code id="delete-token">${token}</code></p></section>`;
}

function deleteSection(action: string): Html {
  // Folded away: the uploader pastes the token, then confirms on the next page.
  return html`<details><summary>Delete (uploader only)</summary>
    <form method="post" action="${action}">
      <label for="token">Delete token</label>
      <input id="token" name="token" type="text" autocomplete="off" spellcheck="false" required>
      <input type="hidden" name="action" value="delete">
      <p><button class="danger" type="submit">Delete…</button> <span class="muted">You will be asked to confirm.</span></p>
    </form></details>`;
}

/** The page between the delete form and the deletion: what goes, for whom, and two ways out. */
export function confirmDeletePage(id: string, what: string, token: string, opts: PageOptions = {}): string {
  return page('Delete?', html`<h1>Delete ${what}?</h1>
    <p class="lead">Everyone with the link loses it. This cannot be undone, and the balance is not refunded.</p>
    <form method="post" action="/${id}">
      <input type="hidden" name="token" value="${token}">
      <input type="hidden" name="action" value="delete">
      <input type="hidden" name="confirm" value="yes">
      <p><button class="danger" type="submit">Yes, delete it</button> <a class="button secondary" href="/${id}">No, keep it</a></p>
    </form>`, opts);
}

// ---- pages ---------------------------------------------------------------------------------------

export interface HomeFacts {
  base: string;
  onion?: string;
  config: Config;
  /** cost pricing: how prices are set, and their history as an SVG chart (lib/http/pricing-view.ts) */
  pricing?: Html;
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
        <li>A file can be downloaded once it is paid for a day plus one download; the smallest payment is ${sats(DUST_SATS)}. ${whatItBuys(DUST_SATS, 10 * 1024 * 1024, p, 'a 10 MiB file').lead}</li>
        <li>Unpaid uploads are deleted after ${humanDuration(c.unpaidTtl)}. Anyone can pay any file to keep it online.</li>
      </ul>${f.pricing ?? ''}`;
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
  /** an age file: the panel saying so (lib/http/encrypted.ts) */
  encrypted?: Html;
  /** the file's copies on other drop boxes */
  mirrors?: MirrorLink[];
}

/** The money part of a file or drop page: pay to unlock, or a folded top-up once paid. */
async function moneyPart(view: Record<string, unknown>, size: number, c: Config, reload: string, what: string): Promise<Html | string> {
  const state = view.state as string | undefined;
  if (state === undefined) return '';
  if (state === 'active') {
    const panel = await paymentPanel(view, 'Add time or downloads', { reload, size, config: c, what, topUp: true });
    return html`<details class="topup"><summary>Add time or downloads (anyone may pay)</summary>${panel}</details>`;
  }
  return paymentPanel(view, state === 'suspended' ? 'Top up to resume downloads' : 'Pay to unlock', { reload, size, config: c, what });
}

function statusLine(view: Record<string, unknown>, many: boolean): Html | string {
  const state = view.state as string | undefined;
  if (state === undefined) return '';
  const note = explainState(state, many);
  const paidThrough = view.paidThrough ? String(view.paidThrough) : '';
  return html`<p class="status">${stateBadge(state)} ${state === 'active' && paidThrough ? html`paid through ${when(paidThrough).slice(0, 10)} (${timeLeft(paidThrough)})` : note}</p>`;
}

export async function filePage(f: FilePageFacts): Promise<string> {
  const state = f.view.state as string | undefined;
  const downloadable = state === undefined || state === 'active';
  return page(f.name, html`<h1>${f.name}</h1>
    ${f.deleteToken ? html`<p class="lead">Uploaded. Share this page: <a href="/${f.id}">${f.url.replace(/\/[^/]*$/, '')}</a></p>` : ''}
    ${statusLine(f.view, false)}
    ${downloadable ? html`<p><a class="button" href="${f.url}" download>Download ${f.name}</a> <span class="muted">${humanBytes(f.size)}</span></p>` : ''}
    ${state !== undefined && state !== 'active' && !f.dropPage ? await moneyPart(f.view, f.size, f.config, `/${f.id}`, 'this file') : ''}
    ${f.dropPage && state !== undefined && state !== 'active' ? html`<p>This file is part of a drop: <a href="${f.dropPage}">pay for the drop on its page</a>.</p>` : ''}
    ${f.deleteToken ? tokenPanel(f.deleteToken) : ''}
    ${f.encrypted ?? ''}
    <h2>About this file</h2>
    <dl class="facts">
      <dt>Size</dt><dd>${sizeOf(f.size)}</dd>
      <dt>Type</dt><dd>${f.type}</dd>
      <dt>SHA-256</dt><dd class="mono">${f.sha256}</dd>
      <dt>Uploaded</dt><dd>${when(new Date(f.created).toISOString())}</dd>
      ${f.dropPage ? html`<dt>Part of</dt><dd><a href="${f.dropPage}">a drop of several files</a></dd>` : ''}
      ${accountFacts(f.view, f.size, f.config)}
      ${mirrorsFacts(f.mirrors)}
    </dl>
    ${state === 'active' && !f.dropPage ? await moneyPart(f.view, f.size, f.config, `/${f.id}`, 'this file') : ''}
    ${f.dropPage ? '' : deleteSection(`/${f.id}`)}`);
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
  /** age files: the panel saying so (lib/http/encrypted.ts) */
  encrypted?: Html;
}

export async function dropPage(f: DropPageFacts): Promise<string> {
  const state = f.view.state as string | undefined;
  const downloadable = state === undefined || state === 'active';
  const title = plural(f.files.length, 'file');
  const many = f.files.length !== 1;
  const what = many ? 'these files' : 'this file';
  return page(title, html`<h1>${title}</h1>
    ${f.deleteToken ? html`<p class="lead">Uploaded. Share this page: <a href="/${f.id}">${f.url}</a></p>` : ''}
    ${statusLine(f.view, many)}
    ${downloadable ? html`<p><a class="button" href="${f.archiveUrl}" download>Download all (zip)</a> <span class="muted">${humanBytes(f.size)}</span></p>` : ''}
    ${state !== undefined && state !== 'active' ? await moneyPart(f.view, f.size, f.config, `/${f.id}`, what) : ''}
    ${f.deleteToken ? tokenPanel(f.deleteToken) : ''}
    ${f.encrypted ?? ''}
    <div class="wrap"><table><caption>Files in this drop</caption>
      <thead><tr><th scope="col">Name</th><th scope="col" class="num">Size</th></tr></thead><tbody>
      ${f.files.map((x) => html`<tr><td>${downloadable ? html`<a href="${x.url}" download>${x.name}</a>` : x.name}
        <span class="muted">(<a href="/${x.id}">details</a>)</span></td><td class="num">${humanBytes(x.size)}</td></tr>`)}
    </tbody></table></div>
    <dl class="facts">
      <dt>Total size</dt><dd>${sizeOf(f.size)}</dd>
      <dt>Uploaded</dt><dd>${when(new Date(f.created).toISOString())}</dd>
      ${accountFacts(f.view, f.size, f.config)}
    </dl>
    ${state === 'active' ? await moneyPart(f.view, f.size, f.config, `/${f.id}`, what) : ''}
    ${deleteSection(`/${f.id}`)}`);
}

/** A one-line error message as a sentence: capital first letter, a full stop. */
const sentence = (s: string) => s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?)]$/.test(s) ? '' : '.');

const ERROR_WORDS: Record<number, string> = {
  402: 'This file needs a payment before it can be downloaded.',
  404: 'There is nothing at this address. The link may be mistyped, or the file was never here.',
  410: 'This file was here and has been deleted.',
  413: 'The upload is larger than this drop box accepts.',
  451: 'This drop box does not take this file.',
  503: 'This drop box is busy or cannot take this now. Try again later.',
  507: 'This drop box is out of disk space right now. Try again later or with a smaller file.',
};

/** An error answer for a browser: the same look as every page; a 402 shows how to pay. */
export async function errorPage(status: number, reason: string, message: string, details: Record<string, unknown>,
  payFor?: { size: number; config: Config; what?: string }): Promise<string> {
  const words = ERROR_WORDS[status];
  const pay = status === 402 && details.paymentUri
    ? await paymentPanel(details, 'Pay to unlock', { reload: details.page ? String(details.page) : undefined, reloadLabel: 'See its page', ...(payFor ?? {}) }) : '';
  // The 404's words already say all its message says; a 410 says when and why.
  const said = status === 404 ? ''
    : status === 410 && details.deleted ? html`<p>Deleted on ${when(String(details.deleted))}${details.why ? html`: ${sentence(String(details.why))}` : '.'}</p>`
      : pay ? '' : html`<p>${sentence(message)}</p>`;
  return page(`${status} ${reason}`, html`<h1>${status} ${reason}</h1>
    ${words ? html`<p class="lead">${words}</p>` : ''}
    ${said}
    ${pay}
    ${status === 402 && details.page ? html`<p><a href="${String(details.page)}">See this file's page</a>: its state, balance and how long it is paid for.</p>` : ''}
    <p><a href="/">Go to the upload page</a></p>`, { className: 'error' });
}

export function deletedPage(what: string): string {
  return page('Deleted', html`<h1>Deleted</h1><p class="lead">${what} is deleted.</p><p>Anyone who opens its link now reads that it was deleted.</p><p><a href="/">Go to the upload page</a></p>`);
}
