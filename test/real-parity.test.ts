// Devnet parity: one script of Namecoin JSON-RPC and Electrum calls, run against the devnet and against the real
// Namecoin Core nc31.1 + ElectrumX 1.20 (BITDROP_TEST_RIG); the answers' shapes (keys and types), error codes
// and error messages (hex and numbers masked) must be the same. Each difference this found is listed in
// docs/devnet-parity.md with what was done about it.

import t from 'tap';
import { openDevnet } from './helpers/devnet';
import { rigOrSkip, startRig } from './helpers/rig';
import { rpcCall } from '../lib/devnet/wallet';
import { ElectrumConnection } from '../lib/payments/electrum';
import { nameIndexScriptHash } from '../lib/names/script';

const script = rigOrSkip(t, 'devnet parity with Namecoin Core and ElectrumX');

type Shape = string | Shape[] | { [k: string]: Shape };

/** The shape of an answer: types, object keys (sorted), arrays by their first element. */
export function shape(v: unknown): Shape {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v === null) return 'null';
  if (typeof v === 'object') return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, shape((v as Record<string, unknown>)[k])]));
  if (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)) return 'txid';
  return typeof v;
}

const mask = (m: string) => m.replace(/[0-9a-f]{16,}/g, 'HEX').replace(/\d+/g, 'N');

interface Step {
  what: string;
  answer: Shape | { error: number; message: string };
}

