// The devnet: a persistent regtest chain served over the Electrum protocol (TCP) for wallets and the daemon,
// and over bitcoind-style JSON-RPC (HTTP) for the miner side. Production code only ever sees the URLs.
//
//   const devnet = await Devnet.open({ dir });
//   devnet.electrumUrl  // tcp://127.0.0.1:PORT   → bitdrop --electrum
//   devnet.namecoinElectrumUrl // tcp://127.0.0.1:PORT → bitdrop resolve --electrum-nmc (ElectrumX's name index)
//   devnet.xpub         // vpub… of the operator's BIP84 account → bitdrop --xpub
//   devnet.namecoinRpcUrl // http://user:pass@127.0.0.1:PORT → bitdrop --namecoin-rpc (Namecoin Core's JSON-RPC)
//   devnet.mine(1); devnet.reorg(2); await devnet.close();
//
// Two chains: Bitcoin regtest (payments) and Namecoin regtest (names, in <dir>/namecoin, see namecoin.ts).
//
// Reopening a directory keeps keys, chain and mempool, and re-binds the previous ports when they are free.

import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import { Chain } from './chain';
import { NETWORK } from './consensus';
import { ElectrumServer } from './electrum-server';
import { DevnetKeys, loadOrCreateKeys, operatorAddress } from './keys';
import { files, writeFileAtomic } from './layout';
import { bitcoindMethods, RpcCredentials, RpcServer } from './rpc-server';
import { NamecoinNode } from './namecoin';

export { Chain } from './chain';
export { operatorAddress, operatorKey, readKeys } from './keys';
export type { DevnetKeys } from './keys';
export { NamecoinNode } from './namecoin';

/**
 * Blocks mined to the faucet on first open. 101 makes the first coinbase spendable; 120 gives the faucet 20
 * mature coins, so a test's consecutive payments each spend their own coin instead of chaining on change.
 */
export const PREMINE = 120;

export interface DevnetOptions {
  dir: string;
  host?: string;
  /** 0 = the port of the previous run when free, else any free port */
  electrumPort?: number;
  rpcPort?: number;
  namecoinRpcPort?: number;
  log?: (msg: string) => void;
  /** blocks mined to the faucet on first open (default PREMINE) */
  premine?: number;
}

/** Contents of devnet.json: how another process (the CLI, a test helper) finds a running devnet. */
export interface DevnetInfo {
  electrum: string;
  rpc: string;
  network: 'regtest';
  /** the operator account key bitdrop watches, in vpub (BIP84) form; tpub is the same key */
  xpub: string;
  tpub: string;
  vpub: string;
  faucetAddress: string;
  /** Namecoin Core-style JSON-RPC of the devnet's Namecoin node, credentials included */
  namecoinRpc: string;
  /** the Namecoin chain's Electrum server (merge-mined headers, the name index, get_value_proof) */
  namecoinElectrum: string;
}

function loadOrCreateCookie(file: string): RpcCredentials {
  if (!fs.existsSync(file)) writeFileAtomic(file, `__cookie__:${crypto.randomBytes(32).toString('hex')}`, 0o600);
  const [user, password] = fs.readFileSync(file, 'utf8').trim().split(':');
  return { user, password };
}

function readInfo(file: string): Partial<DevnetInfo> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as DevnetInfo;
  } catch {
    return {};
  }
}

const portOf = (url: string | undefined) => Number(/:(\d+)$/.exec(url ?? '')?.[1] ?? 0);

