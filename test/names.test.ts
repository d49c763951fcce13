// .bit names over real HTTP: the daemon registers, renews and updates d/example through a Namecoin node (the
// devnet's, in this process), survives kill -9 at the dangerous steps without paying twice, and reports
// whatever stops it in `bitdrop status`; `bitdrop resolve` turns example.bit into its onion.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { openDevnet } from './helpers/devnet';
import { CLI, exec, startDaemon, tmpDir } from './helpers/daemon';
import { offlineAppendFile } from './helpers/tor-lone';
import { nameOps, nameStatus, namesDaemon, rpcProxy, waitFor, writeJson } from './helpers/namecoin';
import { rpcCall } from '../lib/devnet/wallet';
import { fetchStatus, formatStatus } from '../lib/cli/status';
import { nameNewHash, parseNameScript } from '../lib/names/script';

const resolveCli = async (...args: string[]) => (await exec(process.execPath, [CLI, 'resolve', ...args])).stdout.trim();

t.test('a name\'s whole life: registered, resolved, renewed over 200 blocks, updated when the onion changes', async (t) => {
  const devnet = await openDevnet(t);
  const url = devnet.namecoinRpcUrl;
  const dataDir = tmpDir('bitdrop-names-', t);
  let daemon = await namesDaemon(t, url, { dataDir });

  const sent = await waitFor('name_new', async () => (await nameStatus(dataDir)).state === 'new-sent');
  t.ok(sent);
  t.same(nameOps(devnet).map((o) => o.op), ['name_new'], 'one name_new, unconfirmed');
  devnet.mineNames(1);
  await waitFor('waiting', async () => (await nameStatus(dataDir)).state === 'waiting');
  devnet.mineNames(10);
  t.equal((await nameStatus(dataDir)).state, 'waiting', 'no firstupdate before 12 confirmations');
  devnet.mineNames(1);
  await waitFor('firstupdate sent', async () => (await nameStatus(dataDir)).state === 'firstupdate-sent');
  devnet.mineNames(1);
  const registered = await waitFor('registered', async () => {
    const s = await nameStatus(dataDir);
    return s.state === 'registered' && s;
  });
  const onion = registered.onion!;
  t.match(onion, /^[a-z2-7]{56}\.onion$/);
  t.equal(registered.value, JSON.stringify({ map: { _tor: { txt: onion } }, tor: onion }), 'the value names the onion twice');
  t.equal(registered.expiresIn, 30);
  t.equal(registered.lastError, null);

  t.equal(await resolveCli('example.bit', '--namecoin-rpc', url), onion, 'bitdrop resolve prints the onion');
  const json = JSON.parse(await resolveCli('example.bit', '--namecoin-rpc', url, '--json'));
  t.match(json, { domain: 'example.bit', name: 'd/example', onion, expiresIn: 30 });
  const text = formatStatus(await fetchStatus(dataDir)).join('\n');
  t.match(text, /d\/example\s+registered, since block \d+, expires in 30 blocks/, 'the text status shows the name');

  // Renewal: 200 blocks, five at a time, the daemon watching; the name never expires.
  for (let mined = 0; mined < 200; mined += 5) {
    devnet.mineNames(5);
    const show = await rpcCall<{ expires_in: number; expired: boolean }>(url, 'name_show', ['d/example']);
    if (show.expired) {
      t.fail(`d/example expired after ${mined + 5} blocks`);
      break;
    }
    await waitFor('the daemon to see the tip', async () => {
      const s = await nameStatus(dataDir);
      const pending = await rpcCall<unknown[]>(url, 'name_pending', ['d/example']);
      return s.expiresIn === show.expires_in || pending.length > 0;
    });
  }
  t.notOk((await rpcCall<{ expired: boolean }>(url, 'name_show', ['d/example'])).expired, 'alive after 200 blocks mined five at a time');
  const updates = nameOps(devnet).filter((o) => o.op === 'name_update');
  t.ok(updates.length >= 8, `renewed by name_update ${updates.length} times over 200 blocks`);
  t.equal(nameOps(devnet).filter((o) => o.op === 'name_new').length, 1, 'never a second name_new');

  // A new onion (the key moved away) → name_update with the new address.
  await daemon.stop();
  fs.renameSync(path.join(dataDir, 'tor', 'onion_ed25519.key'), path.join(dataDir, 'old-onion.key'));
  fs.rmSync(path.join(dataDir, 'tor', 'hostname'), { force: true });
  daemon = await namesDaemon(t, url, { dataDir });
  const fresh = (await waitFor('the new onion', async () => {
    const s = await nameStatus(dataDir);
    return s.onion !== onion && s.onion;
  })) as string;
  // (a renewal the old daemon sent may still be pending: it confirms first, then the new value follows)
  await waitFor('a name_update carrying the new onion', async () => {
    const pending = await rpcCall<Array<{ value: string }>>(url, 'name_pending', ['d/example']);
    if (pending.some((p) => p.value.includes(fresh))) return true;
    if (pending.length) devnet.mineNames(1);
    return false;
  });
  devnet.mineNames(1);
  await waitFor('the update confirmed', async () => {
    const s = await nameStatus(dataDir);
    return s.state === 'registered' && s.value?.includes(fresh);
  });
  t.equal(await resolveCli('example.bit', '--namecoin-rpc', url), fresh, 'resolves to the new onion');
});

