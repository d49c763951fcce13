// Namecoin fixtures: a daemon registering names against a devnet in the test process, an RPC proxy that
// can kill the daemon at an exact point of the protocol, and counters over the devnet's real blocks.

import fs from 'fs';
import http from 'http';
import net from 'net';
import path from 'path';
import type { Test } from 'tap';
import type { Devnet } from '../../lib/devnet';
import { parseNameScript } from '../../lib/names/script';
import { startDaemon, tmpDir, type Daemon } from './daemon';
import { offlineAppendFile, waitFor as pollUntil } from './tor-lone';
import { fetchStatus } from '../../lib/cli/status';
import type { NameStatus } from '../../lib/names';

/** A daemon (managed tor without network, so it has an onion) registering `names` through `rpcUrl`. */
export async function namesDaemon(t: Test, rpcUrl: string, opts: { dataDir?: string; names?: string[]; args?: string[]; readyPattern?: RegExp } = {}): Promise<Daemon> {
  const dataDir = opts.dataDir ?? tmpDir('bitdrop-names-');
  const args = ['--tor', 'managed', '--torrc-append', offlineAppendFile(dataDir), '--namecoin-rpc', rpcUrl, '--namecoin-poll', '100ms'];
  for (const n of opts.names ?? ['d/example']) args.push('--name', n);
  const daemon = await startDaemon({ dataDir, args: [...args, ...(opts.args ?? [])], readyPattern: opts.readyPattern });
  t.teardown(async () => {
    await daemon.stop();
    if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return daemon;
}

/** A daemon's view of one name, read over its console like `bitdrop status --json`. */
export async function nameStatus(dataDir: string, name = 'd/example'): Promise<NameStatus & { onion: string | null }> {
  const s = await fetchStatus(dataDir);
  const n = (s.names as NameStatus[]).find((x) => x.name === name)!;
  return { ...n, onion: s.onion as string | null };
}

/** tor-lone's waitFor, polled every 50 ms with a 20 s default, for checks that answer undefined or false until ready */
export function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  return pollUntil(what, fn, timeoutMs, 50) as Promise<T>;
}

/** Every name operation in the devnet's Namecoin blocks and mempool, in order. */
export function nameOps(devnet: Devnet): Array<{ op: string; name?: string; txid: string; confirmed: boolean; rand?: string }> {
  const chain = devnet.namecoin.chain;
  const out: Array<{ op: string; name?: string; txid: string; confirmed: boolean; rand?: string }> = [];
  const scan = (tx: import('bitcoinjs-lib').Transaction, confirmed: boolean) => {
    for (const o of tx.outs) {
      const op = parseNameScript(o.script);
      if (op) out.push({ op: op.op, name: 'name' in op ? op.name.toString() : undefined, txid: tx.getId(), confirmed, rand: 'rand' in op ? op.rand.toString('hex') : undefined });
    }
  };
  for (let h = 1; h <= chain.height; h++) for (const tx of chain.blockAt(h)!.transactions!) scan(tx, true);
  for (const e of chain.mempool.all()) scan(e.tx, false);
  return out;
}

/**
 * A JSON-RPC proxy in front of the devnet's Namecoin node. `hook(method)` runs when a request arrives and
 * `after(method)` once the node answered, before the answer goes back; either may kill the daemon, in which
 * case the request is left unanswered.
 */
export async function rpcProxy(t: Test, upstream: string, hooks: { before?: (method: string) => Promise<boolean> | boolean; after?: (method: string, answer: string) => Promise<boolean> | boolean }) {
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let method = '';
      try {
        method = JSON.parse(body.toString()).method;
      } catch {
        // forwarded as is
      }
      if (hooks.before && (await hooks.before(method))) return req.socket.destroy();
      const up = http.request(
        { host: target.hostname, port: target.port, path: req.url, method: 'POST', headers: { ...req.headers, host: target.host }, agent: false },
        (upRes) => {
          const parts: Buffer[] = [];
          upRes.on('data', (c: Buffer) => parts.push(c));
          upRes.on('end', async () => {
            if (hooks.after && (await hooks.after(method, Buffer.concat(parts).toString()))) return req.socket.destroy();
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      up.on('error', () => req.socket.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const port = (server.address() as net.AddressInfo).port;
  return `http://${target.username}:${target.password}@127.0.0.1:${port}`;
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}
