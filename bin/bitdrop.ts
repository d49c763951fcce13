// bitdrop's command line: parses flags and calls the library. Nothing else lives here.

import { Command, Option } from 'commander';
import { OPTIONS, ConfigError, commandName, envName, flagName, loadConfig, defaults, parseDuration, parseHostPort, type Config } from '../lib/config';
import { BitdropNode, VERSION } from '../lib/node';
import { uploadDrop, uploadFile } from '../lib/cli/upload';
import { uploadEncrypted } from '../lib/cli/upload-encrypted';
import { getLink } from '../lib/cli/get';
import { lookupName, namecoinNodeOf } from '../lib/cli/lookup';
import { fetchStatus, formatStatus } from '../lib/cli/status';
import { payTarget, reportMined, reportPayment } from '../lib/cli/devnet';
import { formatDefault } from '../lib/cli/help';
import { whenLauncherGone } from '../lib/cli/launcher';
import { fetchBooks } from '../lib/cli/books';
import { fetchWallet, formatBalance, formatHistory, walletAddress } from '../lib/cli/wallet';
import { devnetPay, devnetMine, devnetReorg, readDevnetInfo } from '../lib/devnet/wallet';
import { addClient, listClients, removeClient } from '../lib/tor';
import { NamecoinRpc, chooseNameResolver, redact, resolveName, resolveNameElectrum } from '../lib/names';
import { serverNetwork } from '../lib/names/electrum';
import { tcpReachable } from '../lib/net/reachable';
import { NamesProxy, guardProxy } from '../lib/names/proxy';
import { parseControlAddress } from '../lib/tor/control';
import { spawn } from 'child_process';
import path from 'path';

const program = new Command();
program.name('bitdrop').description('A pay-per-use file drop box that lives as a Tor onion service').version(VERSION);

