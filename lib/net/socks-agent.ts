// An http.Agent that opens every connection through a SOCKS5 proxy (tor's SocksPort), letting the proxy
// resolve the host name — which .onion addresses need.

import http from 'http';
import type { Duplex } from 'stream';
import { SocksClient } from 'socks';

/**
 * `isolation`: a SOCKS username (and password) for this agent's connections. tor's IsolateSOCKSAuth (on by
 * default) never shares a circuit between streams with different credentials, so agents with different
 * names get different circuits (`bitdrop get -j N` uses one per stream).
 */
export function socksAgent(proxy: string, isolation?: string): http.Agent {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(proxy);
  if (!m) throw new Error(`--socks ${proxy}: expected HOST:PORT (tor's is usually 127.0.0.1:9050)`);
  const [, host, port] = m;
  const agent = new http.Agent({ keepAlive: false });
  (agent as unknown as { createConnection: unknown }).createConnection = (
    opts: { host?: string; port?: number | string },
    cb: (err: Error | null, socket?: Duplex) => void,
  ) => {
    SocksClient.createConnection({
      proxy: { host, port: Number(port), type: 5, ...(isolation ? { userId: isolation, password: isolation } : {}) },
      command: 'connect',
      destination: { host: opts.host ?? 'localhost', port: Number(opts.port ?? 80) },
      timeout: 120_000,
    }).then((info) => cb(null, info.socket), (err: Error) => cb(new Error(`through SOCKS ${proxy}: ${err.message}`)));
    return undefined;
  };
  return agent;
}