/** Runs the script against one node + Electrum server; returns what each step answered. */
async function run(walletUrl: string, electrumUrl: string): Promise<Step[]> {
  const steps: Step[] = [];
  const call = async <T>(what: string, method: string, params: unknown[], keep?: (v: T) => unknown): Promise<T | undefined> => {
    try {
      const v = await rpcCall<T>(walletUrl, method, params);
      steps.push({ what, answer: shape(keep ? keep(v) : v) });
      return v;
    } catch (err) {
      const e = err as Error & { code?: number };
      steps.push({ what, answer: { error: e.code ?? 0, message: mask(e.message) } });
      return undefined;
    }
  };
  const addr = (await rpcCall<string>(walletUrl, 'getnewaddress'))!;
  const mine = (n: number) => rpcCall(walletUrl, 'generatetoaddress', [n, addr]);
  await call('getblockcount', 'getblockcount', []);
  await call('name_show of an unknown name', 'name_show', ['d/parity-unknown']);
  await call('name_history of an unknown name', 'name_history', ['d/parity-unknown']);
  await call('gettransaction of a txid not in the wallet', 'gettransaction', ['00'.repeat(32)]);
  await call('sendrawtransaction of garbage', 'sendrawtransaction', ['00']);
  await call('name_firstupdate without rand and txid', 'name_firstupdate', ['d/parity', null, null, 'v']);
  const nn = await call<[string, string]>('name_new', 'name_new', ['d/parity']);
  await call('name_firstupdate while the name_new is unconfirmed', 'name_firstupdate', ['d/parity', nn![1], nn![0], 'v']);
  await mine(1);
  await call('name_firstupdate with rand null (lost)', 'name_firstupdate', ['d/parity', null, nn![0], 'v']);
  await call('name_firstupdate with a wrong rand', 'name_firstupdate', ['d/parity', '00'.repeat(20), nn![0], 'v']);
  // a name_new with a rand of our choosing, as the registrar makes it
  const legacy = (await rpcCall<string>(walletUrl, 'getnewaddress', ['', 'legacy']))!;
  const raw = await call<string>('createrawtransaction', 'createrawtransaction', [[], { [legacy]: 0.01 }]);
  await call('createrawtransaction to a bad address', 'createrawtransaction', [[], { nope: 0.01 }]);
  const named = await call<{ hex: string }>('namerawtransaction name_new', 'namerawtransaction', [raw, 0, { op: 'name_new', name: 'd/parity-raw', rand: '11'.repeat(20) }]);
  const funded = await call<{ hex: string }>('fundrawtransaction', 'fundrawtransaction', [named!.hex]);
  const signed = await call<{ hex: string }>('signrawtransactionwithwallet', 'signrawtransactionwithwallet', [funded!.hex]);
  const rawTxid = await call<string>('sendrawtransaction', 'sendrawtransaction', [signed!.hex]);
  await call('sendrawtransaction again (in the mempool)', 'sendrawtransaction', [signed!.hex]);
  await mine(12);
  await call('name_firstupdate', 'name_firstupdate', ['d/parity', nn![1], nn![0], '{"tor":"x"}']);
  await call('name_firstupdate of a name being registered', 'name_firstupdate', ['d/parity', nn![1], nn![0], '{"tor":"x"}']);
  await call('name_firstupdate with our rand', 'name_firstupdate', ['d/parity-raw', '11'.repeat(20), rawTxid, 'v']);
  await call('name_pending', 'name_pending', ['d/parity']);
  await mine(1);
  // a confirmed transaction whose outputs are unspent: -27 (Core's BroadcastTransaction)
  const paid = await rpcCall<string>(walletUrl, 'sendtoaddress', [addr, 1]);
  await mine(1);
  const { hex: paidHex } = await rpcCall<{ hex: string }>(walletUrl, 'gettransaction', [paid]);
  await call('sendrawtransaction of a confirmed transaction', 'sendrawtransaction', [paidHex]);
  await call('name_show', 'name_show', ['d/parity']);
  await call('name_show allowExpired', 'name_show', ['d/parity', { allowExpired: true }]);
  await call('name_list', 'name_list', ['d/parity']);
  await call('name_new of an active name', 'name_new', ['d/parity']);
  await call('name_update', 'name_update', ['d/parity', '{"tor":"y"}']);
  await mine(31);
  await call('name_show of an expired name', 'name_show', ['d/parity']);
  await call('name_show of an expired name, allowExpired', 'name_show', ['d/parity', { allowExpired: true }]);
  await call('name_update of an expired name', 'name_update', ['d/parity', 'z']);

  // Electrum
  const conn = await ElectrumConnection.connect(electrumUrl, { timeoutMs: 30_000, connectTimeoutMs: 30_000 });
  try {
    const ask = async (what: string, method: string, params: unknown[], keep?: (v: unknown) => unknown) => {
      try {
        const v = await conn.request(method, params);
        steps.push({ what: `electrum ${what}`, answer: shape(keep ? keep(v) : v) });
      } catch (err) {
        const e = err as Error & { code?: number };
        steps.push({ what: `electrum ${what}`, answer: { error: e.code ?? 0, message: '' } });
      }
    };
    await ask('server.version 1.4.3', 'server.version', ['parity', '1.4.3'], (v) => (v as string[])[1]);
    await ask('server.features', 'server.features', [], (v) => {
      const f = v as Record<string, unknown>;
      return { genesis_hash: f.genesis_hash, hash_function: f.hash_function, protocol_min: f.protocol_min, protocol_max: f.protocol_max };
    });
    await ask('blockchain.block.headers', 'blockchain.block.headers', [1, 3], (v) => {
      const a = v as { hex: string; count: number };
      return { keys: Object.keys(a).sort(), count: a.count, bytesPerHeader: a.hex.length / 2 / a.count };
    });
    // (after server.version, which ElectrumX wants first) ElectrumX polls its node (every 500 ms on the rig): compare only once it has indexed the node's tip
    const tip = await rpcCall<number>(walletUrl, 'getblockcount');
    for (const until = Date.now() + 60_000; ;) {
      const h = (await conn.request('blockchain.headers.subscribe', []) as { height: number }).height;
      if (h >= tip || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const sh = nameIndexScriptHash(Buffer.from('d/parity'));
    await ask('blockchain.name.get_value_proof', 'blockchain.name.get_value_proof', [sh], (v) => (v as Record<string, unknown>)[sh]);
  } finally {
    conn.close();
  }
  return steps;
}

if (script) {
  t.test('the devnet answers the script as Namecoin Core and ElectrumX do', async (t) => {
    const rig = await startRig(t, script);
    const devnet = await openDevnet(t);
    const real = await run(rig.walletUrl, rig.electrumUrl);
    const dev = await run(`${devnet.namecoinRpcUrl}/wallet/default`, devnet.namecoinElectrumUrl);
    t.equal(dev.length, real.length);
    for (let i = 0; i < real.length; i++) {
      t.same(dev[i], real[i], real[i].what);
    }
  });
}
