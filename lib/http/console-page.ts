// What the console shows, as a page and as text (`bitdrop status`): problems first, then money and bytes
// over time, tor, the chain, names, files and the blocklist, then recent events. Labels and units are the
// operator's words; the raw status stays behind JSON (`bitdrop status --json`, Accept: application/json).

import { barChart, lineChart } from './charts';
import type { DayStats } from './console-history';
import { html, Html, page } from './negotiate';
import { humanBytes, humanDuration, sats } from './pages';
import type { BlockEntry } from '../store/blocklist';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const count = (n: number | undefined, one: string, many = `${one}s`) => `${(n ?? 0).toLocaleString('en-US')} ${(n ?? 0) === 1 ? one : many}`;
const when = (ms: number | string) => new Date(ms).toISOString().replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');

export interface FileRow {
  id: string;
  name: string;
  size: number;
  sha256: string;
  created: number;
  drop?: string;
  state?: string;
  balance?: number;
  downloads?: number;
}

export interface Problem { level: 'bad' | 'warn' | 'note'; text: string }

/** What needs the operator, worst first. */
export function problems(s: Obj): Problem[] {
  const out: Problem[] = [];
  const tor = obj(s.tor);
  const payments = obj(s.payments);
  const electrum = obj(payments.electrum);
  if (tor.mode && tor.mode !== 'off') {
    const boot = num(tor.bootstrap) ?? 0;
    if (boot < 100) out.push({ level: 'bad', text: `Tor has bootstrapped ${boot} %: it cannot reach the Tor network yet, so the onion is not reachable. Check the network and tor's log.` });
    if (!tor.onion) out.push({ level: 'bad', text: 'No onion service is published.' });
  }
  if (payments.electrum && electrum.connected === false) out.push({ level: 'bad', text: `Not connected to the Electrum server ${String(electrum.server ?? '')}: payments are not being seen.` });
  for (const n of Array.isArray(s.names) ? (s.names as Obj[]) : []) {
    if (n.lastError) out.push({ level: 'warn', text: `Name ${String(n.name)}: ${String(n.lastError)}` });
    const left = num(n.expiresIn);
    if (left !== undefined && left < 2000) out.push({ level: 'warn', text: `Name ${String(n.name)} expires in ${left.toLocaleString('en-US')} blocks (about ${humanDuration(left * 600_000)}).` });
  }
  if (payments.mode === 'simulated') out.push({ level: 'note', text: 'Payments are simulated on the embedded devnet: visitors are told no real bitcoin is asked for. Set --xpub and --electrum to take real payments.' });
  if (payments.mode === 'free') out.push({ level: 'note', text: 'This drop box is free: nothing is charged.' });
  return out;
}

const BANNER = /^(bitdrop \d|serving |storing |console |uploads |prices |payments |onion |tor {7}|names {5}|not configured yet|ready |volume |WARNING {3}listening| {10})/;

/** Recent events without the start-up banner (which `bitdrop start` printed already). */
export function eventsOf(s: Obj): Array<{ time: string; line: string }> {
  const events = Array.isArray(s.events) ? (s.events as Array<{ time: string; line: string }>) : [];
  return events.filter((e) => !BANNER.test(e.line));
}