/** Fails with one readable line, as every bitdrop error does. */
function fail(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`bitdrop: ${msg}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}

const collect = (value: string, prev: string[] = []) => [...prev, value];
/** A comma-separated env var as a list (undefined when unset). */
const envList = (name: string) => process.env[name]?.split(',').map((s) => s.trim()).filter(Boolean);
/** --nmc-network, else BITDROP_NMC_NETWORK, else undefined (the servers' genesis hash decides) */
function nmcNetworkOf(flag?: 'namecoin' | 'namecoin-regtest'): 'namecoin' | 'namecoin-regtest' | undefined {
  const v = flag ?? process.env.BITDROP_NMC_NETWORK;
  if (v === undefined || v === '') return undefined;
  if (v !== 'namecoin' && v !== 'namecoin-regtest') throw new Error(`BITDROP_NMC_NETWORK=${v}: expected namecoin or namecoin-regtest`);
  return v;
}

/** Flags given on the command line only (commander reports defaults as undefined here). */
function flagsOf(cmd: Command): Partial<Record<keyof Config, unknown>> {
  const out: Partial<Record<keyof Config, unknown>> = {};
  for (const [k, v] of Object.entries(cmd.opts())) if (v !== undefined) out[k as keyof Config] = v;
  return out;
}

const start = program.command('start').description('run the daemon').option('--config <file>', 'JSON config file (env BITDROP_CONFIG)');
for (const spec of OPTIONS) {
  const flag = `--${flagName(spec.key)}`;
  const def = (defaults() as unknown as Record<string, unknown>)[spec.key];
  const shown = def === undefined || (Array.isArray(def) && def.length === 0) || (spec.kind === 'bool' && def === false) ? '' : ` (default ${formatDefault(spec.kind, def)})`;
  const help = `${spec.describe}${shown}; env ${envName(spec.key)}`;
  let opt: Option;
  if (spec.kind === 'bool') opt = def === true ? new Option(`${flag} <on|off>`, help) : new Option(flag, help);
  else if (spec.kind === 'list') opt = new Option(`${flag} <value>`, help).argParser(collect);
  else opt = new Option(`${flag} <value>`, help);
  if (spec.choices) opt = opt.choices(spec.choices as string[]);
  start.addOption(opt);
}
start.action(async (_opts, cmd: Command) => {
  let config: Config;
  try {
    const flags = flagsOf(cmd);
    config = loadConfig({ flags: { ...flags, configFile: cmd.opts().config } });
  } catch (err) {
    fail(err);
  }
  const node = new BitdropNode(config);
  try {
    await node.start();
  } catch (err) {
    await node.stop().catch(() => undefined);
    fail(err);
  }
  let signals = 0;
  const shutdown = (sig: string) => {
    if (++signals > 1) process.exit(130);
    if (config.logFormat !== 'json') console.log(`bitdrop: ${sig}, stopping`);
    node.stop().then(() => process.exit(0), (err) => fail(err));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // under npx a SIGTERM ends npx without reaching this process: stop when npx is gone
  whenLauncherGone(() => shutdown('npx exited'));
});

program
  .command('upload <files...>')
  .description('upload a file and print its URL; several files are one drop (one page, one payment, a zip of all)')
  .option('--url <url>', 'bitdrop to upload to (env BITDROP_URL)', process.env.BITDROP_URL ?? 'http://127.0.0.1:8080/')
  .option('--socks <host:port>', 'SOCKS5 proxy, e.g. tor at 127.0.0.1:9050 for .onion URLs (env BITDROP_SOCKS)', process.env.BITDROP_SOCKS)
  .option('--encrypt', 'encrypt here with age to a new key; the link carries the key after # (the drop box cannot read the files)')
  .option('--no-pad', 'with --encrypt: do not pad the size (padding adds at most ~12 %)')
  .option('--json', 'print the JSON answer')
  .action(async (files: string[], opts: { url: string; socks?: string; json?: boolean; encrypt?: boolean; pad: boolean }) => {
    try {
      if (opts.encrypt) {
        const up = await uploadEncrypted(files, { url: opts.url, socks: opts.socks, pad: opts.pad, progress: process.stderr.isTTY });
        if (opts.json) process.stdout.write(JSON.stringify({ ...up.answer, link: up.link, recipient: up.recipient }, null, 2) + '\n');
        else {
          const a = up.answer;
          const pay = a.state && a.state !== 'active' ? `pay ${a.amountDue} sats to ${a.address} to make it downloadable (${a.paymentUri})\n` : '';
          process.stdout.write(`${up.link}\n${pay}delete: curl -X DELETE -H 'X-Delete-Token: ${up.deleteToken}' ${up.link.replace(/#.*$/, '')}\n` +
            'anyone with the whole link can open it: share it only with them (the part after # never reaches the drop box)\n');
        }
        return;
      }
      const o = { url: opts.url, socks: opts.socks, json: opts.json, progress: process.stderr.isTTY };
      const res = files.length === 1 ? await uploadFile(files[0], o) : await uploadDrop(files, o);
      if (res.status !== 201) fail(res.body.trim() || `upload failed with HTTP ${res.status}`);
      process.stdout.write(opts.json ? res.body : res.body.endsWith('\n') ? res.body : res.body + '\n');
    } catch (err) {
      fail(err);
    }
  });

