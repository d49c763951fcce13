// A stand-in for `bitdrop start` while the real daemon (build/bin/bitdrop.js) is not built yet: the
// same command line, the same stdout contract (a line with http://<56 chars>.onion), TorService
// exactly as lib/node.ts will wire it, and a tiny drop box: PUT /name stores, GET /name returns.
//
//   node <ts loader> test/helpers/tor-standin-daemon.ts start --data-dir D --listen 127.0.0.1:P \
//        --tor managed --torrc-append FILE

import fs from 'fs';
import http from 'http';
import path from 'path';
import { pipeline } from 'stream/promises';
import { TorMode, TorService } from '../../lib/tor';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const dataDir = path.resolve(flag('data-dir') ?? './bitdrop-data');
  const [host, port] = (flag('listen') ?? '127.0.0.1:8080').split(':');
  const files = path.join(dataDir, 'files');
  fs.mkdirSync(files, { recursive: true });

  let onionUrl: string | undefined;
  const server = http.createServer(async (req, res) => {
    const name = path.basename(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = path.join(files, name || 'index');
    try {
      if (req.method === 'PUT') {
        await pipeline(req, fs.createWriteStream(file));
        res.writeHead(201, { 'content-type': 'text/plain' }).end(`${onionUrl ?? ''}/${name}\n`);
      } else if (req.method === 'GET' && name && fs.existsSync(file)) {
        res.writeHead(200, { 'content-length': fs.statSync(file).size });
        await pipeline(fs.createReadStream(file), res);
      } else {
        res.writeHead(name ? 404 : 200, { 'content-type': 'text/plain' }).end(name ? 'not found\n' : 'bitdrop stand-in\n');
      }
    } catch (err) {
      res.destroy(err as Error);
    }
  });
  await new Promise<void>((resolve) => server.listen(Number(port), host, resolve));
  const bound = (server.address() as import('net').AddressInfo).port; // --listen HOST:0 picks a free port

  const tor = new TorService({
    mode: (flag('tor') ?? 'managed') as TorMode,
    dataDir,
    torBinary: 'tor',
    torControl: flag('tor-control'),
    torrcAppend: flag('torrc-append'),
    target: { host, port: bound },
    log: (line) => console.log(line),
  });
  await tor.start();
  onionUrl = tor.onionUrl();
  console.log(`bitdrop listening on http://${host}:${bound}${onionUrl ? ` and ${onionUrl}` : ''}`);

  const shutdown = async () => {
    await tor.stop();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err) => {
  console.error(`bitdrop: ${(err as Error).message}`);
  process.exit(1);
});