/** The facts of the status in sections of [label, value] rows: shared by the page and `bitdrop status`. */
export function sections(s: Obj): Array<{ title: string; rows: Array<[string, string]> }> {
  const tor = obj(s.tor);
  const payments = obj(s.payments);
  const electrum = obj(payments.electrum);
  const sweep = obj(electrum.sweep);
  const totals = obj(s.totals);
  const store = obj(s.store);
  const out: Array<{ title: string; rows: Array<[string, string]> }> = [];
  out.push({ title: 'Daemon', rows: [
    ['Version', `bitdrop ${String(s.version ?? '')} (pid ${String(s.pid ?? '')})`],
    ['Up for', humanDuration((num(s.uptime) ?? 0) * 1000)],
    ['Serving', String(s.listen ?? '')],
    ['Console', String(s.console ?? '')],
    ['Data dir', String(s.dataDir ?? '')],
  ] });
  out.push({ title: 'Tor', rows: [
    ['Mode', String(tor.mode ?? 'off')],
    ['Onion', s.onion ? `http://${String(s.onion)}/` : 'not published'],
    ...(tor.mode && tor.mode !== 'off' ? [['Bootstrapped', `${num(tor.bootstrap) ?? 0} %`] as [string, string]] : []),
    ...(tor.socks ? [['SOCKS port', `${String(obj(tor.socks).host)}:${String(obj(tor.socks).port)}`] as [string, string]] : []),
    ...(tor.defenses ? [['DoS defences', defensesText(obj(tor.defenses))] as [string, string]] : []),
  ] });
  const pay: Array<[string, string]> = [['Mode', payments.mode === 'simulated' ? 'simulated (embedded devnet, no real coins)' : payments.mode === 'free' ? 'free (nothing is charged)' : `live on ${String(payments.network ?? '')}`]];
  if (payments.mode !== 'free') {
    pay.push(['Prices', `${sats(num(payments.storagePrice) ?? 0)} per GiB per day stored; ${sats(num(payments.transferPrice) ?? 0)} per GiB sent`]);
    pay.push(['Earned (confirmed)', sats(num(totals.creditsConfirmed) ?? num(payments.creditsEarned) ?? 0)]);
    pay.push(['Waiting for confirmation', sats(num(totals.creditsPending) ?? 0)]);
    if (payments.electrum) {
      pay.push(['Electrum server', `${String(electrum.server ?? '')} (${electrum.connected ? 'connected' : 'NOT connected'})`]);
      pay.push(['Chain tip', electrum.height !== undefined ? `block ${Number(electrum.height).toLocaleString('en-US')}` : 'not known yet']);
      pay.push(['Addresses watched', `${(num(electrum.subscriptions) ?? 0).toLocaleString('en-US')} subscribed, ${(num(electrum.hot) ?? 0).toLocaleString('en-US')} recently active`]);
      if (sweep.pass !== undefined) {
        pay.push(['Re-check of all addresses', `pass ${String(sweep.pass)}; the last one checked ${count(num(sweep.lastPassScripts), 'address', 'addresses')} in ${humanDuration(num(sweep.lastPassMs) ?? 0).replace(/^1 minute$/, 'under a minute')}`]);
      }
    }
    const pool = obj(payments.addressPool);
    if (payments.addressPool) pay.push(['Addresses derived ahead', `${(num(pool.size) ?? 0).toLocaleString('en-US')} of ${(num(pool.target) ?? 0).toLocaleString('en-US')}${pool.filling ? ' (filling)' : ''}`]);
  }
  out.push({ title: 'Chain and payments', rows: pay });
  const byState = obj(totals.byState);
  out.push({ title: 'Storage', rows: [
    ['Files', `${count(num(s.files), 'file')} (${humanBytes(num(s.bytes) ?? 0)})`],
    ...Object.entries(byState).map(([state, v]) => [`  ${state}`, `${count(num(obj(v).uploads), 'upload')}, ${humanBytes(num(obj(v).bytes) ?? 0)}`] as [string, string]),
    ['On disk', `${count(num(store.chunks), 'chunk')}, ${humanBytes(num(store.chunkBytes) ?? 0)} (${String(store.backend ?? '')} chunk store, ${humanBytes(num(store.chunkSize) ?? 0)} chunks)`],
    ['Sent since start', humanBytes(num(totals.bytesServedSinceStart) ?? 0)],
  ] });
  const names = Array.isArray(s.names) ? (s.names as Obj[]) : [];
  out.push({ title: 'Names', rows: names.length
    ? names.map((n) => [String(n.name), [String(n.state), n.height !== null && n.height !== undefined ? `since block ${String(n.height)}` : '',
      num(n.expiresIn) !== undefined ? `expires in ${num(n.expiresIn)!.toLocaleString('en-US')} blocks (about ${humanDuration(num(n.expiresIn)! * 600_000)})` : ''].filter(Boolean).join(', ')] as [string, string])
    : [['Registered', 'none (bitdrop start --name d/NAME registers one)']] });
  return out;
}

