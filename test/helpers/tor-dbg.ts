import fs from 'fs';
import path from 'path';
import { execFile } from 'child_process';
import { TorService } from '../../lib/tor';
import { startTorNetwork, freePorts } from './tor-network';
import { tmpDir } from './tor-lone';
import http from 'http';

(async () => {
  const t0 = Date.now();
  const el = () => ((Date.now() - t0) / 1000).toFixed(1);
  const net = await startTorNetwork();
  const [port] = await freePorts(1);
  const server = http.createServer((req, res) => res.end('hi\n')).listen(port, '127.0.0.1');
  const dataDir = tmpDir('dbg');
  const tor = new TorService({ mode: 'managed', dataDir, torBinary: 'tor', torrcAppend: net.torrcAppendFile(), target: { host: '127.0.0.1', port }, log: (l) => console.log(el(), l) });
  await tor.start();
  const url = tor.onionUrl()!;
  const client = await net.startClient();
  const curl = () => new Promise<string>((res) => execFile('curl', ['-sS', '--max-time', '20', '--socks5-hostname', `127.0.0.1:${client.socksPort}`, url + '/'], (err, _o, stderr) => res(err ? stderr.trim().slice(-6) : 'ok')));
  for (let i = 0; i < 200 && (await curl()) !== 'ok'; i++) await new Promise((r) => setTimeout(r, 1000));
  console.log(el(), 'reachable', JSON.stringify(tor.status()));
  for (let round = 0; round < 4; round++) {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'tor', 'tor.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    const k = Date.now();
    let r = '';
    for (let i = 0; i < 90; i++) { r = await curl(); if (r === 'ok') break; await new Promise((r) => setTimeout(r, 1000)); }
    console.log(el(), `round ${round}: ${r} after ${((Date.now() - k) / 1000).toFixed(1)} s`, JSON.stringify(tor.status()));
    if (r !== 'ok') { console.log(fs.readFileSync(path.join(dataDir, 'tor', 'notice.log'), 'utf8').split('\n').slice(-40).join('\n')); break; }
  }
  await tor.stop(); server.close(); await client.stop(); await net.stop();
})();
