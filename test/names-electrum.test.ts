// .bit resolution without a node: a name registered on the devnet's Namecoin chain (merge-mined AuxPoW blocks,
// real name transactions) is resolved through its Electrum server — name index, get_value_proof, a header chain
// checked with AuxPoW — and every forged answer is refused: a forged merkle proof, a header chain with bad proof
// of work, an expired name, two servers that disagree.
import t from 'tap';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { openDevnet } from './helpers/devnet';
import { CLI, exec } from './helpers/daemon';
import { startLyingElectrum } from './helpers/lying-electrum';
import { startTestSocks } from './helpers/payments-electrum';
import { rpcCall } from '../lib/devnet/wallet';
import { ElectrumConnection } from '../lib/payments/electrum';
import { lookupName, nameIndexScript, nameIndexScriptHash, NameLookupError, type ElectrumNameOptions } from '../lib/names/electrum';

const sha256d = (b: Buffer) => crypto.createHash('sha256').update(crypto.createHash('sha256').update(b).digest()).digest();
const VALUE = JSON.stringify({ map: { _tor: { txt: 'a'.repeat(56) + '.onion' } }, tor: 'a'.repeat(56) + '.onion' });

async function refused(t: Tap.Test, p: Promise<unknown>, kind: string, pattern: RegExp) {
  const err = await p.then(
    () => undefined,
    (e) => e,
  );
  t.ok(err instanceof NameLookupError, `refused (${err?.message})`);
  t.equal(err?.kind, kind);
  t.match(err?.message, pattern);
}

t.test('the name index script is ElectrumX\'s', async (t) => {
  t.equal(nameIndexScript(Buffer.from('d/example')).toString('hex'), '5309642f6578616d706c65006d756a', 'OP_NAME_UPDATE <name> <> OP_2DROP OP_DROP OP_RETURN');
  t.match(nameIndexScriptHash(Buffer.from('d/example')), /^[0-9a-f]{64}$/);
});

