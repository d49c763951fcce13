// An Electrum server that lies: a TCP proxy in front of a real one (the devnet's) that passes every line
// through, except that `tamper` may rewrite a request's answer. Tests use it to play a compromised server.

import net from 'net';

/** An answer as the server gave it; return what the client should get instead. */
export interface Answer {
  result?: unknown;
  error?: unknown;
}
export type Tamper = (method: string, params: unknown[], answer: Answer) => Answer;

export interface LyingElectrum {
  url: string;
  /** requests seen per method */
  counts: Record<string, number>;
  tamper: Tamper;
  close(): Promise<void>;
}

export async function startLyingElectrum(upstreamUrl: string, tamper: Tamper = (_m, _p, a) => a): Promise<LyingElectrum> {
  const [, host, port] = /^tcp:\/\/([^:]+):(\d+)$/.exec(upstreamUrl)!;
  const sockets = new Set<net.Socket>();
  const me: LyingElectrum = { url: '', counts: {}, tamper, close: async () => {} };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    sockets.add(client).add(upstream);
    const asked = new Map<unknown, { method: string; params: unknown[] }>();
    let fromClient = '';
    let fromServer = '';
    client.setEncoding('utf8');
    upstream.setEncoding('utf8');
    client.on('data', (d: string) => {
      fromClient += d;
      let i: number;
      while ((i = fromClient.indexOf('\n')) >= 0) {
        const line = fromClient.slice(0, i);
        fromClient = fromClient.slice(i + 1);
        try {
          const req = JSON.parse(line);
          asked.set(req.id, { method: req.method, params: req.params ?? [] });
          me.counts[req.method] = (me.counts[req.method] ?? 0) + 1;
        } catch {}
        upstream.write(line + '\n');
      }
    });
    upstream.on('data', (d: string) => {
      fromServer += d;
      let i: number;
      while ((i = fromServer.indexOf('\n')) >= 0) {
        const line = fromServer.slice(0, i);
        fromServer = fromServer.slice(i + 1);
        let msg: { id?: unknown; result?: unknown; error?: unknown; method?: string; params?: unknown[] };
        try {
          msg = JSON.parse(line);
        } catch {
          client.write(line + '\n');
          continue;
        }
        const req = asked.get(msg.id);
        if (req && ('result' in msg || 'error' in msg)) {
          asked.delete(msg.id);
          const { result, error, ...rest } = msg;
          msg = { ...rest, ...me.tamper(req.method, req.params, 'error' in msg ? { error } : { result }) };
        } else if (msg.method === 'blockchain.headers.subscribe' && msg.id === undefined) {
          // a new-tip notification is tampered as the answer to a headers.subscribe would be
          const told = me.tamper(msg.method, [], { result: (msg.params ?? [])[0] });
          msg = { ...msg, params: [told.result] };
        }
        client.write(JSON.stringify(msg) + '\n');
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  me.url = `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  me.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(() => r()));
  };
  return me;
}