program
  .command('get <url>')
  .description('download a file or drop through tor: resumable, checked against its SHA-256, in parallel over separate circuits; a link with #AGE-SECRET-KEY-… is decrypted')
  .option('-o, --output <path>', 'where to save (a directory for a drop); default: the name of the file')
  .option('--socks <host:port>', "tor's SocksPort (env BITDROP_SOCKS; default 127.0.0.1:9050; loopback URLs go direct)", process.env.BITDROP_SOCKS)
  .option('--clearnet', 'fetch plain (non-onion) URLs without tor')
  .option('-j, --jobs <n>', 'parallel ranges, each on its own circuit (default 4 for files of 32 MiB or more)')
  .option('--wait', 'when the file must be paid for, wait for the payment instead of stopping')
  .option('-i, --identity <file>', 'an age identity file, for a link without #key')
  .option('--name <name>', 'only this file of a drop')
  .option('--limit-rate <bytes>', 'at most this many bytes per second')
  .option('--retries <n>', 'tries per range before stopping (the partial download is kept)', '5')
  .option('--poll <seconds>', 'with --wait: how often to look for the payment', '10')
  .option('--no-progress', 'no progress bar')
  .option('--namecoin-rpc <url>', 'for .bit links: a Namecoin Core JSON-RPC URL (env BITDROP_NAMECOIN_RPC)')
  .option('--electrum-nmc <url>', 'for .bit links: a Namecoin Electrum server (repeatable)', collect)
  .option('--data-dir <dir>', "for .bit links: the Namecoin node of this data dir's daemon")
  .addOption(new Option('--nmc-network <network>', "the Namecoin network the --electrum-nmc servers must serve (env BITDROP_NMC_NETWORK; default: what the first server's genesis hash says)").choices(['namecoin', 'namecoin-regtest']))
  .action((url: string, opts: { output?: string; socks?: string; clearnet?: boolean; jobs?: string; wait?: boolean; identity?: string; name?: string; limitRate?: string;
    retries: string; poll: string; progress: boolean; namecoinRpc?: string; electrumNmc?: string[]; dataDir?: string; nmcNetwork?: 'namecoin' | 'namecoin-regtest' }) => run(async () => {
    const jobs = opts.jobs === undefined ? undefined : Number(opts.jobs);
    if (jobs !== undefined && (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > 16)) throw new Error(`-j ${opts.jobs}: expected 1 to 16 streams`);
    const identity = opts.identity ? require('fs').readFileSync(opts.identity, 'utf8').split('\n').map((l: string) => l.trim()).find((l: string) => /^AGE-SECRET-KEY-1/.test(l)) : undefined;
    if (opts.identity && !identity) throw new Error(`${opts.identity} has no AGE-SECRET-KEY-1… line`);
    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    process.once('SIGTERM', () => abort.abort());
    const socksHP = opts.socks ? parseHostPort(opts.socks) : undefined;
    const got = await getLink(url, {
      output: opts.output, socks: opts.socks, clearnet: opts.clearnet, jobs, wait: opts.wait, identity, name: opts.name,
      limitRate: opts.limitRate ? Number(opts.limitRate) : undefined, retries: Number(opts.retries), pollMs: Math.max(0.1, Number(opts.poll) || 10) * 1000,
      progress: opts.progress && process.stderr.isTTY, signal: abort.signal,
      log: (line) => process.stderr.write(`bitdrop: ${line}\n`),
      resolveBit: (domain) => lookupName(domain, { namecoinRpc: opts.namecoinRpc, electrumNmc: opts.electrumNmc, dataDir: opts.dataDir,
        nmcNetwork: nmcNetworkOf(opts.nmcNetwork), socks: socksHP ?? { host: '127.0.0.1', port: 9050 }, clearnet: opts.clearnet }),
    }).catch((err) => {
      if (abort.signal.aborted) throw new Error('interrupted; run the same command again to resume');
      throw err;
    });
    for (const f of got.files) console.log(f);
  }));

program
  .command('status')
  .description("report the running daemon's state")
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .option('--json', 'print JSON')
  .action(async (opts: { dataDir?: string; json?: boolean }) => {
    try {
      const config = loadConfig({ flags: { dataDir: opts.dataDir } });
      const status = await fetchStatus(config.dataDir);
      process.stdout.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status).join('\n') + '\n');
    } catch (err) {
      fail(err);
    }
  });

program
  .command('books')
  .description('the books by day: revenue, costs, profit, utilization, prices (from the running daemon, or the data dir)')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .option('--csv', 'CSV for an accountant: one line a day, amounts in sats')
  .option('--json', 'print JSON')
  .option('--days <n>', 'only the last N days')
  .action(async (opts: { dataDir?: string; csv?: boolean; json?: boolean; days?: string }) => {
    try {
      const config = loadConfig({ flags: { dataDir: opts.dataDir } });
      const days = opts.days === undefined ? undefined : Number(opts.days);
      if (days !== undefined && (!Number.isSafeInteger(days) || days < 1)) throw new ConfigError(`--days ${opts.days}: expected a whole number ≥ 1`);
      process.stdout.write(await fetchBooks(config.dataDir, { csv: opts.csv, json: opts.json, days, costs: typeof config.costs === 'string' ? config.costs : undefined }));
    } catch (err) {
      fail(err);
    }
  });

/** The data dir a subcommand acts on: --data-dir, else BITDROP_DATA_DIR / config, else the default. */
const dataDirOf = (opts: { dataDir?: string }) => loadConfig({ flags: { dataDir: opts.dataDir } }).dataDir;
const run = (fn: () => Promise<void> | void) => Promise.resolve().then(fn).catch(fail);

const devnet = program.command('devnet').description('act on the embedded devnet like a wallet and a miner (simulated payments)');
const devnetDir = (opts: { dataDir?: string }) => path.join(dataDirOf(opts), 'devnet');

