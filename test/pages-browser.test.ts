// The pages as a Tor Browser user at the Safest level meets them: real Chromium, JavaScript disabled.
// home → upload through the form → the file page says "awaiting payment" with a QR code (decoded here, it
// is the BIP21 URI) → pay on the devnet → reload → active → download the same bytes; an unpaid file's URL
// is a 402 page, never a download; several files are one drop with a zip of all; the operator console.
// Every page is saved as a screenshot in test-artifacts/pages/.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { PNG } from 'pngjs';
import jsQR from 'jsqr';
import type { Page } from 'playwright-core';
import { startDaemon, exec, CLI, curl, randomFile, sha256File, tmpDir } from './helpers/daemon';
import { launchChromium, artifactPath } from './helpers/chromium';

const MiB = 1024 * 1024;

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
  const shot = (p: Page, name: string) => p.screenshot({ path: artifactPath(name), fullPage: true });
  const cli = async (...args: string[]) => (await exec(process.execPath, [CLI, ...args, '--data-dir', d.dataDir])).stdout.trim();
  const json = async (url: string) => JSON.parse(await curl('-H', 'Accept: application/json', url));
  const payAndMine = async (url: string) => {
    const due = (await json(url)).amountDue as number;
    t.match(await cli('devnet', 'pay', url, String(due)), /^[0-9a-f]{64}$/);
    await cli('devnet', 'mine', '1');
    for (let i = 0; i < 200 && (await json(url)).state !== 'active'; i++) await new Promise((r) => setTimeout(r, 100));
    t.equal((await json(url)).state, 'active', 'paid on the devnet');
  };

  // ---- home ----
  const home = await page.goto(`${d.url}/`);
  t.equal(home!.status(), 200);
  const csp = home!.headers()['content-security-policy'];
  t.match(csp, /default-src 'none'/);
  t.notMatch(csp, /unsafe-inline|script-src/, 'no inline anything, no scripts');
  t.notOk(home!.headers()['set-cookie'], 'no cookies');
  t.notMatch(await page.content(), /<script/i);
  await t.resolveMatch(page.locator('main').innerText(), /1 GiB kept 30 days and downloaded 10 times costs 160 sats/);
  await t.resolveMatch(page.locator('main').innerText(), /Largest upload: 3 MiB/);
  await t.resolveMatch(page.locator('pre').innerText(), new RegExp(`^curl -T file ${d.url}/$`), 'the curl line (an onion when tor runs)');
  t.equal(await page.locator('label[for=file]').count(), 1, 'the file input has a label');
  await shot(page, '01-home.png');

  // ---- upload through the form → file page, awaiting payment, QR = BIP21 ----
  const file = randomFile(work, 200_000, 'report.pdf');
  await page.setInputFiles('#file', file);
  await Promise.all([page.waitForURL(`${d.url}/`, { waitUntil: 'load' }), page.click('button[type=submit]')]);
  const landed = await page.locator('main').innerText();
  t.match(landed, /Uploaded\. Share this page/);
  t.match(landed, /awaiting payment/);
  t.match(landed, /Keep this delete token/, 'the uploader is shown how to delete');
  await shot(page, '02-uploaded.png');
  const share = await page.locator('main p.lead a').getAttribute('href');
  t.match(share, /^\/[A-Za-z0-9_-]{22}$/);
  const id = share!.slice(1);
  const filePage = `${d.url}/${id}`;
  await page.goto(filePage);
  const text = await page.locator('main').innerText();
  t.match(text, /awaiting payment/);
  t.match(text, /Anyone may pay this address/);
  t.notMatch(text, /Keep this delete token/, 'the token is shown only to the uploader, once');
  const view = await json(filePage);
  t.equal(await page.locator('#bip21').innerText(), view.paymentUri);
  t.equal(await page.locator('a.button[href^="bitcoin:"]').getAttribute('href'), view.paymentUri, 'a bitcoin: link');
  const qrPng = PNG.sync.read(await page.locator('.qr').screenshot({ path: artifactPath('03-qr.png') }));
  const decoded = jsQR(new Uint8ClampedArray(qrPng.data), qrPng.width, qrPng.height);
  t.equal(decoded?.data, view.paymentUri, 'the QR code is the BIP21 URI');
  t.equal(await page.locator('a[download]').count(), 0, 'no download button before payment');
  await shot(page, '04-file-awaiting-payment.png');

  // ---- the unpaid file's URL: a 402 page, never an attachment ----
  const unpaid = await page.goto(view.url);
  t.equal(unpaid!.status(), 402);
  t.notOk(unpaid!.headers()['content-disposition'], 'no Content-Disposition on a 402');
  t.match(unpaid!.headers()['content-type'], /^text\/html/);
  await t.resolveMatch(page.locator('h1').innerText(), /402 Payment Required/);
  await t.resolveMatch(page.locator('main').innerText(), /Send 546 sats to/);
  await shot(page, '05-402.png');
  t.same(downloadsSeen, [], 'nothing was downloaded');

  // ---- pay on the devnet, reload: active, download the same bytes ----
  await page.goto(filePage);
  await payAndMine(filePage);
  await page.reload();
  await t.resolveMatch(page.locator('.state').innerText(), /^active$/);
  await t.resolveMatch(page.locator('main').innerText(), /Paid through\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC \((more than 10 years|\d+ days?) left\)/);
  await shot(page, '06-file-active.png');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('a.button[download]')]);
  t.equal(dl.suggestedFilename(), 'report.pdf');
  t.equal(await sha256File((await dl.path())!), await sha256File(file), 'the downloaded bytes are the uploaded ones');

  // ---- several files: one drop, one page, one address, a zip of all ----
  await page.goto(`${d.url}/`);
  const a = randomFile(work, 100_000, 'a.txt');
  const b = randomFile(work, 150_000, 'b photo.jpg');
  await page.setInputFiles('#file', [a, b]);
  await Promise.all([page.waitForURL(`${d.url}/`, { waitUntil: 'load' }), page.click('button[type=submit]')]);
  await t.resolveMatch(page.locator('h1').innerText(), /^2 files$/);
  await shot(page, '07-drop-uploaded.png');
  const dropId = (await page.locator('main p.lead a').getAttribute('href'))!.slice(1);
  const dropUrl = `${d.url}/${dropId}`;
  const drop = await json(dropUrl);
  t.equal(drop.files.length, 2);
  t.equal(drop.state, 'awaiting payment');
  t.equal(drop.size, 250_000);
  t.equal((await json(drop.files[0].url)).address, drop.address, 'one address for the whole drop');
  await payAndMine(dropUrl);
  await page.goto(dropUrl);
  await t.resolveMatch(page.locator('.state').innerText(), /^active$/);
  await shot(page, '08-drop-active.png');
  const [zip] = await Promise.all([page.waitForEvent('download'), page.click('a.button[download]')]);
  const zipPath = path.join(work, 'all.zip');
  await zip.saveAs(zipPath);
  const listing = (await exec('unzip', ['-Z1', zipPath])).stdout.trim().split('\n');
  t.same(listing, ['a.txt', 'b photo.jpg']);
  await exec('unzip', ['-q', '-d', path.join(work, 'unzipped'), zipPath]);
  t.equal(await sha256File(path.join(work, 'unzipped', 'b photo.jpg')), await sha256File(b), 'the zip holds the same bytes');
  const [one] = await Promise.all([page.waitForEvent('download'), page.click('table a[download] >> nth=0')]);
  t.equal(await sha256File((await one.path())!), await sha256File(a), 'each file downloads alone too');

  // ---- error pages: 404, delete through the form then 410, 413 ----
  const nf = await page.goto(`${d.url}/AAAAAAAAAAAAAAAAAAAAAA`);
  t.equal(nf!.status(), 404);
  await t.resolveMatch(page.locator('h1').innerText(), /404 Not Found/);
  await shot(page, '09-404.png');
  await page.goto(`${d.url}/`);
  await page.setInputFiles('#file', randomFile(work, 1000, 'oops.txt'));
  await Promise.all([page.waitForURL(`${d.url}/`, { waitUntil: 'load' }), page.click('button[type=submit]')]);
  const oops = (await page.locator('main p.lead a').getAttribute('href'))!;
  await Promise.all([page.waitForURL(`${d.url}${oops}`, { waitUntil: 'load' }), page.click('text=Delete now')]);
  await t.resolveMatch(page.locator('h1').innerText(), /^Deleted$/);
  await shot(page, '10-deleted.png');
  const gone = await page.goto(`${d.url}${oops}`);
  t.equal(gone!.status(), 410);
  await t.resolveMatch(page.locator('main').innerText(), /has been deleted/);
  await shot(page, '11-410.png');
  await page.goto(`${d.url}/`);
  await page.setInputFiles('#file', randomFile(work, 4 * MiB, 'big.iso'));
  const [big] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]')]);
  t.equal(big.status(), 413);
  await page.waitForLoadState('load');
  await t.resolveMatch(page.locator('h1').innerText(), /413/);
  await shot(page, '12-413.png');
  await page.goto(`${d.url}/`);
  await page.setInputFiles('#file', randomFile(work, 700_000, 'too-many-unpaid.bin'));
  const [busy] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('button[type=submit]')]);
  t.equal(busy.status(), 503, 'more unpaid bytes than the box takes: 503');
  await page.waitForLoadState('load');
  await t.resolveMatch(page.locator('main').innerText(), /busy or cannot take this now/);
  await shot(page, '12b-503.png');

  // ---- a phone-sized window ----
  const phone = await browser.context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  // A full-page screenshot is as wide as the page: wider than the window means sideways scrolling.
  const fitsPhone = async (name: string) => t.equal(PNG.sync.read(await shot(phone, name)).width, 390, `${name}: no sideways scrolling on a phone`);
  for (const [url, name] of [[`${d.url}/`, '13-phone-home.png'], [filePage, '14-phone-file.png'], [`${dropUrl}`, '15-phone-drop.png']]) {
    await phone.goto(url);
    await fitsPhone(name);
  }
  const unpaidOnPhone = JSON.parse(await curl('-H', 'Accept: application/json', '-T', randomFile(work, 5000, 'unpaid.txt'), `${d.url}/`));
  t.equal((await phone.goto(unpaidOnPhone.url))!.status(), 402);
  await fitsPhone('16-phone-402.png');
  await phone.close();

  // ---- the operator console on its loopback port ----
  const token = fs.readFileSync(path.join(d.dataDir, 'admin-token'), 'utf8').trim();
  const anon = await page.request.get(`${d.consoleUrl}/`);
  t.equal(anon.status(), 401, 'the console needs the admin token');
  t.match(anon.headers()['www-authenticate'], /^Basic /, 'a browser asks for it');
  const op = await launchChromium({ viewport: { width: 1000, height: 800 }, httpCredentials: { username: 'operator', password: token } });
  t.teardown(() => op.close());
  const consolePage = await op.context.newPage();
  const con = await consolePage.goto(`${d.consoleUrl}/`);
  t.equal(con!.status(), 200);
  const ctext = await consolePage.locator('main').innerText();
  t.match(ctext, /Onion and tor/);
  t.match(ctext, /Chain and payments/);
  t.match(ctext, /simulated/);
  t.match(ctext, /Recent events/);
  t.match(ctext, /is paid and active/, 'recent events show the payments');
  await shot(consolePage, '17-console.png');
  t.same(downloadsSeen.length, 3, 'only the three paid downloads happened');
});