/** Listens on the wanted port; when it was only a preference (the previous run's) and is taken, on any port. */
async function bind(start: (port: number) => Promise<number>, wanted: number, previous: number): Promise<number> {
  if (wanted) return start(wanted);
  if (previous) {
    try {
      return await start(previous);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  return start(0);
}

export class Devnet {
  private constructor(
    readonly dir: string,
    readonly host: string,
    readonly chain: Chain,
    readonly keys: DevnetKeys,
    readonly electrum: ElectrumServer,
    readonly rpc: RpcServer,
    private readonly credentials: RpcCredentials,
    readonly namecoin: NamecoinNode,
    private readonly namecoinCredentials: RpcCredentials,
    readonly namecoinElectrum: ElectrumServer,
  ) {}

  static async open(opts: DevnetOptions): Promise<Devnet> {
    const { dir, host = '127.0.0.1', log = () => {} } = opts;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const paths = files(dir);
    const keys = loadOrCreateKeys(paths.wallet);
    const credentials = loadOrCreateCookie(paths.cookie);
    const chain = new Chain({ dir, log });
    const premine = opts.premine ?? PREMINE;
    if (chain.height < premine) chain.mine(premine - chain.height, bitcoin.address.toOutputScript(keys.faucet.address, NETWORK));

    fs.mkdirSync(path.join(dir, 'namecoin'), { recursive: true, mode: 0o700 });
    const namecoinCredentials = loadOrCreateCookie(path.join(dir, 'namecoin', '.cookie'));
    const namecoin = new NamecoinNode(path.join(dir, 'namecoin'), namecoinCredentials, log);
    if (namecoin.chain.height < premine) {
      const wallet = namecoin.wallet();
      namecoin.chain.mine(premine - namecoin.chain.height, bitcoin.address.toOutputScript(wallet.newAddress(), namecoin.chain.params.network));
    }

    const previous = readInfo(paths.info);
    const electrum = new ElectrumServer(chain, { log });
    const namecoinElectrum = new ElectrumServer(namecoin.chain, { log });
    const rpc = new RpcServer(credentials, log).register(bitcoindMethods(chain));
    await bind((p) => electrum.start(p, host), opts.electrumPort ?? 0, portOf(previous.electrum));
    try {
      await bind((p) => rpc.start(p, host), opts.rpcPort ?? 0, portOf(previous.rpc));
      await bind((p) => namecoin.rpc.start(p, host), opts.namecoinRpcPort ?? 0, portOf(previous.namecoinRpc));
      await bind((p) => namecoinElectrum.start(p, host), 0, portOf(previous.namecoinElectrum));
    } catch (err) {
      await Promise.all([electrum.stop(), rpc.stop(), namecoin.rpc.stop(), namecoinElectrum.stop()]);
      throw err;
    }
    const devnet = new Devnet(dir, host, chain, keys, electrum, rpc, credentials, namecoin, namecoinCredentials, namecoinElectrum);
    writeFileAtomic(paths.info, JSON.stringify(devnet.info, null, 2) + '\n');
    log(`devnet: height ${chain.height}, electrum ${devnet.electrumUrl}, rpc http://${host}:${rpc.port}; namecoin height ${namecoin.chain.height}, rpc http://${host}:${namecoin.rpc.port}`);
    return devnet;
  }

  get namecoinElectrumUrl(): string {
    return `tcp://${this.host}:${this.namecoinElectrum.port}`;
  }

  get electrumUrl(): string {
    return `tcp://${this.host}:${this.electrum.port}`;
  }
  get namecoinRpcUrl(): string {
    const c = this.namecoinCredentials;
    return `http://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@${this.host}:${this.namecoin.rpc.port}`;
  }
  get rpcUrl(): string {
    return `http://${this.credentials.user}:${this.credentials.password}@${this.host}:${this.rpc.port}`;
  }
  /** The operator account's extended public key in vpub form (BIP84, native segwit); see also tpub. */
  get xpub(): string {
    return this.keys.operator.vpub;
  }
  get tpub(): string {
    return this.keys.operator.tpub;
  }
  get vpub(): string {
    return this.keys.operator.vpub;
  }
  get faucetAddress(): string {
    return this.keys.faucet.address;
  }
  get height(): number {
    return this.chain.height;
  }
  get info(): DevnetInfo {
    const { tpub, vpub } = this.keys.operator;
    return { electrum: this.electrumUrl, rpc: this.rpcUrl, network: 'regtest', xpub: vpub, tpub, vpub, faucetAddress: this.faucetAddress, namecoinRpc: this.namecoinRpcUrl, namecoinElectrum: this.namecoinElectrumUrl };
  }

  /** The address bitdrop derives for file `index` (<xpub>/0/index). */
  operatorAddress(index: number): string {
    return operatorAddress(this.keys, index);
  }

  /** Mines `n` blocks (with every mempool transaction) paying `address`, by default the faucet. Returns their hashes. */
  mine(n = 1, address = this.faucetAddress): string[] {
    return this.chain.mine(n, bitcoin.address.toOutputScript(address, NETWORK));
  }

  /**
   * Replaces the top `depth` blocks with `depth + 1` new ones in one step. Their transactions are mined again,
   * or left unconfirmed in the mempool with `{ includeMempool: false }`.
   */
  reorg(depth: number, opts: { includeMempool?: boolean } = {}): string[] {
    return this.chain.reorg(depth, bitcoin.address.toOutputScript(this.faucetAddress, NETWORK), opts.includeMempool ?? true);
  }

  /** Mines `n` Namecoin blocks (with the name mempool) paying the node's default wallet. Returns their hashes. */
  mineNames(n = 1): string[] {
    const wallet = this.namecoin.wallet();
    return this.namecoin.chain.mine(n, bitcoin.address.toOutputScript(wallet.newAddress(), this.namecoin.chain.params.network));
  }

  /** Simulates a Namecoin node outage: its RPC stops answering; startNamecoin() listens on the same port again. */
  stopNamecoin(): Promise<void> {
    return this.namecoin.rpc.stop();
  }
  async startNamecoin(): Promise<void> {
    await this.namecoin.rpc.start(this.namecoin.rpc.port, this.host);
  }

  /** Simulates an Electrum server outage: every connection drops; startElectrum() listens on the same port again. */
  stopElectrum(): Promise<void> {
    return this.electrum.stop();
  }
  async startElectrum(): Promise<void> {
    await this.electrum.start(this.electrum.port, this.host);
  }

  async close(): Promise<void> {
    await Promise.all([this.electrum.stop(), this.rpc.stop(), this.namecoin.close(), this.namecoinElectrum.stop()]);
  }
}