t.test('resolving d/example through the devnet\'s Namecoin Electrum server', async (t) => {
  const devnet = await openDevnet(t);
  const call = <T>(method: string, params: unknown[] = []) => rpcCall<T>(devnet.namecoinRpcUrl, method, params);
  const [newTxid, rand] = await call<[string, string]>('name_new', ['d/example']);
  devnet.mineNames(12);
  const fu = await call<string>('name_firstupdate', ['d/example', rand, newTxid, VALUE]);
  devnet.mineNames(1);
  const registeredAt = devnet.namecoin.chain.height;
  const url = devnet.namecoinElectrumUrl;
  const chainDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-names-chain-'));
  t.teardown(() => fs.rmSync(chainDir, { recursive: true, force: true }));
  const opts = (servers: string[], extra: Partial<ElectrumNameOptions> = {}): ElectrumNameOptions => ({ servers, network: 'namecoin-regtest', chainDir, timeoutMs: 5000, ...extra });

  await t.test('the server sends merge-mined headers as Namecoin Core regtest makes them', async (t) => {
    const conn = await ElectrumConnection.connect(url);
    t.teardown(() => conn.close());
    await conn.request('server.version', ['test', '1.4']);
    const hex = (await conn.request('blockchain.block.header', [registeredAt])) as string;
    t.equal(hex.length / 2, 294, '294-byte header: 80 + AuxPoW');
    t.equal(Buffer.from(hex, 'hex').readUInt32LE(0), 0x00010104, 'version: chain id 1, auxpow bit, base 4');
  });

  await t.test('a real resolution, twice: the second reads the checked headers from disk', async (t) => {
    const r = await lookupName('d/example', opts([url]));
    t.equal(r.value, VALUE);
    t.equal(r.txid, fu);
    t.equal(r.height, registeredAt);
    t.equal(r.expiresIn, registeredAt + 30 - devnet.namecoin.chain.height);
    t.equal(fs.statSync(path.join(chainDir, 'headers')).size, devnet.namecoin.chain.height * 80, 'headers kept, 80 bytes each');
    const proxy = await startLyingElectrum(url);
    t.teardown(() => proxy.close());
    const again = await lookupName('d/example', opts([proxy.url, url]));
    t.equal(again.txid, fu, 'two servers agree');
    t.equal(proxy.counts['blockchain.block.headers'] ?? 0, 0, 'no headers downloaded again');
    await refused(t, lookupName('d/nobody', opts([url])), 'unknown', /d\/nobody is not registered/);
  });

  await t.test('bitdrop resolve example.bit --electrum-nmc: the onion, or one line and exit status 1', async (t) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-names-cli-'));
    t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const cli = (...args: string[]) => exec(process.execPath, [CLI, 'resolve', ...args, '--nmc-network', 'namecoin-regtest', '--data-dir', dataDir]);
    const onion = 'a'.repeat(56) + '.onion';
    t.equal((await cli('example.bit', '--electrum-nmc', url)).stdout, onion + '\n');
    const json = JSON.parse((await cli('example.bit', '--electrum-nmc', url, '--electrum-nmc', url, '--json')).stdout);
    t.match(json, { domain: 'example.bit', name: 'd/example', onion, txid: fu, height: registeredAt });
    t.ok(fs.existsSync(path.join(dataDir, 'chain', 'namecoin-regtest', 'headers')), 'checked headers kept in the data dir');
    const unknown = await cli('nobody.bit', '--electrum-nmc', url).then(() => undefined, (e) => e);
    t.equal(unknown?.code, 1);
    t.match(unknown?.stderr, /^bitdrop: nobody\.bit \(d\/nobody\) is not registered \(.*\)\n$/);
  });

  await t.test("a remote server is reached through tor's SOCKS port, the host name unresolved; never in the clear", async (t) => {
    const socks = await startTestSocks({ host: '127.0.0.1', port: Number(new URL(url).port) });
    t.teardown(() => socks.close());
    const r = await lookupName('d/example', opts(['tcp://nmcelectrum.example.onion:50001'], { socks: { host: '127.0.0.1', port: socks.port } }));
    t.equal(r.txid, fu);
    t.same(socks.asked, ['nmcelectrum.example.onion:50001'], 'the proxy was asked for the name itself');
    await refused(t, lookupName('d/example', opts(['tcp://nmcelectrum.example.org:50001'])), 'unreachable', /Tor is off; refusing a clearnet connection/);
  });

  await t.test('a forged merkle proof is refused', async (t) => {
    const liar = await startLyingElectrum(url, (m, _p, a) => {
      if (m !== 'blockchain.name.get_value_proof' || !a.result) return a;
      const [[sh, updates]] = Object.entries(a.result as Record<string, Array<{ tx_merkle: { merkle: string[] } }>>);
      const forged = updates.map((u) => ({ ...u, tx_merkle: { ...u.tx_merkle, merkle: [crypto.randomBytes(32).toString('hex'), ...u.tx_merkle.merkle.slice(1)] } }));
      return { result: { [sh]: forged } };
    });
    t.teardown(() => liar.close());
    await refused(t, lookupName('d/example', opts([liar.url])), 'proof-invalid', /proof invalid from .*does not lead to the merkle root of block/);
  });

  await t.test('a header chain with bad proof of work is refused (a merge-mined parent that misses the target)', async (t) => {
    const liar = await startLyingElectrum(url, (m, _p, a) => {
      if (m !== 'blockchain.block.headers' || !a.result) return a;
      // protocol 1.6 answers a list of headers, earlier versions one hex string: spoil the last header either way
      const r = a.result as { hex?: string; headers?: string[] };
      const list = r.headers ?? [r.hex!];
      const raw = Buffer.from(list[list.length - 1], 'hex');
      const parent = raw.subarray(raw.length - 80); // an AuxPoW ends with its parent block header
      for (let n = 0; ; n++) {
        parent.writeUInt32LE(n, 76);
        if (sha256d(parent)[31] >= 0x80) break;
      }
      list[list.length - 1] = raw.toString('hex');
      return { result: r.headers ? { ...r, headers: list } : { ...r, hex: list[0] } };
    });
    t.teardown(() => liar.close());
    // a fresh client (no checked headers yet) must take the whole chain from the liar
    await refused(t, lookupName('d/example', opts([liar.url], { chainDir: undefined })), 'proof-invalid', /AuxPoW parent block has insufficient proof of work/);
  });

  await t.test('two servers that disagree are refused', async (t) => {
    const hides = await startLyingElectrum(url, (m, _p, a) => {
      if (m !== 'blockchain.name.get_value_proof' || !a.result) return a;
      const [sh] = Object.keys(a.result as object);
      return { result: { [sh]: [] } }; // "never registered"
    });
    t.teardown(() => hides.close());
    await refused(t, lookupName('d/example', opts([url, hides.url])), 'disagree', /servers disagree: .* says update .* says unknown/);
  });

  await t.test('a checkpoint root anchors the chain (Electrum-NMC ships one for mainnet); a proof against another root is refused', async (t) => {
    // the merkle root over the hashes of blocks 0..100, computed here from the devnet's own chain
    let level = Array.from({ length: 101 }, (_, h) => Buffer.from(devnet.namecoin.chain.hashAt(h)!, 'hex').reverse());
    while (level.length > 1) {
      const next: Buffer[] = [];
      for (let i = 0; i < level.length; i += 2) next.push(sha256d(Buffer.concat([level[i], level[i + 1] ?? level[i]])));
      level = next;
    }
    const cpRoot = Buffer.from(level[0]).reverse().toString('hex');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitdrop-names-cp-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const r = await lookupName('d/example', opts([url], { chainDir: dir, anchor: { height: 100, cpRoot } }));
    t.equal(r.txid, fu);
    t.match(JSON.parse(fs.readFileSync(path.join(dir, 'anchor.json'), 'utf8')), { height: 100, cpRoot, hash: devnet.namecoin.chain.hashAt(100) }, 'the anchor block learnt and kept');
    t.equal(fs.statSync(path.join(dir, 'headers')).size, (devnet.namecoin.chain.height - 100) * 80, 'only headers above the checkpoint');
    await refused(t, lookupName('d/example', opts([url], { chainDir: undefined, anchor: { height: 100, cpRoot: '00'.repeat(32) } })), 'proof-invalid', /checkpoint 100: the server's root .* is not ours/);
    const liar = await startLyingElectrum(url, (m, p, a) => {
      if (m !== 'blockchain.block.header' || !p[1] || !a.result) return a;
      const proof = a.result as { branch: string[] };
      return { result: { ...proof, branch: [crypto.randomBytes(32).toString('hex'), ...proof.branch.slice(1)] } };
    });
    t.teardown(() => liar.close());
    await refused(t, lookupName('d/example', opts([liar.url], { chainDir: undefined, anchor: { height: 100, cpRoot } })), 'proof-invalid', /is not proven by the checkpoint root/);
  });

  await t.test('an expired name is refused', async (t) => {
    devnet.mineNames(registeredAt + 30 - devnet.namecoin.chain.height);
    await refused(t, lookupName('d/example', opts([url])), 'expired', new RegExp(`d/example expired at block ${registeredAt + 30}`));
  });
});
