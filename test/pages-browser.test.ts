// The pages as a Tor Browser user at the Safest level meets them: real Chromium, JavaScript disabled.
// home → upload through the form → 303 to the file page, which shows the delete token once (a one-time
// cookie, never in a URL) → "awaiting payment" with the amount, what it buys and a QR code (decoded here,
// it is the BIP21 URI) → pay on the devnet → "seen, waiting for confirmation" → mine → active → download
// the same bytes; an unpaid file's URL is a 402 page, never a download; several files are one drop with a
// zip of all; delete asks for confirmation; the error pages; the operator console.
// Then every page met is checked with axe-core (in a second, script-enabled browser that loads the same
// HTML) at phone and desktop width, light and dark: 0 violations; each is saved as a screenshot in
// test-artifacts/pages/ (NN-name-phone-dark.png …).

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { PNG } from 'pngjs';
import jsQR from 'jsqr';
import type { Page } from 'playwright-core';
import { startDaemon, exec, CLI, curl, randomFile, sha256File, tmpDir } from './helpers/daemon';
import { launchChromium, artifactPath } from './helpers/chromium';

const MiB = 1024 * 1024;
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** axe rules whose answer changes with the window's size or the colour scheme */
const VARIANT_RULES = ['color-contrast', 'target-size', 'scrollable-region-focusable', 'meta-viewport', 'region', 'landmark-one-main', 'frame-tested'];

interface Seen { name: string; url: string; html: string }