devnet.command('pay <target> <sats>')
  .description("pay SATS to a file (its URL) or to an address from the devnet faucet; prints the txid, and what it did on stderr")
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .option('--fee-rate <satPerVb>', 'fee rate in sat/vB')
  .action((target: string, sats: string, opts: { dataDir?: string; feeRate?: string }) => run(async () => {
    const amount = Number(sats);
    if (!Number.isSafeInteger(amount) || amount <= 0) throw new Error(`"${sats}" is not a whole number of satoshis`);
    const to = await payTarget(target);
    const txid = await devnetPay(devnetDir(opts), to.address, amount, opts.feeRate ? { feeRate: Number(opts.feeRate) } : {});
    console.log(txid);
    process.stderr.write(`${await reportPayment(devnetDir(opts), to, amount, txid)}\n`);
  }));

devnet.command('mine [n]')
  .description('mine N blocks (default 1) with every mempool transaction; prints the block hashes, and on stderr the files they confirmed')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .action((n: string | undefined, opts: { dataDir?: string }) => run(async () => {
    const count = n === undefined ? 1 : Number(n);
    if (!Number.isSafeInteger(count) || count < 1 || count > 10_000) throw new Error(`"${n}" is not a block count between 1 and 10000`);
    const hashes = await devnetMine(devnetDir(opts), count);
    for (const hash of hashes) console.log(hash);
    for (const line of await reportMined(devnetDir(opts), hashes)) process.stderr.write(`${line}\n`);
  }));

devnet.command('reorg <depth>')
  .description('replace the top DEPTH blocks with DEPTH+1 new ones, as a competing miner would')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .option('--drop <txid>', 'double-spend this payment in the new chain (repeatable)', collect)
  .action((depth: string, opts: { dataDir?: string; drop?: string[] }) => run(async () => {
    for (const hash of await devnetReorg(devnetDir(opts), Number(depth), { dropTxids: opts.drop })) console.log(hash);
  }));

devnet.command('info')
  .description('where the devnet listens and which test key it uses')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .action((opts: { dataDir?: string }) => run(() => {
    const info = readDevnetInfo(devnetDir(opts));
    console.log(JSON.stringify({ ...info, rpc: info.rpc.replace(/\/\/[^@]*@/, '//') }, null, 2));
  }));

const wallet = program.command('wallet').description("the operating wallet that pays mirrors (its key: <data dir>/wallet-key)");
wallet.command('address')
  .description('print the address to fund the wallet with (makes the key on first use)')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .option('--network <network>', 'coin network (default: the config\'s)')
  .action((opts: { dataDir?: string; network?: string }) => run(() => {
    const config = loadConfig({ flags: { dataDir: opts.dataDir, network: opts.network } });
    console.log(walletAddress(config.dataDir, config.network));
  }));
wallet.command('balance')
  .description("the wallet's coins and what it spent today (asks the running daemon)")
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .option('--json', 'print JSON')
  .action((opts: { dataDir?: string; json?: boolean }) => run(async () => {
    const { history: _h, ...w } = await fetchWallet(dataDirOf(opts));
    console.log(opts.json ? JSON.stringify(w, null, 2) : formatBalance(w).join('\n'));
  }));
wallet.command('history')
  .description("payments received and spends made, newest first (asks the running daemon)")
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .option('--json', 'print JSON')
  .action((opts: { dataDir?: string; json?: boolean }) => run(async () => {
    const w = await fetchWallet(dataDirOf(opts));
    console.log(opts.json ? JSON.stringify(w.history, null, 2) : formatHistory(w).join('\n'));
  }));