/** `bitdrop status` and the console's text form: problems, then sections with aligned columns. */
export function formatStatus(s: Obj): string[] {
  const lines: string[] = [];
  const ps = problems(s);
  lines.push(ps.some((p) => p.level !== 'note') ? 'PROBLEMS' : 'Problems: none');
  for (const p of ps) lines.push(`  ${p.level === 'bad' ? '✗' : p.level === 'warn' ? '!' : '·'} ${p.text}`);
  for (const sec of sections(s)) {
    lines.push('', sec.title);
    const width = Math.max(...sec.rows.map(([k]) => k.length));
    for (const [k, v] of sec.rows) lines.push(`  ${k.padEnd(width)}  ${v}`.trimEnd());
  }
  const events = eventsOf(s).slice(0, 10);
  lines.push('', `Recent events${events.length ? ' (newest first)' : ': none since start-up'}`);
  for (const e of events) lines.push(`  ${e.time.replace('T', ' ').replace(/\.\d+Z$/, '')}  ${e.line}`);
  return lines;
}

// ---- HTML ----------------------------------------------------------------------------------------

function section(id: string, title: string, body: Html | string, cls = ''): Html {
  return html`<section class="panel${cls ? ` ${cls}` : ''}" aria-labelledby="h-${id}"><h2 id="h-${id}">${title}</h2>${new Html(String(body))}</section>`;
}

function rowsList(rows: Array<[string, string]>): Html {
  return html`<dl class="facts">${rows.map(([k, v]) => html`<dt>${k.trim() || '—'}</dt><dd>${v}</dd>`)}</dl>`;
}

const dayLabel = (day: number) => new Date(day * 86_400_000).toISOString().slice(5, 10);

export interface ConsoleExtras {
  csrf?: string;
  done?: string;
  history?: Array<DayStats & { earned: number }>;
  files?: FileRow[];
  blocked?: BlockEntry[];
  /** the SHA-256 a "Block…" link pre-fills */
  sha256?: string;
  /** the public listener, for links to file pages */
  base?: string;
}

export function fileTable(rows: FileRow[], csrf: string | undefined, back: string, base?: string): Html {
  if (!rows.length) return html`<p class="muted">No files.</p>`;
  return html`<div class="wrap"><table><thead><tr><th scope="col">Name</th><th scope="col" class="num">Size</th><th scope="col">State</th>
    <th scope="col" class="num">Balance</th><th scope="col" class="num">Downloads<span class="muted">*</span></th><th scope="col">Uploaded</th><th scope="col">Actions</th></tr></thead><tbody>${
    rows.map((r) => html`<tr><td><a href="${base ?? ''}/${r.drop ?? r.id}">${r.name}</a>${r.drop ? html` <span class="muted">(in a drop)</span>` : ''}
      <br><span class="mono muted" title="SHA-256">${r.sha256.slice(0, 16)}…</span></td>
      <td class="num">${humanBytes(r.size)}</td><td>${r.state ?? 'free'}</td><td class="num">${r.balance !== undefined ? sats(r.balance) : '—'}</td>
      <td class="num">${r.downloads !== undefined ? r.downloads.toLocaleString('en-US') : '—'}</td><td>${when(r.created)}</td>
      <td>${csrf ? html`<form method="post" action="/files/${r.drop ?? r.id}/delete"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="back" value="${back}">
        <button class="danger" type="submit" aria-label="Delete${r.drop ? ' drop of' : ''} ${r.name}">Delete${r.drop ? ' drop' : ''}</button></form>
        <a href="/?sha256=${r.sha256}#h-block" aria-label="Block the content of ${r.name}">Block…</a>` : ''}</td></tr>`)
  }</tbody></table></div><p class="muted">* Whole downloads paid from the file's (or its drop's) balance.</p>`;
}

