// Devnet fixtures for tap tests: a devnet in a temporary directory, Electrum connections that close with the
// test, and a recorder for server notifications that waits for the one a test expects.

import type { Test } from 'tap';
import * as bitcoin from 'bitcoinjs-lib';
import crypto from 'crypto';
import { Devnet, DevnetOptions } from '../../lib/devnet';
import { NETWORK, scriptHash } from '../../lib/devnet/consensus';
import { ElectrumConnection } from '../../lib/payments/electrum';

/** What the fixtures use of a tap test: a temporary directory and teardown. */
export type TestLike = Pick<Test, 'testdir' | 'teardown'>;

export async function openDevnet(t: TestLike, opts: Partial<DevnetOptions> = {}): Promise<Devnet> {
  const devnet = await Devnet.open({ dir: opts.dir ?? t.testdir({}), ...opts });
  t.teardown(() => devnet.close());
  return devnet;
}

/** An Electrum connection that has negotiated `protocol`, closed when the test ends. */
export async function connect(t: TestLike, url: string, protocol: string | string[] = '1.4'): Promise<ElectrumConnection> {
  const conn = await ElectrumConnection.connect(url);
  t.teardown(() => conn.close());
  await conn.request('server.version', ['bitdrop-test', protocol]);
  return conn;
}

export const scripthashOf = (address: string) => scriptHash(bitcoin.address.toOutputScript(address, NETWORK));

/** The Electrum status computed by hand from a history, as a wallet does to check a server. */
export function expectedStatus(history: Array<{ tx_hash: string; height: number }>): string | null {
  if (history.length === 0) return null;
  return crypto.createHash('sha256').update(history.map((h) => `${h.tx_hash}:${h.height}:`).join('')).digest('hex');
}

export interface Notification {
  method: string;
  params: unknown[];
}

/** Records every notification of a connection; `next` resolves with the first unread one matching. */
export function recordNotifications(conn: ElectrumConnection) {
  const seen: Notification[] = [];
  const waiters: Array<{ match: (n: Notification) => boolean; resolve: (n: Notification) => void }> = [];
  let read = 0;
  conn.on('notification', (method: string, params: unknown[]) => {
    const n = { method, params };
    seen.push(n);
    const i = waiters.findIndex((w) => w.match(n));
    if (i >= 0) {
      read = seen.length;
      waiters.splice(i, 1)[0].resolve(n);
    }
  });
  return {
    all: seen,
    next(match: (n: Notification) => boolean = () => true, timeoutMs = 5000): Promise<Notification> {
      const found = seen.slice(read).find(match);
      if (found) {
        read = seen.indexOf(found) + 1;
        return Promise.resolve(found);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching notification within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ match, resolve: (n) => (clearTimeout(timer), resolve(n)) });
      });
    },
  };
}

export const isScriptNote = (sh: string) => (n: Notification) => n.method === 'blockchain.scripthash.subscribe' && n.params[0] === sh;
export const isHeaderNote = (n: Notification) => n.method === 'blockchain.headers.subscribe';