t.test('the pages in Chromium with JavaScript off', async (t) => {
  // `bitdrop start` with no prices: pay per use on the embedded devnet is the default.
  const d = await startDaemon({ paid: true, args: ['--max-upload-bytes', '3MiB', '--max-unpaid-bytes', '600KB'] });
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const browser = await launchChromium({ viewport: { width: 1000, height: 800 } });
  t.teardown(() => browser.close());
  const page = await browser.context.newPage();
  const downloadsSeen: string[] = [];
  page.on('download', (dl) => downloadsSeen.push(dl.url()));
  const seen: Seen[] = [];
  /** Keeps the page as it is now for the axe and screenshot pass; every public page carries the test-mode notice. */
  const keep = async (p: Page, name: string) => {
    const html = await p.content();
    if (!name.includes('console')) t.match(html, /Test mode:<\/strong> payments on this drop box are\s+simulated/, `${name}: says payments are simulated`);
    seen.push({ name, url: p.url(), html });
  };
  const cli = async (...args: string[]) => (await exec(process.execPath, [CLI, ...args, '--data-dir', d.dataDir]));
  const json = async (url: string) => JSON.parse(await curl('-H', 'Accept: application/json', url));
  const until = async (url: string, ok: (v: Record<string, unknown>) => boolean) => {
    for (let i = 0; i < 300 && !ok(await json(url)); i++) await new Promise((r) => setTimeout(r, 100));
    return json(url);
  };
  const pay = async (url: string) => {
    const due = (await json(url)).amountDue as number;
    const r = await cli('devnet', 'pay', url, String(due));
    t.match(r.stdout.trim(), /^[0-9a-f]{64}$/, 'devnet pay prints the txid');
    t.match(r.stderr, new RegExp(`${due} sats`), 'and says what it paid');
    t.ok(Number((await until(url, (v) => Number(v.pending) > 0)).pending) > 0, 'the payment is seen');
  };
  const mine = async (url: string) => {
    await cli('devnet', 'mine', '1');
    t.equal((await until(url, (v) => v.state === 'active')).state, 'active', 'paid on the devnet');
  };
  const ID_URL = new RegExp(`^${d.url}/[A-Za-z0-9_-]{22}$`);

  // ---- home ----
  const home = await page.goto(`${d.url}/`);
  t.equal(home!.status(), 200);
  const csp = home!.headers()['content-security-policy'];
  t.match(csp, /default-src 'none'/);
  t.notMatch(csp, /unsafe-inline|script-src/, 'no inline anything, no scripts');
  t.notOk(home!.headers()['set-cookie'], 'no cookies');
  t.notMatch(await page.content(), /<script/i);
  await t.resolveMatch(page.locator('main').innerText(), /1 GiB kept 30 days and downloaded 10 times costs 160 sats/);
  await t.resolveMatch(page.locator('main').innerText(), /546 sats keeps a 10 MiB file about .+ and pays [\d,]+ downloads/);
  await t.resolveMatch(page.locator('main').innerText(), /Largest upload: 3 MiB/);
  await t.resolveMatch(page.locator('pre').innerText(), new RegExp(`^curl -T file ${d.url}/$`), 'the curl line (an onion when tor runs)');
  t.equal(await page.locator('label[for=file]').count(), 1, 'the file input has a label');
  await keep(page, '01-home');

  // ---- upload through the form → 303 → the file page, token shown once ----
  const file = randomFile(work, 200_000, 'report.pdf');
  await page.setInputFiles('#file', file);
  const [posted] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.waitForURL(ID_URL, { waitUntil: 'load' }),
    page.click('button[type=submit]'),
  ]);
  t.equal(posted.status(), 303, 'a form upload answers 303 See Other');
  const cookie = (await posted.headerValue('set-cookie')) ?? '';
  const id = new URL(page.url()).pathname.slice(1);
  t.match(cookie, new RegExp(`^bitdrop_delete_token=[A-Za-z0-9_-]+; path=/${id}; expires=.*; samesite=strict; httponly$`, 'i'), 'the token rides in a one-time HttpOnly cookie for this page only');
  const token = /=([A-Za-z0-9_-]+);/.exec(cookie)![1];
  t.notMatch(posted.headers().location, new RegExp(token), 'the token is not in the redirect');
  t.notMatch(page.url(), new RegExp(token), 'nor in the address bar');
  t.equal(posted.headers()['referrer-policy'], 'no-referrer');
  const landed = await page.locator('main').innerText();
  t.match(landed, /Uploaded\. Share this page/);
  t.match(landed, /awaiting payment/);
  t.match(landed, /Send 546 sats/);
  t.match(landed, /546 sats keeps this file about a century and pays [\d,]+ downloads/, 'what the payment buys');
  t.match(landed, /After paying, come back to this page/, 'what happens next');
  await t.resolveMatch(page.locator('#delete-token').innerText(), token, 'the uploader sees the delete token');
  t.equal(await page.locator('#token').inputValue(), '', 'the delete form is not pre-filled');
  t.notMatch(landed, /12 bytes \(|bytes \(\d+ bytes\)/);
  await keep(page, '02-uploaded');
  const filePage = `${d.url}/${id}`;
  await page.reload();
  const text = await page.locator('main').innerText();
  t.match(text, /awaiting payment/);
  t.notMatch(text, /Your delete token/, 'the token is shown once: a reload does not show it');
  const view = await json(filePage);
  t.equal(await page.locator('#bip21').innerText(), view.paymentUri);
  t.equal(await page.locator('a.button[href^="bitcoin:"]').getAttribute('href'), view.paymentUri, 'a bitcoin: link');
  t.equal(await page.locator('a.button[href="/' + id + '"]').innerText(), 'Reload this page', 'a reload button, no meta refresh');
  const qrPng = PNG.sync.read(await page.locator('.qr').screenshot({ path: artifactPath('03-qr.png') }));
  const decoded = jsQR(new Uint8ClampedArray(qrPng.data), qrPng.width, qrPng.height);
  t.equal(decoded?.data, view.paymentUri, 'the QR code is the BIP21 URI');
  t.equal(await page.locator('a[download]').count(), 0, 'no download button before payment');
  await keep(page, '04-file-awaiting-payment');

  // ---- the unpaid file's URL: a 402 page, never an attachment ----
  const unpaid = await page.goto(view.url);
  t.equal(unpaid!.status(), 402);
  t.notOk(unpaid!.headers()['content-disposition'], 'no Content-Disposition on a 402');
  t.match(unpaid!.headers()['content-type'], /^text\/html/);
  await t.resolveMatch(page.locator('h1').innerText(), /402 Payment Required/);
  await t.resolveMatch(page.locator('main').innerText(), /Send 546 sats\s+546 sats keeps this file about a century and pays [\d,]+ downloads/, 'the 402 page says what the payment buys');
  await keep(page, '05-402');
  t.same(downloadsSeen, [], 'nothing was downloaded');

  // ---- pay on the devnet: seen, then mined: active, download the same bytes ----
  await pay(filePage);
  await page.goto(filePage);
  await t.resolveMatch(page.locator('main').innerText(), /546 sats seen, waiting for its confirmation.*This page does not change by itself/s);
  await keep(page, '06-file-payment-seen');
  await mine(filePage);
  await page.reload();
  await t.resolveMatch(page.locator('.state').innerText(), /^active$/);
  const active = await page.locator('main').innerText();
  t.match(active, /Paid through\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC \((a century|\d+ (years|months|days)) left\)/);
  t.equal(await page.locator('details.topup').getAttribute('open'), null, 'a paid file folds its top-up away');
  await keep(page, '07-file-active');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('a.button[download]')]);
  t.equal(dl.suggestedFilename(), 'report.pdf');
  t.equal(await sha256File((await dl.path())!), await sha256File(file), 'the downloaded bytes are the uploaded ones');

  // ---- several files: one drop, one page, one address, a zip of all ----
  await page.goto(`${d.url}/`);
  const a = randomFile(work, 100_000, 'a.txt');
  const b = randomFile(work, 150_000, 'b photo.jpg');
  await page.setInputFiles('#file', [a, b]);
  await Promise.all([page.waitForURL(ID_URL, { waitUntil: 'load' }), page.click('button[type=submit]')]);
  await t.resolveMatch(page.locator('h1').innerText(), /^2 files$/);
  await t.resolveMatch(page.locator('main').innerText(), /These files are waiting for a payment/);
  t.equal(await page.locator('#delete-token').count(), 1, 'the drop page shows its token once too');
  await keep(page, '08-drop-uploaded');
  const dropUrl = page.url();
  const drop = await json(dropUrl);
  t.equal(drop.files.length, 2);
  t.equal(drop.state, 'awaiting payment');
  t.equal(drop.size, 250_000);
  t.equal((await json(drop.files[0].url)).address, drop.address, 'one address for the whole drop');
  await page.goto(drop.files[0].url.replace(/\/[^/]*$/, ''));
  await t.resolveMatch(page.locator('main').innerText(), /pay for the drop on its page/);
  await keep(page, '09-drop-member');
  await pay(dropUrl);
  await mine(dropUrl);
  await page.goto(dropUrl);
  await t.resolveMatch(page.locator('.state').innerText(), /^active$/);
  await keep(page, '10-drop-active');
  const [zip] = await Promise.all([page.waitForEvent('download'), page.click('a.button[download]')]);
  const zipPath = path.join(work, 'all.zip');
  await zip.saveAs(zipPath);
  const listing = (await exec('unzip', ['-Z1', zipPath])).stdout.trim().split('\n');
  t.same(listing, ['a.txt', 'b photo.jpg']);
  await exec('unzip', ['-q', '-d', path.join(work, 'unzipped'), zipPath]);
  t.equal(await sha256File(path.join(work, 'unzipped', 'b photo.jpg')), await sha256File(b), 'the zip holds the same bytes');
  const [one] = await Promise.all([page.waitForEvent('download'), page.click('table a[download] >> nth=0')]);
  t.equal(await sha256File((await one.path())!), await sha256File(a), 'each file downloads alone too');

  // ---- error pages: 404, delete through the form (with a confirmation) then 410, 413, 503 ----
  const nf = await page.goto(`${d.url}/AAAAAAAAAAAAAAAAAAAAAA`);
  t.equal(nf!.status(), 404);
  await t.resolveMatch(page.locator('h1').innerText(), /404 Not Found/);
  t.equal((await page.locator('main').innerText()).match(/mistyped/g)?.length, 1, 'the 404 says it once');
  await keep(page, '11-404');
  await page.goto(`${d.url}/`);
  await page.setInputFiles('#file', randomFile(work, 12, 'oops.txt'));
  await Promise.all([page.waitForURL(ID_URL, { waitUntil: 'load' }), page.click('button[type=submit]')]);
  const oops = page.url();
  const oopsToken = await page.locator('#delete-token').innerText();
  t.match(await page.locator('main').innerText(), /Size\s+12 bytes\s/, 'no "12 bytes (12 bytes)"');
  await page.locator('summary', { hasText: 'Delete' }).click();
  await page.fill('#token', 'not-the-token');
  const [wrong] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('text=Delete…')]);
  t.equal(wrong.status(), 403, 'a wrong token is refused before any confirmation');
  await page.goto(oops);
  await page.locator('summary', { hasText: 'Delete' }).click();
  await page.fill('#token', oopsToken);
  await Promise.all([page.waitForLoadState('load'), page.click('text=Delete…')]);
  await t.resolveMatch(page.locator('h1').innerText(), /^Delete “oops\.txt”\?$/, 'delete asks for confirmation');
  t.equal((await json(oops)).state, 'awaiting payment', 'nothing is deleted before the confirmation');
  await keep(page, '12-delete-confirm');
  await Promise.all([page.waitForLoadState('load'), page.click('text=Yes, delete it')]);
  await t.resolveMatch(page.locator('h1').innerText(), /^Deleted$/);
  t.notMatch(await page.locator('main').innerText(), /answers “gone”/);
  await keep(page, '13-deleted');
  const gone = await page.goto(oops);
  t.equal(gone!.status(), 410);
  await t.resolveMatch(page.locator('main').innerText(), /has been deleted.*Deleted on \d{4}-\d\d-\d\d \d\d:\d\d UTC: The uploader deleted it\./s);
  await keep(page, '14-410');
  await page.goto(`${d.url}/`);
  await page.setInputFiles('#file', randomFile(work, 4 * MiB, 'big.iso'));
  const [big] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]')]);
  t.equal(big.status(), 413);
  await page.waitForLoadState('load');
  await t.resolveMatch(page.locator('h1').innerText(), /413/);
  await keep(page, '15-413');
  await page.goto(`${d.url}/`);
  await page.setInputFiles('#file', randomFile(work, 700_000, 'too-many-unpaid.bin'));
  const [busy] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]')]);
  t.equal(busy.status(), 503, 'more unpaid bytes than the box takes: 503');
  await page.waitForLoadState('load');
  await t.resolveMatch(page.locator('main').innerText(), /busy or cannot take this now/);
  await keep(page, '16-503');

  // ---- a phone: state, amount and QR on the first screen ----
  const phone = await browser.context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  const unpaidOnPhone = JSON.parse(await curl('-H', 'Accept: application/json', '-T', randomFile(work, 5000, 'unpaid.txt'), `${d.url}/`));
  await phone.goto(`${d.url}/${unpaidOnPhone.id}`);
  for (const sel of ['.state', '.amount', '.qr']) {
    const box = (await phone.locator(sel).boundingBox())!;
    t.ok(box.y + Math.min(box.height, 200) <= 844, `${sel} is on a phone's first screen (y ${Math.round(box.y)})`);
  }
  t.ok((await phone.locator('.qr').boundingBox())!.y < (await phone.locator('dl.facts').boundingBox())!.y, 'the QR comes before the facts');
  await phone.close();

  // ---- the operator console on its loopback port ----
  const adminToken = fs.readFileSync(path.join(d.dataDir, 'admin-token'), 'utf8').trim();
  const anon = await page.request.get(`${d.consoleUrl}/`);
  t.equal(anon.status(), 401, 'the console needs the admin token');
  t.match(anon.headers()['www-authenticate'], /^Basic /, 'a browser asks for it');
  const op = await launchChromium({ viewport: { width: 1000, height: 800 }, httpCredentials: { username: 'operator', password: adminToken } });
  t.teardown(() => op.close());
  const consolePage = await op.context.newPage();
  const con = await consolePage.goto(`${d.consoleUrl}/`);
  t.equal(con!.status(), 200);
  const ctext = await consolePage.locator('main').innerText();
  t.match(ctext, /Tor/);
  t.match(ctext, /Chain and payments/);
  t.match(ctext, /simulated/i);
  t.match(ctext, /Recent events/);
  t.match(ctext, /is paid and active/, 'recent events show the payments');
  t.notMatch(ctext, /nextIndex|checkedThisPass|undefined/, 'no raw internals');
  t.notMatch(await consolePage.content(), /http-equiv="refresh"/, 'no meta refresh');
  await keep(consolePage, '17-console');
  await consolePage.goto(`${d.consoleUrl}/files?sort=largest`);
  await keep(consolePage, '18-console-files');
  t.same(downloadsSeen.length, 3, 'only the three paid downloads happened');

  // ---- every page: axe at phone and desktop width, light and dark; screenshots ----
  const checker = await launchChromium({ javaScriptEnabled: true, bypassCSP: true });
  t.teardown(() => checker.close());
  const cp = await checker.context.newPage();
  const variants = [['desktop', 1000, 800], ['phone', 390, 844]] as const;
  const checking = Date.now();
  for (const s of seen) {
    // the page's own origin (for /style.css), then the HTML the JavaScript-free browser was given; axe is
    // injected once and run again after each change of size and colour scheme
    await cp.goto(`${new URL(s.url).origin}/style.css`);
    await cp.setContent(s.html, { waitUntil: 'load' });
    await cp.addScriptTag({ content: AXE });
    for (const [width, w, h] of variants) {
      for (const scheme of ['light', 'dark'] as const) {
        await cp.setViewportSize({ width: w, height: h });
        await cp.emulateMedia({ colorScheme: scheme });
        const name = `${s.name}-${width}-${scheme}`;
        const png = PNG.sync.read(await cp.screenshot({ path: artifactPath(`${name}.png`), fullPage: true }));
        if (width === 'phone') t.equal(png.width, w, `${name}: no sideways scrolling on a phone`);
        // Every rule at the first variant; the markup is the same at the others, so there only the rules whose
        // answer depends on size and colours run again (contrast above all).
        const only = width === 'desktop' && scheme === 'light' ? undefined : VARIANT_RULES;
        const violations = await cp.evaluate(async (only) => {
          const r = await (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } })
            .axe.run(document, only ? { runOnly: { type: 'rule', values: only } } : {});
          return r.violations.map((v) => `${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
        }, only);
        t.same(violations, [], `${name}: 0 axe violations`);
      }
    }
  }
  t.ok(seen.length >= 17, `${seen.length} pages checked`);
  t.comment(`axe and screenshots of ${seen.length} pages × 4: ${Date.now() - checking} ms`);
});
