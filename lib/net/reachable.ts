// Whether something listens at HOST:PORT (a TCP connect, closed at once): lets a command say "tor is not
// running" in one line instead of failing later with a connection error deep in a protocol.

import net from 'net';

export function tcpReachable(host: string, port: number, timeoutMs = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
