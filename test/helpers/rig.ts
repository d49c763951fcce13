// The real servers: Namecoin Core (regtest) and ElectrumX, started by a `rig` script named in the environment.
//
//   BITDROP_TEST_RIG=/path/to/rig   a script with the interface of shared/rig/rig: `rig start DIR` (a regtest
//                                   namecoind with a funded descriptor wallet "rig" and an ElectrumX indexing it,
//                                   on free loopback ports; writes DIR/env), `rig stop DIR`,
//                                   `rig electrumx-stop DIR`, `rig electrumx-start DIR`.
//
// .ci/run sets it when ../shared/rig/rig exists; README says how to build the two servers from source. Without
// it, each real-server test file ends with one line saying the real-server tests did not run and how to enable
// them (never a silent skip).

import crypto from 'crypto';
import fs from 'fs';
import type { Test } from 'tap';
import { exec, tmpDir } from './daemon';
import { rpcCall } from '../../lib/devnet/wallet';
import { ElectrumConnection } from '../../lib/payments/electrum';
import { waitFor } from './namecoin';

export const RIG_ENV = 'BITDROP_TEST_RIG';

/** The rig script, or undefined after telling `t` in one line that the real-server tests did not run. */
export function rigOrSkip(t: Test, what: string): string | undefined {
  const rig = process.env[RIG_ENV];
  if (rig && fs.existsSync(rig)) return rig;
  const why = rig ? `${RIG_ENV}=${rig} does not exist` : `${RIG_ENV} is not set`;
  t.plan(0, `real-server tests NOT RUN (${what}): ${why}; set ${RIG_ENV}=/path/to/rig (Namecoin Core + ElectrumX, see README "Real-server tests")`);
  return undefined;
}

export interface Rig {
  dir: string;
  env: Record<string, string>;
  /** JSON-RPC of the wallet "rig" */
  walletUrl: string;
  /** JSON-RPC without a wallet path */
  nodeUrl: string;
  /** tcp://127.0.0.1:PORT of ElectrumX */
  electrumUrl: string;
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** mines n blocks (in batches) to the rig wallet and returns the new tip */
  mine(n: number): Promise<number>;
  height(): Promise<number>;
  /** waits until ElectrumX reports the node's tip */
  electrumSynced(): Promise<number>;
  electrumxStop(): Promise<void>;
  electrumxStart(): Promise<void>;
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** Starts a throwaway rig for this test file; stopped and removed at teardown. */
export async function startRig(t: Test, script: string): Promise<Rig> {
  const dir = tmpDir('bitdrop-rig-');
  t.teardown(async () => {
    await exec(script, ['stop', dir], { timeout: 60_000 }).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await exec(script, ['start', dir], { timeout: 180_000 });
  const env = parseEnv(fs.readFileSync(`${dir}/env`, 'utf8'));
  const walletUrl = env.NMC_RPC_URL;
  const nodeUrl = env.NMC_RPC_URL_NODE.replace(/\/$/, '');
  const rpc = <T>(method: string, params: unknown[] = []) => rpcCall<T>(walletUrl, method, params);
  let address: string | undefined;
  const height = () => rpc<number>('getblockcount');
  const rig: Rig = {
    dir,
    env,
    walletUrl,
    nodeUrl,
    electrumUrl: env.ELECTRUM_URL,
    rpc,
    height,
    async mine(n) {
      address ??= await rpc<string>('getnewaddress');
      for (let left = n; left > 0; left -= 100) await rpc('generatetoaddress', [Math.min(100, left), address]);
      return height();
    },
    async electrumSynced() {
      const tip = await height();
      return waitFor(`ElectrumX at height ${tip}`, async () => {
        let conn: ElectrumConnection | undefined;
        try {
          conn = await ElectrumConnection.connect(env.ELECTRUM_URL, { timeoutMs: 5_000, connectTimeoutMs: 5_000 });
          await conn.request('server.version', ['bitdrop-test', '1.4.3']);
          const h = ((await conn.request('blockchain.headers.subscribe', [])) as { height: number }).height;
          return h === tip && h;
        } catch {
          return false;
        } finally {
          conn?.close();
        }
      }, 60_000);
    },
    async electrumxStop() {
      await exec(script, ['electrumx-stop', dir], { timeout: 60_000 });
    },
    async electrumxStart() {
      await exec(script, ['electrumx-start', dir], { timeout: 120_000 });
    },
  };
  return rig;
}

/** A well-formed v3 onion address of a fresh key. */
export function randomOnion(): string {
  const pub = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const check = crypto.createHash('sha3-256').update(Buffer.concat([Buffer.from('.onion checksum'), pub, Buffer.from([3])])).digest().subarray(0, 2);
  const bytes = Buffer.concat([pub, check, Buffer.from([3])]);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return `${out}.onion`;
}

/** Registers `name` with `value` from the rig wallet (name_new, 12 blocks, name_firstupdate, 1 block). */
export async function registerName(rig: Rig, name: string, value: string): Promise<number> {
  const [txid, rand] = await rig.rpc<[string, string]>('name_new', [name]);
  await rig.mine(12);
  await rig.rpc('name_firstupdate', [name, rand, txid, value]);
  return rig.mine(1);
}

