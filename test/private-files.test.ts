// `bitdrop upload --encrypt` and `bitdrop get` on loopback, against the real daemon and Debian's age:
// interop both ways, the key never reaching the server, resume after kill -9 of either side, a SHA-256
// mismatch from a lying proxy, and a 402 waited out.

import { spawn, spawnSync, type ChildProcess } from 'child_process';
import fs from 'fs';
import path from 'path';
import t from 'tap';
import { CLI, curl, exec, randomFile, sha256File, startDaemon, tmpDir } from './helpers/daemon';
import { freePorts } from './helpers/tor-network';
import { lyingProxy, recordingRelay } from './helpers/proxies';
import { findExecutable } from '../lib/tor/process';

if (!findExecutable('age') || !findExecutable('age-keygen')) throw new Error("Debian's age is not installed: apt-get install age");

interface Run { code: number | null; stdout: string; stderr: string }

function bitdrop(args: string[], opts: { cwd?: string } = {}): { proc: ChildProcess; done: Promise<Run> } {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => { stdout += d; });
  proc.stderr!.on('data', (d) => { stderr += d; });
  const done = new Promise<Run>((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { proc, done };
}
const run = (args: string[], opts: { cwd?: string } = {}) => bitdrop(args, opts).done;

/** Bytes the partial download's state file says are in, 0 before it exists. */
function partDone(dir: string): number {
  const f = fs.readdirSync(dir).find((n) => n.endsWith('.bitdrop-part.json'));
  if (!f) return 0;
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')).done as [number, number][]).reduce((n, [s, e]) => n + e - s, 0);
  } catch {
    return 0; // being replaced this instant
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('age interop both ways with Debian age; the key never reaches the server', async (t) => {
  const d = await startDaemon({ args: ['--log-level', 'debug'] });
  t.teardown(() => d.stop());
  const relay = await recordingRelay(new URL(d.url));
  t.teardown(() => relay.close());
  const work = tmpDir('bitdrop-private-', t);
  const file = randomFile(work, 1024 * 1024 + 17, 'Relevé de compte été.pdf');

  // ours → age -d: the link's fragment is the identity; the plaintext is a tar with the name inside
  const up = await run(['upload', '--encrypt', file, '--url', relay.url], { cwd: work });
  t.equal(up.code, 0, up.stderr);
  const link = up.stdout.split('\n')[0];
  const m = /^(http:\/\/[^#]+)#(AGE-SECRET-KEY-1[0-9A-Z]+)$/.exec(link);
  t.ok(m, `a page link with the identity as fragment: ${link}`);
  const [, page, key] = m!;
  const json = JSON.parse(await curl('-f', '-H', 'Accept: application/json', page.replace(relay.url, d.url)));
  t.equal(json.name, 'file.age', 'the server never learns the name');
  t.ok(json.size > 1024 * 1024 + 17 + 2048 && json.size < 1.15 * 1024 * 1024, `padded size ${json.size}`);
  fs.writeFileSync(path.join(work, 'key.txt'), `${key}\n`);
  const extract = path.join(work, 'extract');
  fs.mkdirSync(extract);
  await curl('-f', '-o', path.join(work, 'file.age'), json.url);
  const tarOut = spawnSync('sh', ['-c', `age -d -i ${path.join(work, 'key.txt')} ${path.join(work, 'file.age')} | tar x`], { cwd: extract });
  t.equal(tarOut.status, 0, tarOut.stderr.toString());
  t.equal(tarOut.stderr.toString(), '', 'tar reads the envelope and its padding without a word');
  t.same(fs.readdirSync(extract), ['Relevé de compte été.pdf'], 'age -d | tar x gives the file by its name');
  t.equal(await sha256File(path.join(extract, 'Relevé de compte été.pdf')), await sha256File(file));

  // ours → bitdrop get, through the recording relay
  const out = path.join(work, 'got');
  fs.mkdirSync(out);
  const got = await run(['get', link.replace(relay.url, relay.url)], { cwd: out });
  t.equal(got.code, 0, got.stderr);
  t.equal(await sha256File(path.join(out, 'Relevé de compte été.pdf')), await sha256File(file), 'bitdrop get decrypts to the named file');

  // age -r + curl → bitdrop get URL#identity
  const keygen = spawnSync('age-keygen', ['-o', path.join(work, 'theirs.txt')]);
  t.equal(keygen.status, 0);
  const theirs = fs.readFileSync(path.join(work, 'theirs.txt'), 'utf8');
  const recipient = /age1[0-9a-z]+/.exec(theirs)![0];
  const identity = /AGE-SECRET-KEY-1[0-9A-Z]+/.exec(theirs)![0];
  const enc = spawnSync('age', ['-r', recipient, '-o', path.join(work, 'theirs.age'), file]);
  t.equal(enc.status, 0);
  const theirUrl = (await curl('-f', '-T', path.join(work, 'theirs.age'), `${relay.url}/`)).split('\n')[0];
  const got2 = await run(['get', `${theirUrl}#${identity}`, '-o', path.join(work, 'theirs.out')]);
  t.equal(got2.code, 0, got2.stderr);
  t.equal(await sha256File(path.join(work, 'theirs.out')), await sha256File(file), 'a file from age -r opens with bitdrop get');
  const wrong = await run(['get', `${theirUrl}#${key}`, '-o', path.join(work, 'wrong.out')]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /^bitdrop: the key in the link does not open this file/m);
  t.notOk(fs.existsSync(path.join(work, 'wrong.out')));

  // a drop with one identity: each file opens with it
  const second = randomFile(work, 200_000, 'notes.txt');
  const drop = await run(['upload', '--encrypt', file, second, '--url', relay.url]);
  t.equal(drop.code, 0, drop.stderr);
  const dropLink = drop.stdout.split('\n')[0];
  const dropKey = dropLink.split('#')[1];
  const dropJson = JSON.parse(await curl('-f', '-H', 'Accept: application/json', dropLink.split('#')[0].replace(relay.url, d.url)));
  t.same(dropJson.files.map((f: { name: string }) => f.name), ['file-1.age', 'file-2.age']);
  fs.writeFileSync(path.join(work, 'dropkey.txt'), `${dropKey}\n`);
  await curl('-f', '-o', path.join(work, 'd2.age'), dropJson.files[1].url);
  const x2 = path.join(work, 'x2');
  fs.mkdirSync(x2);
  t.equal(spawnSync('sh', ['-c', `age -d -i ${path.join(work, 'dropkey.txt')} ${path.join(work, 'd2.age')} | tar x`], { cwd: x2 }).status, 0);
  t.same(fs.readdirSync(x2), ['notes.txt']);
  const dropOut = path.join(work, 'dropout');
  const gotDrop = await run(['get', dropLink, '-o', dropOut]);
  t.equal(gotDrop.code, 0, gotDrop.stderr);
  t.same(fs.readdirSync(dropOut).sort(), ['Relevé de compte été.pdf', 'notes.txt']);
  t.equal(await sha256File(path.join(dropOut, 'notes.txt')), await sha256File(second));
  const one = await run(['get', dropLink, '-o', path.join(work, 'one'), '--name', 'notes.txt']);
  t.equal(one.code, 0, one.stderr);
  t.same(fs.readdirSync(path.join(work, 'one')), ['notes.txt'], '--name picks one file of an encrypted drop by its inner name');

  // the page says what it is and never previews
  const html = await curl('-f', '-H', 'Accept: text/html', page.replace(relay.url, d.url));
  t.match(html, /encrypted with <a href="https:\/\/age-encryption.org">age<\/a>/);
  t.match(html, /bitdrop get &#39;http:\/\/[^#]+#AGE-SECRET-KEY-1…&#39;|bitdrop get 'http:\/\/[^#]+#AGE-SECRET-KEY-1…'/);
  t.match(html, /age -d -i key\.txt file\.age \| tar x/);
  t.notMatch(html, /<(img|video|audio|iframe|object|embed)\b/);

  // nothing that crossed the wire, and nothing the daemon logged, carries a key or a fragment
  const wire = relay.sent().toString('latin1');
  t.ok(wire.length > 3 * 1024 * 1024, 'the relay saw the uploads and requests');
  for (const k of [key, identity, dropKey]) {
    t.notOk(wire.includes(k), 'no request carries the identity');
    t.notOk(wire.includes(k.slice(16)), 'nor its bech32 body');
    t.notOk(d.output().includes(k.slice(16)), 'nor any log line');
  }
  const heads = wire.split('\r\n').filter((l) => /^(GET|PUT|POST|HEAD) /.test(l));
  t.ok(heads.length >= 6, `request lines seen: ${heads.length}`);
  t.notOk(heads.some((l) => l.includes('#')), 'no request line has a fragment');
});

t.test('bitdrop get resumes after kill -9 of itself and of the daemon; refuses a SHA-256 mismatch', async (t) => {
  const [port] = await freePorts(1);
  const dataDir = tmpDir('bitdrop-resume-', t);
  const listen = ['--listen', `127.0.0.1:${port}`];
  let d = await startDaemon({ dataDir, args: listen });
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-resume-work-', t);
  const size = 24 * 1024 * 1024 + 12345;
  const file = randomFile(work, size, 'big.bin');
  const url = (await curl('-f', '-T', file, `${d.url}/`)).split('\n')[0];
  const want = await sha256File(file);

  // kill -9 of bitdrop get, twice, at different points; each run continues
  const out = path.join(work, 'a');
  fs.mkdirSync(out);
  for (const fraction of [0.2, 0.55]) {
    const g = bitdrop(['get', url, '-j', '4', '--limit-rate', String(8 * 1024 * 1024)], { cwd: out });
    await until(`${fraction} of the file`, () => partDone(out) > fraction * size || g.proc.exitCode !== null);
    g.proc.kill('SIGKILL');
    await g.done;
    t.notOk(fs.existsSync(path.join(out, 'big.bin')), `killed at ${partDone(out)} bytes: not done yet`);
  }
  const relay = await recordingRelay(new URL(d.url));
  t.teardown(() => relay.close());
  const before = partDone(out);
  const fin = await run(['get', url.replace(d.url, relay.url)], { cwd: out });
  t.equal(fin.code, 0, fin.stderr);
  t.match(fin.stderr, /resuming: [\d.]+ MiB of 24\.0 MiB already here/);
  t.ok(relay.received() < size - before + 4 * 1024 * 1024, `the last run fetched only the rest (${relay.received()} bytes, ${before} were here)`);
  t.equal(await sha256File(path.join(out, 'big.bin')), want, 'byte-identical after two kill -9');
  t.same(fs.readdirSync(out), ['big.bin'], 'no partial files left');

  // kill -9 of the daemon mid-download: bitdrop get retries and continues once it is back
  const out2 = path.join(work, 'b');
  fs.mkdirSync(out2);
  const g = bitdrop(['get', url, '-j', '2', '--limit-rate', String(6 * 1024 * 1024), '--retries', '60'], { cwd: out2 });
  await until('a third of the file', () => partDone(out2) > size / 3);
  await d.kill9();
  await new Promise((r) => setTimeout(r, 500));
  d = await startDaemon({ dataDir, args: listen });
  const r = await g.done;
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /retrying in/, 'it saw the daemon go');
  t.equal(await sha256File(path.join(out2, 'big.bin')), want, 'byte-identical after the daemon was killed');

  // a proxy that flips one byte: refused loudly, nothing saved under the name
  const liar = await lyingProxy(new URL(d.url));
  t.teardown(() => liar.close());
  const out3 = path.join(work, 'c');
  fs.mkdirSync(out3);
  const lied = await run(['get', url.replace(d.url, liar.url), '-j', '1'], { cwd: out3 });
  t.ok(liar.lies() >= 1, 'the proxy lied');
  t.equal(lied.code, 1);
  t.match(lied.stderr, /^bitdrop: SHA-256 MISMATCH for .* the server publishes [0-9a-f]{64} but the bytes received hash to [0-9a-f]{64}/m);
  t.same(fs.readdirSync(out3), [], 'the bad bytes were thrown away');
});

t.test('bitdrop get on a 402 prints amount, address and the bitcoin: line, and --wait waits for the payment', async (t) => {
  const d = await startDaemon({ paid: true });
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-pay-', t);
  const file = randomFile(work, 100_000, 'p.bin');
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', file, `${d.url}/`));
  const stop = await run(['get', up.url, '-o', path.join(work, 'out')]);
  t.equal(stop.code, 1);
  t.match(stop.stderr, new RegExp(`awaiting payment: send ${up.amountDue} sats to ${up.address}`));
  t.match(stop.stderr, /\n  bitcoin:\S+amount=/);
  t.match(stop.stderr, /run again with --wait/);
  const waiting = bitdrop(['get', up.url, '-o', path.join(work, 'out'), '--wait', '--poll', '0.5']);
  await exec(process.execPath, [CLI, 'devnet', 'pay', up.url, String(up.amountDue), '--data-dir', d.dataDir]);
  await exec(process.execPath, [CLI, 'devnet', 'mine', '1', '--data-dir', d.dataDir]);
  const r = await waiting.done;
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /payment needed .*\n.*\nwaiting for it/);
  t.equal(await sha256File(path.join(work, 'out')), await sha256File(file));
});
