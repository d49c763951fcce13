// Mirrors with real daemons on one devnet chain: A keeps its files on B and C and pays them from its
// operating wallet. The links A published keep working when A is killed; a mirror that deletes a file is
// caught by an audit and dropped; the spend limit stops the payments and says so; kill -9s of A while it pays
// never pay a copy twice.
import t, { type Test as TapTest } from 'tap';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from '@bitcoinerlab/secp256k1';
import { BIP32Factory } from 'bip32';
import { Devnet } from '../lib/devnet';
import { devnetPay } from '../lib/devnet/wallet';
import { NETWORK } from '../lib/devnet/consensus';
import { PREFIX } from '../lib/store/layout';
import type { SpendRecord } from '../lib/wallet';
import type { MirrorCopy } from '../lib/mirrors';
import { candidateUrls } from '../lib/mirrors';
import { getLink } from '../lib/cli/get';
import { CLI, curl, exec, randomFile, sha256File, startDaemon, tmpDir, type Daemon } from './helpers/daemon';
import { connect, scripthashOf } from './helpers/devnet';
import { eventually, readPrefix } from './helpers/mirrors';

const bip32 = BIP32Factory(ecc);
const AUDIT_MS = 4000;

const until = <T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 90_000) => eventually(fn, what, timeoutMs, 100);

const randomTpub = () => bip32.fromSeed(crypto.randomBytes(32), NETWORK).derivePath("m/84'/1'/0'").neutered().toBase58();
const fileJson = async (url: string) => JSON.parse(await curl('-H', 'Accept: application/json', url)) as Record<string, any>;


/**
 * One devnet chain with a miner (a block every 300 ms), daemons started paid on it and stopped with the test,
 * and A's data dir with its operating wallet funded before A starts.
 */
async function mirrorsRig(t: TapTest, name: string, walletSats: number) {
  const root = tmpDir(`bitdrop-${name}-`, t);
  const devnetDir = path.join(root, 'devnet');
  const devnet = await Devnet.open({ dir: devnetDir });
  t.teardown(() => devnet.close());
  const miner = setInterval(() => devnet.mine(1), 300);
  t.teardown(() => clearInterval(miner));
  const chainArgs = (xpub: string) => ['--network', 'regtest', '--xpub', xpub, '--electrum', devnet.electrumUrl];
  const daemons: Daemon[] = [];
  t.teardown(async () => { for (const d of daemons) await d.stop(); });
  const start = async (opts: Parameters<typeof startDaemon>[0]) => {
    const d = await startDaemon({ paid: true, timeoutMs: 60_000, ...opts });
    daemons.push(d);
    return d;
  };
  const aDir = tmpDir(`bitdrop-${name}-a-`, t);
  const walletAddress = (await exec(process.execPath, [CLI, 'wallet', 'address', '--data-dir', aDir])).stdout.trim();
  await devnetPay(devnetDir, walletAddress, walletSats);
  return { devnet, devnetDir, chainArgs, start, aDir, walletAddress };
}

