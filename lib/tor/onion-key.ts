// The onion service's identity: tor makes the ed25519 key once (ADD_ONION NEW:ED25519-V3), we keep
// it and hand it back on every start, so the address never changes. Losing this file loses the address.
//
//   <dataDir>/tor/onion_ed25519.key   "ED25519-V3:<base64>" exactly as ADD_ONION returned it (mode 0600)
//   <dataDir>/tor/hostname            "<56 chars>.onion", a readable copy of the address (derived from the key)

import fs from 'fs';
import path from 'path';
import { TorError } from './control';

export interface OnionKey {
  /** what ADD_ONION takes: "ED25519-V3:<base64 of the 64-byte expanded secret key>" */
  blob: string;
  /** the 56-character service id, when we have seen tor derive it */
  serviceId?: string;
}

export const onionKeyFile = (torDir: string) => path.join(torDir, 'onion_ed25519.key');
export const hostnameFile = (torDir: string) => path.join(torDir, 'hostname');

const KEY = /^ED25519-V3:[A-Za-z0-9+/]{86}==$/;
const SERVICE_ID = /^[a-z2-7]{56}$/;

export function readOnionKey(torDir: string, log?: (line: string) => void): OnionKey | undefined {
  const file = onionKeyFile(torDir);
  let blob: string;
  try {
    blob = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TorError(`cannot read the onion key ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  // Never replace a damaged key silently: a new key is a new address.
  if (!KEY.test(blob)) throw new TorError(`the onion key ${file} is damaged; restore it from a backup, or move it away to get a new address`);
  if ((fs.statSync(file).mode & 0o077) !== 0) {
    fs.chmodSync(file, 0o600);
    log?.(`tor: ${file} was readable by others; it is now mode 0600`);
  }
  return { blob, serviceId: readServiceId(torDir) };
}

export function readServiceId(torDir: string): string | undefined {
  try {
    const id = fs.readFileSync(hostnameFile(torDir), 'utf8').trim().replace(/\.onion$/, '');
    return SERVICE_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

export function writeOnionKey(torDir: string, blob: string): void {
  if (!KEY.test(blob)) throw new TorError('tor returned an onion key bitdrop does not recognise');
  writePrivate(onionKeyFile(torDir), blob + '\n');
}

export function writeServiceId(torDir: string, serviceId: string): void {
  writePrivate(hostnameFile(torDir), `${serviceId}.onion\n`);
}

/** Write to a temporary file created 0600, then rename: a crash never leaves half a key. */
export function writePrivate(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