t.test('kill -9 right after the name_new is sent: the restart finishes with the saved rand, one name_new on the chain', async (t) => {
  const devnet = await openDevnet(t);
  const dataDir = tmpDir('bitdrop-names-', t);
  let sawNameNew = false;
  let daemonRef: Promise<{ kill9: () => Promise<void> }> | undefined;
  let killed = false;
  // The daemon's first call after name_new's answer comes after its synced write: kill it right there.
  const proxy = await rpcProxy(t, devnet.namecoinRpcUrl, {
    before: async () => {
      if (sawNameNew && !killed) {
        killed = true;
        await (await daemonRef!).kill9();
        return true;
      }
      return killed;
    },
    after: (method) => {
      // the name_new is built, funded and signed first; sendrawtransaction is the call that pays
      if (method === 'sendrawtransaction') sawNameNew = true;
      return false;
    },
  });
  daemonRef = namesDaemon(t, proxy, { dataDir });
  await daemonRef.catch(() => undefined);
  await waitFor('the kill', () => killed);
  const [newOp] = nameOps(devnet);
  t.equal(newOp.op, 'name_new');

  const restarted = await namesDaemon(t, devnet.namecoinRpcUrl, { dataDir });
  devnet.mineNames(12);
  await waitFor('firstupdate', async () => (await nameStatus(dataDir)).state === 'firstupdate-sent');
  t.notMatch(restarted.output(), /rand was not saved|interrupted name_new/, 'the record had the txid and rand: no recovery needed');
  devnet.mineNames(1);
  await waitFor('registered', async () => (await nameStatus(dataDir)).state === 'registered');
  const ops = nameOps(devnet);
  t.equal(ops.filter((o) => o.op === 'name_new').length, 1, 'exactly one name_new on the chain');
  const fu = ops.find((o) => o.op === 'name_firstupdate')!;
  const newTx = devnet.namecoin.chain.transaction(ops[0].txid)!.tx;
  const hash = newTx.outs.map((o) => parseNameScript(o.script)).find((o) => o?.op === 'name_new') as { hash: Buffer };
  t.ok(nameNewHash(Buffer.from('d/example'), Buffer.from(fu.rand!, 'hex')).equals(hash.hash), 'the firstupdate reveals the rand of that name_new');
  t.equal(ops.filter((o) => o.op === 'name_firstupdate').length, 1);
});