function blockForms(csrf: string, blocked: BlockEntry[], sha = ''): Html {
  return html`<form method="post" action="/block"><input type="hidden" name="csrf" value="${csrf}">
      <p><label for="b-sha">SHA-256 of the content</label><input id="b-sha" name="sha256" type="text" required pattern="[0-9a-fA-F]{64}" autocomplete="off" spellcheck="false" value="${sha}"></p>
      <p><label for="b-why">Reason (shown to whoever opens its link)</label><input id="b-why" name="reason" type="text" required maxlength="300"></p>
      <p><button class="danger" type="submit">Block and delete stored copies</button></p></form>
    ${blocked.length ? html`<div class="wrap"><table><caption>Blocked content (${blocked.length})</caption><thead><tr><th scope="col">SHA-256</th><th scope="col">Reason</th><th scope="col">Since</th><th scope="col">Action</th></tr></thead><tbody>${
      blocked.map((b) => html`<tr><td class="mono">${b.sha256}</td><td>${b.reason}</td><td>${when(b.added)}</td><td><form method="post" action="/unblock">
        <input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="sha256" value="${b.sha256}"><button class="secondary button" type="submit" aria-label="Unblock ${b.sha256.slice(0, 12)}">Unblock</button></form></td></tr>`)
    }</tbody></table></div>` : html`<p class="muted">Nothing is blocked.</p>`}
    <p><a href="/blocklist.txt">Download the blocklist</a> to share it with other boxes.</p>
    <details><summary>Add a shared blocklist</summary><form method="post" action="/blocklist"><input type="hidden" name="csrf" value="${csrf}">
      <p><label for="b-list">One “&lt;sha256&gt; &lt;reason&gt;” a line</label><textarea id="b-list" name="list" rows="5" required></textarea></p>
      <p><button type="submit">Add these</button></p></form></details>`;
}

/** The onion's DoS defences as an operator reads them: "proof-of-work (queue 250/s, burst 2500), …". */
function defensesText(d: Obj): string {
  const pow = obj(d.pow);
  const streams = obj(d.maxStreams);
  const intro = obj(d.introDoS);
  return [
    pow.on ? `proof-of-work${pow.queueRate !== undefined ? ` (queue ${pow.queueRate}/s, burst ${pow.queueBurst})` : ''}` : 'no proof-of-work',
    streams.on ? `at most ${streams.limit} streams a circuit` : 'no stream limit',
    intro.on ? 'introduction-point limits' : 'introduction points: the consensus limits',
  ].join('; ');
}

