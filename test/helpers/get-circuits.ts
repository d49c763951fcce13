// Part of test/tor-network.test.ts (its private Tor network and onion are the expensive part, so this
// rides on them): `bitdrop upload --encrypt` through tor, then `bitdrop get -j 4` through the client
// tor, watching its control port: the ranges travel on distinct circuits (one SOCKS username each,
// IsolateSOCKSAuth), and the file comes back decrypted and byte-identical.

import { execFile } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import type { Test } from 'tap';
import { ControlPort } from '../../lib/tor/control';
import type { TorClient } from './tor-network';

const CLI = path.resolve(__dirname, '..', '..', 'build', 'bin', 'bitdrop.js');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], { timeout: 240_000, maxBuffer: 1 << 20 },
    (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr })));
}

export async function getOverCircuits(t: Test, client: TorClient, onionUrl: string, dir: string) {
  const file = path.join(dir, 'circuits.bin');
  fs.writeFileSync(file, crypto.randomBytes(4 * 1024 * 1024));
  const socks = `127.0.0.1:${client.socksPort}`;
  const up = await cli(['upload', '--encrypt', file, '--url', `${onionUrl}/`, '--socks', socks]);
  t.equal(up.code, 0, `upload --encrypt over tor: ${up.stderr}`);
  const link = up.stdout.split('\n')[0];
  t.match(link, new RegExp(`^${onionUrl}/[A-Za-z0-9_-]{22}#AGE-SECRET-KEY-1`));

  const [host, port] = client.controlArg().split(':');
  const control = await ControlPort.connect({ host, port: Number(port) });
  await control.authenticate();
  const onionHost = new URL(onionUrl).hostname;
  const circuits = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const status = await control.getInfo('stream-status').catch(() => '');
      for (const line of status.split('\n')) {
        // StreamID StreamStatus CircuitID Target
        const [, state, circ, target] = line.trim().split(/\s+/);
        if (target?.startsWith(onionHost) && circ && circ !== '0' && /SUCCEEDED/.test(state)) circuits.add(circ);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const out = path.join(dir, 'circuits.out');
  // a rate limit keeps the four streams open long enough to be seen together
  const got = await cli(['get', link, '-j', '4', '--socks', socks, '-o', out, '--limit-rate', String(1024 * 1024)]);
  watching = false;
  await watcher;
  control.close();
  t.equal(got.code, 0, `bitdrop get -j 4 over tor: ${got.stderr}`);
  t.equal(crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex'),
    crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), 'decrypted, byte-identical');
  t.ok(circuits.size >= 4, `the ranges used ${circuits.size} distinct circuits (tor's stream-status): ${[...circuits].join(', ')}`);
}