t.test('kill -9 between sendrawtransaction of the name_new and its answer: the restart finds it in the wallet instead of paying twice', async (t) => {
  const devnet = await openDevnet(t);
  const dataDir = tmpDir('bitdrop-names-', t);
  let daemonRef: Promise<{ kill9: () => Promise<void> }> | undefined;
  let killed = false;
  let answer = '';
  const proxy = await rpcProxy(t, devnet.namecoinRpcUrl, {
    before: () => killed,
    after: async (method, body) => {
      if (method === 'sendrawtransaction' && !killed) {
        killed = true;
        answer = body;
        await (await daemonRef!).kill9(); // the node sent it; the daemon never hears
        return true;
      }
      return false;
    },
  });
  daemonRef = namesDaemon(t, proxy, { dataDir });
  await daemonRef.catch(() => undefined);
  await waitFor('the kill', () => killed);
  t.same(nameOps(devnet).map((o) => o.op), ['name_new'], `the node sent the name_new (${answer.trim()})`);

  const restarted = await namesDaemon(t, devnet.namecoinRpcUrl, { dataDir });
  await waitFor('the name_new found', () => /name_new \w+ sent before an interruption/.test(restarted.output()));
  devnet.mineNames(12);
  await waitFor('firstupdate', async () => (await nameStatus(dataDir)).state === 'firstupdate-sent');
  devnet.mineNames(1);
  await waitFor('registered', async () => (await nameStatus(dataDir)).state === 'registered');
  t.same(nameOps(devnet).map((o) => o.op), ['name_new', 'name_firstupdate'], 'one name_new, finished with the rand saved before it was sent');
});

t.test('kill -9 between the firstupdate RPC and its write: no second firstupdate', async (t) => {
  const devnet = await openDevnet(t);
  const dataDir = tmpDir('bitdrop-names-', t);
  let daemonRef: Promise<{ kill9: () => Promise<void> }> | undefined;
  let killed = false;
  const proxy = await rpcProxy(t, devnet.namecoinRpcUrl, {
    before: () => killed,
    after: async (method) => {
      if (method === 'name_firstupdate' && !killed) {
        killed = true;
        await (await daemonRef!).kill9(); // the node sent it; the daemon never hears
        return true;
      }
      return false;
    },
  });
  daemonRef = namesDaemon(t, proxy, { dataDir });
  await daemonRef;
  await waitFor('name_new', () => nameOps(devnet).length === 1);
  devnet.mineNames(12);
  await waitFor('the kill', () => killed);
  t.same(nameOps(devnet).map((o) => o.op), ['name_new', 'name_firstupdate'], 'the node has the firstupdate');

  await namesDaemon(t, devnet.namecoinRpcUrl, { dataDir });
  await waitFor('the interrupted firstupdate adopted', async () => (await nameStatus(dataDir)).state === 'firstupdate-sent');
  devnet.mineNames(1);
  await waitFor('registered', async () => (await nameStatus(dataDir)).state === 'registered');
  t.same(nameOps(devnet).map((o) => o.op), ['name_new', 'name_firstupdate'], 'no second firstupdate, no second name_new');
});

t.test('a name owned by another wallet is reported, not paid for', async (t) => {
  const devnet = await openDevnet(t);
  const url = devnet.namecoinRpcUrl;
  await rpcCall(url, 'createwallet', ['other']);
  await rpcCall(`${url}/wallet/default`, 'sendtoaddress', [await rpcCall<string>(`${url}/wallet/other`, 'getnewaddress'), 5]);
  devnet.mineNames(1);
  const [txid, rand] = await rpcCall<[string, string]>(`${url}/wallet/other`, 'name_new', ['d/example']);
  devnet.mineNames(12);
  await rpcCall(`${url}/wallet/other`, 'name_firstupdate', ['d/example', rand, txid, '{"ip":"192.0.2.1"}']);
  devnet.mineNames(1);

  const daemon = await namesDaemon(t, `${url}/wallet/default`);
  const s = await waitFor('taken', async () => {
    const n = await nameStatus(daemon.dataDir);
    return n.state === 'taken' && n;
  });
  t.match(s.lastError, /registered to another wallet/);
  t.equal(s.expiresIn, 30);
  devnet.mineNames(2);
  await new Promise((r) => setTimeout(r, 500));
  t.same(nameOps(devnet).map((o) => o.op), ['name_new', 'name_firstupdate'], 'the daemon sent nothing');
  const resolved = await exec(process.execPath, [CLI, 'resolve', 'example.bit', '--namecoin-rpc', url]).catch((e) => e);
  t.match(resolved.stderr, /holds no onion address/, 'resolving a name without an onion is a clear error');
});

