// Two men in the middle for `bitdrop get` tests: a TCP relay that records every byte a client sends
// (to prove what never left it), and an HTTP proxy that lies about file bytes (one byte flipped).

import http from 'http';
import net from 'net';

export interface Recorder {
  url: string;
  /** everything clients sent through it */
  sent(): Buffer;
  /** bytes the server sent back */
  received(): number;
  close(): Promise<void>;
}

export async function recordingRelay(target: URL): Promise<Recorder> {
  const chunks: Buffer[] = [];
  let received = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client); sockets.add(upstream);
    client.on('data', (c) => chunks.push(Buffer.from(c)));
    upstream.on('data', (c) => { received += c.length; });
    client.pipe(upstream).pipe(client);
    const done = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', done); upstream.on('error', done); client.on('close', done); upstream.on('close', done);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent: () => Buffer.concat(chunks),
    received: () => received,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/** Forwards HTTP to `target`, passing JSON as is and flipping one byte (at body offset 1000) of anything else. */
export async function lyingProxy(target: URL): Promise<{ url: string; lies: () => number; close: () => Promise<void> }> {
  let lies = 0;
  const server = http.createServer((req, res) => {
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      const lie = /^(200|206)$/.test(String(ur.statusCode)) && !/json|html/.test(String(ur.headers['content-type']));
      let at = 0;
      ur.on('data', (c: Buffer) => {
        if (lie && at <= 1000 && at + c.length > 1000) { c = Buffer.from(c); c[1000 - at] ^= 0x01; lies++; }
        at += c.length;
        res.write(c);
      });
      ur.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, lies: () => lies, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}