program
  .command('resolve <domain>')
  .description("print the onion address of a .bit name (example.bit, files.example.bit), asking Namecoin Electrum servers with every answer checked (by default two of Electrum-NMC's onion servers, through tor), or a Namecoin node")
  .option('--namecoin-rpc <url>', "Namecoin Core JSON-RPC URL http://user:pass@host:port (env BITDROP_NAMECOIN_RPC)")
  .option('--namecoin-cookie <file>', "the node's .cookie file (env BITDROP_NAMECOIN_COOKIE)")
  .option('--data-dir <dir>', 'use the Namecoin node of the daemon in this data dir, the embedded devnet included (env BITDROP_DATA_DIR)')
  .option('--socks <host:port>', "tor's SocksPort, for servers or a node not on this machine (env BITDROP_SOCKS; default 127.0.0.1:9050 for the built-in servers)", process.env.BITDROP_SOCKS)
  .option('--clearnet', 'allow reaching a remote node outside Tor')
  .option('--json', 'print JSON: name, onion, mirrors, value, height, expiresIn')
  .option('--electrum-nmc <url>', 'a Namecoin Electrum server tcp://HOST:PORT or ssl://HOST:PORT[#sha256=PIN] instead of a node; repeat it: all must agree (env BITDROP_ELECTRUM_NMC, comma-separated)', collect)
  .addOption(new Option('--nmc-network <network>', "the Namecoin network the --electrum-nmc servers must serve (env BITDROP_NMC_NETWORK; default: what the first server's genesis hash says, namecoin for the built-in servers)").choices(['namecoin', 'namecoin-regtest']))
  .action((domain: string, opts: { namecoinRpc?: string; namecoinCookie?: string; dataDir?: string; socks?: string; clearnet?: boolean; json?: boolean; electrumNmc?: string[]; nmcNetwork?: 'namecoin' | 'namecoin-regtest' }) => run(async () => {
    const r = await lookupName(domain, { ...opts, nmcNetwork: nmcNetworkOf(opts.nmcNetwork), socks: opts.socks ? parseHostPort(opts.socks) : undefined });
    if (opts.json) console.log(JSON.stringify({ domain: r.domain, name: r.name, onion: r.onion, mirrors: r.mirrors, value: r.value, txid: r.txid, height: r.height, expiresIn: r.expiresIn }, null, 2));
    else console.log(r.onion);
  }));