t.test('A mirrored on B and C, paid from its wallet, on one devnet chain', async (t) => {
  // the operator funds A's wallet before A starts
  const { devnet, devnetDir, chainArgs, start, aDir, walletAddress } = await mirrorsRig(t, 'mirrors', 200_000);
  const B = await start({ args: chainArgs(randomTpub()) });
  const C = await start({ args: chainArgs(randomTpub()) });
  const conn = await connect(t, devnet.electrumUrl);
  const paymentsTo = async (address: string) => (await conn.request<unknown[]>('blockchain.scripthash.get_history', [scripthashOf(address)])).length;

  t.match(walletAddress, /^bcrt1q/, 'bitdrop wallet address prints an address to fund');
  t.equal(fs.statSync(path.join(aDir, 'wallet-key')).mode & 0o777, 0o600, 'the key is made in the data dir, 0600');
  const aArgs = (limit: number) => [...chainArgs(devnet.xpub), '--mirror', B.url, '--mirror', C.url, '--spend-limit', String(limit),
    '--mirror-sync', '1s', '--mirror-audit', `${AUDIT_MS}ms`];
  let A = await start({ dataDir: aDir, args: aArgs(100_000) });
  t.match(A.output(), new RegExp(`wallet\\s+${walletAddress}`), 'A names its wallet at start');

  const dir = tmpDir('bitdrop-mirrors-files-', t);
  const file = randomFile(dir, 300_000, 'one.bin');
  const upload = async (d: Daemon, f: string) => JSON.parse(await curl('-T', f, '-H', 'Accept: application/json', `${d.url}/`));
  const up = await upload(A, file);
  await devnetPay(devnetDir, up.address, up.amountDue);

  const withMirrors = await until(async () => {
    const j = await fileJson(up.url);
    return j.mirrors?.length === 2 ? j : undefined;
  }, 'the file listed on two mirrors').catch((err) => { t.comment(A.output()); throw err; });
  const links = withMirrors.mirrors as Array<{ url: string; mirror: string }>;
  t.same(links.map((l) => l.mirror).sort(), [B.url, C.url].sort(), 'the JSON field mirrors lists B and C');
  t.same(links.map((l) => new URL(l.url).pathname), [`/${up.id}/one.bin`, `/${up.id}/one.bin`], 'each copy keeps the file\'s id: A\'s links work with the host changed');
  // a copy keeps the id only when the original publishes those bytes under it, and only when the id is free
  const claim = async (f: string, original: string) => JSON.parse(await curl('-T', f, '-H', 'Accept: application/json', '-H', `X-Bitdrop-Copy-Of: ${original}`, `${B.url}/`));
  const other = await claim(randomFile(dir, 1000, 'other.bin'), `${A.url}/${up.id}`);
  t.not(other.id, up.id, 'other bytes sent as a copy of A\'s file get an id of their own');
  t.notOk((await fileJson(other.url)).copyOf, '… and are no copy');
  const again = await claim(file, `${A.url}/${up.id}`);
  t.not(again.id, up.id, 'the same bytes again: the id is taken, so a fresh one');
  t.equal((await fileJson(`${B.url}/${up.id}`)).copyOf, `${A.url}/${up.id}`, 'the copy says whose file it is (copyOf)');
  const unreachable = await claim(randomFile(dir, 1000, 'lost.bin'), `http://127.0.0.1:1/${'x'.repeat(22)}`);
  t.not(unreachable.id, 'x'.repeat(22), 'an original that does not answer gives no id');
  t.ok(links.every((l) => typeof l.url === 'string' && l.url.startsWith(l.mirror + '/')), 'each with the file\'s url there');
  const head = await curl('-sI', up.url);
  t.match(head, new RegExp(`x-mirrors: .*${links[0].url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'i'), 'X-Mirrors names them');
  t.same(candidateUrls(up.url, withMirrors).slice(-2).sort(), links.map((l) => l.url).sort(), 'candidateUrls: the original, then the mirrors');
  for (const l of links) {
    const copy = await fileJson(l.url);
    t.equal(copy.sha256, withMirrors.sha256, `${l.mirror} keeps the same bytes`);
    t.equal(copy.state, 'active', `${l.mirror} was paid: the copy is active`);
    t.equal(await paymentsTo(copy.address), 1, `${l.mirror} was paid once`);
  }

  await t.test('A killed: the published links download from the mirrors', async (t) => {
    // bitdrop get of A's link, interrupted: it keeps the mirrors A published beside its partial file
    const getDir = tmpDir('bitdrop-mirrors-get-', t);
    const stop = new AbortController();
    const lines: string[] = [];
    const first = getLink(up.url, { output: path.join(getDir, 'got.bin'), limitRate: 1, retries: 1, signal: stop.signal, log: (l) => lines.push(l) });
    await until(async () => fs.readdirSync(getDir).some((f) => f.endsWith('.bitdrop-mirrors.json')) || undefined, 'bitdrop get keeping the mirrors A published');
    stop.abort();
    // (at 1 byte/s it cannot have finished: it waits out its first bytes until the abort)
    await first.then(() => t.fail(`the first get should have been interrupted: ${lines.join(' | ')}`), () => undefined);
    await A.kill9();
    const again = await getLink(up.url, { output: path.join(getDir, 'got.bin'), retries: 1, log: (l) => lines.push(l) });
    t.equal(await sha256File(again.files[0]), await sha256File(file), 'bitdrop get, run again with A dead, fetched the file from a mirror');
    t.match(lines.join('\n'), /does not answer; downloading its copy from the mirror/, 'and said so');
    t.notOk(fs.readdirSync(getDir).some((f) => f.startsWith('.')), 'and left no partial or mirrors file');
    const began = Date.now();
    const out = path.join(dir, 'from-b.bin');
    const bLink = links.find((l) => l.mirror === B.url)!.url;
    await curl('-fsS', '-o', out, bLink);
    t.equal(await sha256File(out), await sha256File(file), 'the bytes from B are the file');
    t.ok(Date.now() - began < 30_000, `downloadable from B ${Date.now() - began} ms after A died`);
  });

  let spent = 0;
  await t.test('C deletes the file: the audit catches it within its interval and C is dropped', async (t) => {
    const copies = await readPrefix<MirrorCopy>(aDir, PREFIX.mirrorCopy);
    const atC = copies.find((c) => c.mirror === C.url)!;
    t.ok(atC, 'A recorded its copy at C');
    const gone = await curl('-X', 'DELETE', '-H', `X-Delete-Token: ${atC.deleteToken}`, atC.url.replace(/\/[^/]*$/, ''));
    t.match(gone, /deleted/);
    const records = await readPrefix<SpendRecord>(aDir, PREFIX.walletSpend);
    t.equal(records.length, 2, 'two spends: one per mirror');
    t.ok(records.every((r) => r.kind === 'wallet-spend' && (r.about as { kind: string }).kind === 'mirror'), 'recorded for the books');
    spent = records.reduce((n, r) => n + r.sats + r.fee, 0);
    // A comes back with a limit that the next payment would pass
    A = await start({ dataDir: aDir, args: aArgs(spent + 100) });
    const began = Date.now();
    await until(() => /DROPPED \S+ .*lost/.test(A.output()) || undefined, 'C dropped', 60_000);
    const took = Date.now() - began;
    t.match(A.output(), new RegExp(`DROPPED ${C.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: audit: lost`), 'the log names C and why');
    t.ok(took < 3 * AUDIT_MS + 5000, `caught ${took} ms after A restarted (audit interval ${AUDIT_MS} ms)`);
    const j = await fileJson(`${A.url}/${up.id}`);
    t.same(j.mirrors.map((m: { mirror: string }) => m.mirror), [B.url], 'only B is listed now');
    const token = fs.readFileSync(path.join(aDir, 'admin-token'), 'utf8').trim();
    const status = JSON.parse(await curl('-H', `X-Admin-Token: ${token}`, '-H', 'Accept: application/json', `${A.consoleUrl}/status`));
    const c = status.mirrors.mirrors.find((m: { url: string }) => m.url === C.url);
    t.equal(c.state, 'dropped', 'the console shows C dropped');
    t.match(c.why, /lost/);
    t.ok(status.mirrors.auditBytesPerGiBPerDay > 0, `audit cost stated: ${status.mirrors.auditBytesPerGiBPerDay} bytes per GiB per day`);
    t.match(JSON.stringify(status.events), /DROPPED/, 'and names it among the console\'s events');
  });

  await t.test('the spend limit reached stops paying and says so', async (t) => {
    const second = await upload(A, randomFile(dir, 50_000, 'two.bin'));
    await devnetPay(devnetDir, second.address, second.amountDue);
    await until(() => /spend limit reached/.test(A.output()) || undefined, 'the spend limit line');
    t.match(A.output(), /mirrors\s+not paying .* spend limit reached: \d+ of \d+ sats a day spent/, 'the log says why the mirror is not paid');
    const balance = JSON.parse((await exec(process.execPath, [CLI, 'wallet', 'balance', '--json', '--data-dir', aDir])).stdout);
    t.equal(balance.spentToday, spent, 'nothing more was spent');
    t.equal(balance.spendLimit, spent + 100);
    const j = await fileJson(`${A.url}/${second.id}`);
    t.same(j.mirrors, [], 'an unpaid copy is not listed');
    const history = (await exec(process.execPath, [CLI, 'wallet', 'history', '--data-dir', aDir])).stdout;
    t.match(history, /received/, 'bitdrop wallet history shows the funding');
    t.match(history, /mirror\|/, '… and the spends');
  });
});

t.test('kill -9 of A while it pays its mirror never pays a copy twice', async (t) => {
  const { devnet, devnetDir, chainArgs, start, aDir, walletAddress } = await mirrorsRig(t, 'mirrors-kill', 300_000);
  const B = await start({ args: chainArgs(randomTpub()) });
  const args = [...chainArgs(devnet.xpub), '--mirror', B.url, '--spend-limit', '1000000', '--mirror-sync', '200ms', '--mirror-audit', '60s'];
  const FILES = Number(process.env.MIRROR_KILL_FILES ?? 4);
  const KILLS = Number(process.env.MIRROR_KILLS ?? 6);

  // the files, uploaded and paid at A first (A runs without mirrors meanwhile)
  let A = await start({ dataDir: aDir, args: chainArgs(devnet.xpub) });
  const dir = tmpDir('bitdrop-mirrors-kf-', t);
  const ups: Array<Record<string, any>> = [];
  for (let i = 0; i < FILES; i++) {
    const up = JSON.parse(await curl('-T', randomFile(dir, 20_000 + i, `f${i}.bin`), '-H', 'Accept: application/json', `${A.url}/`));
    await devnetPay(devnetDir, up.address, up.amountDue);
    ups.push(up);
  }
  await until(async () => (await Promise.all(ups.map((u) => fileJson(u.url)))).every((j) => j.state === 'active') || undefined, 'files active at A');
  await A.stop();

  // each start of A is killed: half of them right after a spend is recorded (before its broadcast: the
  // daemon waits 300 ms there), the others at a random moment
  let kills = 0;
  for (let i = 0; i < KILLS; i++) {
    A = await start({ dataDir: aDir, args, env: { BITDROP_TEST_SPEND_PAUSE_MS: '300' } });
    const before = (A.output().match(/wallet\s+paying/g) ?? []).length;
    if (i % 2 === 0) {
      const recorded = await until(() => (A.output().match(/wallet\s+paying/g) ?? []).length > before || undefined, 'a spend recorded', 20_000).catch(() => false);
      if (!recorded) { await A.stop(); break; } // everything paid already
    } else {
      await new Promise((r) => setTimeout(r, crypto.randomInt(50, 1500)));
    }
    await A.kill9();
    kills++;
  }
  t.ok(kills >= 2, `A was killed ${kills} times while mirroring`);

  A = await start({ dataDir: aDir, args });
  const now = (u: Record<string, any>) => fileJson(`${A.url}/${u.id}`);
  await until(async () => (await Promise.all(ups.map(now))).every((j) => j.mirrors?.length === 1) || undefined, 'every file mirrored on B', 120_000)
    .catch((err) => { t.comment(A.output()); throw err; });

  // every transaction of the wallet: where its outputs went
  const conn = await connect(t, devnet.electrumUrl);
  const history = await conn.request<Array<{ tx_hash: string }>>('blockchain.scripthash.get_history', [scripthashOf(walletAddress)]);
  const paid = new Map<string, number>();
  for (const h of history) {
    const tx = bitcoin.Transaction.fromHex(await conn.request<string>('blockchain.transaction.get', [h.tx_hash]));
    if (tx.ins.length === 0 || tx.outs.some((o) => bitcoin.address.fromOutputScript(o.script, NETWORK) === walletAddress) && tx.outs.length === 1) continue;
    const spendsOurs = await Promise.all(tx.ins.map(async (i) => {
      const prev = bitcoin.Transaction.fromHex(await conn.request<string>('blockchain.transaction.get', [Buffer.from(i.hash).reverse().toString('hex')]));
      return bitcoin.address.fromOutputScript(prev.outs[i.index].script, NETWORK) === walletAddress;
    }));
    if (!spendsOurs.every(Boolean)) continue; // the funding
    for (const o of tx.outs) {
      const a = bitcoin.address.fromOutputScript(o.script, NETWORK);
      if (a !== walletAddress) paid.set(a, (paid.get(a) ?? 0) + 1);
    }
  }
  const copies = await Promise.all(ups.map(async (u) => fileJson((await now(u)).mirrors[0].url)));
  for (const c of copies) t.equal(paid.get(c.address), 1, `the copy ${c.id} was paid exactly once`);
  const doubles = [...paid.values()].filter((n) => n > 1).length;
  await A.stop();
  const purposes = (await readPrefix<SpendRecord>(aDir, PREFIX.walletSpend)).length;
  t.equal(doubles, 0, `no address was paid twice: ${paid.size} payments on the chain for ${ups.length} copies (${purposes} spend purposes recorded) after ${kills} kill -9s`);
});