t.test('node down, wrong credentials, locked wallet: a clear state, retried, nothing lost', async (t) => {
  const devnet = await openDevnet(t);
  const url = devnet.namecoinRpcUrl;

  // Wrong credentials.
  const wrong = await namesDaemon(t, url.replace(/:[^:@/]+@/, ':wrong@'));
  const bad = await waitFor('an auth error', async () => (await nameStatus(wrong.dataDir)).lastError);
  t.match(bad, /refused the credentials/);
  t.equal((await nameStatus(wrong.dataDir)).state, 'unregistered');
  await wrong.stop();

  // Locked wallet, then unlocked.
  await rpcCall(url, 'encryptwallet', ['secret']);
  const d = await namesDaemon(t, url);
  t.match(await waitFor('the lock', async () => (await nameStatus(d.dataDir)).lastError), /locked: unlock it with namecoin-cli walletpassphrase/);
  t.same(nameOps(devnet), [], 'nothing sent while locked');
  await rpcCall(url, 'walletpassphrase', ['secret', 600]);
  await waitFor('name_new after the unlock', async () => (await nameStatus(d.dataDir)).state === 'new-sent');
  t.equal((await nameStatus(d.dataDir)).lastError, null, 'the error clears');

  // The node goes away for a while, then comes back.
  devnet.mineNames(1);
  await devnet.stopNamecoin();
  t.match(await waitFor('unreachable', async () => (await nameStatus(d.dataDir)).lastError), /does not answer/);
  devnet.mineNames(11);
  await devnet.startNamecoin();
  await waitFor('firstupdate once the node is back', async () => (await nameStatus(d.dataDir)).state === 'firstupdate-sent');
  t.same(nameOps(devnet).map((o) => o.op), ['name_new', 'name_firstupdate']);
});

t.test('a value over 520 bytes stops the start with one line, before anything is sent', async (t) => {
  const devnet = await openDevnet(t);
  const dir = tmpDir('bitdrop-names-', t);
  const file = writeJson(dir, 'value.json', { info: 'x'.repeat(500) });
  const res = await exec(process.execPath, [CLI, 'start', '--data-dir', path.join(dir, 'data'), '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--free', '--tor', 'off',
    '--namecoin-rpc', devnet.namecoinRpcUrl, '--name', 'd/example', '--name-value', file]).catch((e) => e);
  t.equal(res.code, 2);
  t.match(res.stderr.trim(), /^bitdrop: --name d\/example: the value would be \d+ bytes; Namecoin allows at most 520/);
  t.equal(res.stderr.trim().split('\n').length, 1, 'one line');
  t.same(nameOps(devnet), []);
});

t.test('on a fresh data dir: bitdrop start --name d/example, bitdrop devnet mine 13, bitdrop resolve example.bit --data-dir', async (t) => {
  const dataDir = tmpDir('bitdrop-names-', t);
  const daemon = await startDaemon({ dataDir, args: ['--tor', 'managed', '--torrc-append', offlineAppendFile(dataDir), '--name', 'd/example'] });
  t.teardown(() => daemon.stop());
  t.match(daemon.output(), /names\s+d\/example via the embedded devnet's Namecoin regtest node .*SIMULATED/, 'says it uses the devnet');
  await waitFor('name_new', async () => (await nameStatus(dataDir)).state === 'new-sent');
  await exec(process.execPath, [CLI, 'devnet', 'mine', '13', '--data-dir', dataDir]);
  const onion = (await fetchStatus(dataDir)).onion as string;
  const resolved = await waitFor('resolution', async () => (await exec(process.execPath, [CLI, 'resolve', 'example.bit', '--data-dir', dataDir])).stdout.trim());
  t.equal(resolved, onion, 'example.bit → the daemon\'s onion');
});