program
  .command('names-proxy')
  .description("open .bit names in a tor you already run (Tor Browser: control port 9151; system tor: 9051)")
  .option('--tor-control <addr>', 'control port HOST:PORT or unix:PATH (default: 127.0.0.1:9151, then 127.0.0.1:9051)')
  .option('--tor-password <pw>', 'control port password (default: cookie authentication)')
  .option('--electrum-nmc <url>', "resolve through this Namecoin Electrum server, checking proofs (repeatable: all must agree); default: two of Electrum-NMC's onion servers, through the tor's SocksPort", collect)
  .addOption(new Option('--nmc-network <network>', "the Namecoin network the --electrum-nmc servers must serve (env BITDROP_NMC_NETWORK; default: what the first server's genesis hash says, namecoin for the built-in servers)").choices(['namecoin', 'namecoin-regtest']))
  .option('--namecoin-rpc <url>', 'resolve through this Namecoin Core node instead (env BITDROP_NAMECOIN_RPC)')
  .option('--namecoin-cookie <file>', "the node's .cookie file")
  .option('--data-dir <dir>', "a bitdrop data dir: its devnet's Namecoin node, and where checked headers are kept")
  .option('--socks <host:port>', "tor's SocksPort, for remote servers or nodes (env BITDROP_SOCKS; default: the one the controlled tor reports)", process.env.BITDROP_SOCKS)
  .option('--clearnet', 'allow reaching remote servers outside Tor')
  .option('--ttl <duration>', 'how long an answer is cached', '60s')
  .action((opts: { torControl?: string; torPassword?: string; electrumNmc?: string[]; nmcNetwork?: 'namecoin' | 'namecoin-regtest'; namecoinRpc?: string; namecoinCookie?: string; dataDir?: string; socks?: string; clearnet?: boolean; ttl: string }) => run(async () => {
    const nmcNetwork = nmcNetworkOf(opts.nmcNetwork);
    const config = loadConfig({ flags: { dataDir: opts.dataDir, namecoinRpc: opts.namecoinRpc, namecoinCookie: opts.namecoinCookie } });
    let socks = opts.socks ? parseHostPort(opts.socks) : undefined;
    const clearnet = opts.clearnet ?? config.clearnet;
    let resolve: (domain: string) => Promise<{ onion: string; mirrors: string[] }>;
    let via: string;
    const choice = chooseNameResolver({ electrumNmc: opts.electrumNmc ?? envList('BITDROP_ELECTRUM_NMC'), namecoinRpc: config.namecoinRpc,
      dataDir: opts.dataDir ?? process.env.BITDROP_DATA_DIR, network: nmcNetwork ?? 'namecoin' });
    if (choice.kind === 'electrum') {
      // the given servers' network, from the first one's genesis hash, unless --nmc-network says it
      const network = nmcNetwork ?? (choice.builtIn ? 'namecoin' : await serverNetwork(choice.servers[0], { socks, clearnet, timeoutMs: 30_000 }));
      const chainDir = path.join(config.dataDir, 'chain', network);
      via = choice.builtIn
        ? `proof-checked Electrum (2 of Electrum-NMC's ${choice.pool.length} onion servers per lookup, through tor's SocksPort)`
        : `proof-checked Electrum (${choice.servers.join(', ')})`;
      const servers = () => (choice.builtIn ? choice.pick() : choice.servers);
      // socks is read at lookup time: for the built-in servers it is learnt from the tor once attached
      resolve = (domain) => resolveNameElectrum(domain, { servers: servers(), network, chainDir, socks, clearnet, timeoutMs: 60_000 });
    } else {
      const url = choice.url ?? namecoinNodeOf(config.dataDir);
      const rpc = new NamecoinRpc({ url, cookieFile: config.namecoinCookie, socks, clearnet, timeoutMs: 10_000, retries: 1 });
      via = `the Namecoin node ${redact(url)}`;
      resolve = (domain) => resolveName(domain, rpc);
    }
    const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
    const candidates = opts.torControl ? [opts.torControl] : ['127.0.0.1:9151', '127.0.0.1:9051'];
    let proxy: NamesProxy | undefined;
    let lastError: unknown;
    for (const c of candidates) {
      const p = new NamesProxy({ control: parseControlAddress(c), password: opts.torPassword, resolve, ttlMs: parseDuration(opts.ttl), log });
      try {
        await p.start();
        proxy = p;
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (!proxy) throw lastError;
    if (choice.kind === 'electrum' && choice.builtIn && !socks) {
      socks = await proxy.socksListener();
      if (!socks) {
        await proxy.stop();
        throw new Error('the tor at the control port has no TCP SocksPort to reach the Namecoin Electrum servers through; give --socks HOST:PORT, --electrum-nmc URL or --namecoin-rpc URL');
      }
      via += ` ${socks.host}:${socks.port}`;
    }
    log(`names-proxy: resolving through ${via}`);
    // The guard puts tor back if this process is killed before it can.
    const control = opts.torControl ?? candidates[0];
    const guard = spawn(process.execPath, [process.argv[1], 'names-proxy-guard', String(process.pid), control, proxy.previousSetting],
      { detached: true, stdio: 'ignore', env: { ...process.env, BITDROP_TOR_PASSWORD: opts.torPassword ?? '' } });
    guard.unref();
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      log(`names-proxy: ${sig}, restoring tor`);
      guard.kill('SIGTERM');
      proxy!.stop().then(() => process.exit(0), (err) => fail(err));
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  }));

program
  .command('names-proxy-guard <pid> <control> <previous>', { hidden: true })
  .action((pid: string, control: string, previous: string) => run(async () => {
    await guardProxy(Number(pid), parseControlAddress(control), previous, process.env.BITDROP_TOR_PASSWORD || undefined, (line) => console.log(line));
  }));

const auth = program.command('auth').description('private drops: Tor v3 client authorization');
auth.command('add <name>')
  .description('allow a new client; prints the line its Tor Browser user pastes')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .action((name: string, opts: { dataDir?: string }) => run(() => {
    const client = addClient(dataDirOf(opts), name);
    console.log(`added ${client.name}; give this key to its Tor Browser user (the "onion service key" prompt):`);
    console.log(client.privateKey);
    if (client.line) console.log(`for a client tor's ClientOnionAuthDir (${client.name}.auth_private):\n${client.line}`);
    else console.log(`(start bitdrop once to create the onion address; \`${commandName()} auth list\` then shows the full line)`);
  }));
auth.command('list')
  .description('list authorized clients')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .action((opts: { dataDir?: string }) => run(() => {
    const clients = listClients(dataDirOf(opts));
    if (clients.length === 0) console.log('no clients: the onion is public');
    for (const c of clients) console.log(c.line ? `${c.name}  ${c.line}` : c.name);
  }));
auth.command('remove <name>')
  .description('revoke a client')
  .option('--data-dir <dir>', 'data dir of the daemon (env BITDROP_DATA_DIR)')
  .action((name: string, opts: { dataDir?: string }) => run(() => {
    removeClient(dataDirOf(opts), name);
    console.log(`removed ${name}`);
  }));

program.parseAsync(process.argv).catch(fail);