export function consolePage(s: Obj, x: ConsoleExtras = {}): string {
  const parts: Html[] = [];
  const simulated = obj(s.payments).mode === 'simulated';
  parts.push(html`<h1>Console</h1><p class="muted">bitdrop ${String(s.version ?? '')}, up ${humanDuration((num(s.uptime) ?? 0) * 1000)}. Only on this machine's loopback.
    As of ${when(Date.now())}: <a href="/">reload</a> for fresh figures.</p>`);
  if (x.done) parts.push(html`<p class="banner" role="status">${x.done}</p>`);
  if (obj(s.payments).mode && obj(s.payments).mode !== 'free') parts.push(html`<p><a href="/books">The books</a>: revenue, costs, margin, runway and prices by day, as charts (<a href="/books.csv">CSV</a>).</p>`);
  const ps = problems(s);
  const serious = ps.filter((p) => p.level !== 'note');
  parts.push(section('problems', serious.length ? `Problems (${serious.length})` : 'No problems', html`<ul>${ps.map((p) => html`<li class="${p.level === 'note' ? '' : p.level}">${p.level === 'bad' ? html`<strong>${p.text}</strong>` : p.text}</li>`)}</ul>${ps.length ? '' : html`<p class="ok">Tor, the chain and the names are fine.</p>`}`, serious.length ? 'problems' : ''));
  const secs = sections(s);
  if (x.history) {
    const h = x.history;
    parts.push(section('charts', 'The last 30 days', html`<div class="grid2">
      ${barChart(h.map((d) => ({ label: dayLabel(d.day), value: d.earned })), { title: `Money earned per day${simulated ? ' (simulated)' : ''}`, format: sats })}
      ${lineChart([{ name: 'stored', points: h.map((d) => ({ label: dayLabel(d.day), value: d.stored })) }, { name: 'sent', style: 'line2', points: h.map((d) => ({ label: dayLabel(d.day), value: d.sent })) }], { title: 'Bytes stored, and sent per day', format: humanBytes })}
    </div>`));
  }
  for (const sec of secs) {
    if (sec.title === 'Daemon') continue;
    parts.push(section(sec.title.toLowerCase().replace(/\W+/g, '-'), sec.title, rowsList(sec.rows)));
  }
  if (x.files) {
    parts.push(section('files', 'Newest files', html`${fileTable(x.files, x.csrf, '/', x.base)}
      <nav class="tabs" aria-label="File lists"><a href="/files?sort=newest">All files</a><a href="/files?sort=largest">Largest</a><a href="/files?sort=downloads">Most downloaded</a><a href="/files?sort=unpaid">Unpaid</a></nav>
      <form method="get" action="/files" class="inline"><p><label for="q">Search by name, id or SHA-256</label><input id="q" name="q" type="search"></p><p><button type="submit">Search</button></p></form>`));
  }
  if (x.csrf && x.blocked) parts.push(section('block', 'Block content (takedowns)', blockForms(x.csrf, x.blocked, x.sha256)));
  const events = eventsOf(s);
  parts.push(section('events', 'Recent events', events.length
    ? html`<div class="wrap"><table><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Event</th></tr></thead><tbody>${
      events.map((e) => html`<tr><td class="nowrap">${e.time.replace('T', ' ').replace(/\.\d+Z$/, '')}</td><td class="mono">${e.line}</td></tr>`)
    }</tbody></table></div>`
    : html`<p class="muted">Nothing since start-up.</p>`));
  parts.push(section('daemon', 'Daemon', rowsList(secs.find((x) => x.title === 'Daemon')!.rows)));
  return page('Console', parts.join(''), { footer: html`<code>bitdrop status</code> prints the same; <code>bitdrop status --json</code> and <a href="/status">/status</a> give everything.`, className: 'wide' });
}

export interface FilesPageFacts {
  sort: string;
  q: string;
  rows: FileRow[];
  matched: number;
  scanned: number;
  csrf: string;
  done?: string;
  base?: string;
}

export function filesPage(f: FilesPageFacts): string {
  const tabs = [['newest', 'Newest'], ['largest', 'Largest'], ['downloads', 'Most downloaded'], ['unpaid', 'Unpaid']];
  const back = `/files?sort=${f.sort}${f.q ? `&q=${encodeURIComponent(f.q)}` : ''}`;
  return page('Files · console', html`<h1>Files</h1><p><a href="/">Back to the console</a></p>
    ${f.done ? html`<p class="banner" role="status">${f.done}</p>` : ''}
    <nav class="tabs" aria-label="File lists">${tabs.map(([k, label]) => k === f.sort ? html`<strong aria-current="page">${label}</strong> ` : html`<a href="/files?sort=${k}${f.q ? `&q=${encodeURIComponent(f.q)}` : ''}">${label}</a> `)}</nav>
    <form method="get" action="/files" class="inline"><input type="hidden" name="sort" value="${f.sort}">
      <p><label for="q">Search by name, id or SHA-256</label><input id="q" name="q" type="search" value="${f.q}"></p><p><button type="submit">Search</button></p></form>
    <p class="muted">${f.matched.toLocaleString('en-US')} ${f.matched === 1 ? 'file' : 'files'}${f.q ? ' match' : ''}${f.rows.length < f.matched ? `; the first ${f.rows.length} shown` : ''}.</p>
    ${fileTable(f.rows, f.csrf, back, f.base)}`, { className: 'wide' });
}
