// Private drops: v3 onion client authorization (rend-spec-v3 "client authorization", x25519 keys).
// With at least one client, tor encrypts the descriptor to the clients' public keys: without a
// private key nobody can even learn the service's introduction points.
//
//   <dataDir>/tor/clients/<name>.auth      "descriptor:x25519:<base32 public key>" — tor's own
//                                          authorized_clients format, so the folder can be reused by a torrc
//   <dataDir>/tor/clients/<name>.x25519    the base32 private key (mode 0600), kept so `auth list` can
//                                          show the client's line again
//
// A running TorService watches this folder and re-adds the onion when the set of clients changes.

import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { base32Encode } from './base32';
import { TorError } from './control';
import { readServiceId, writePrivate } from './onion-key';
import { privateDir } from './process';

export class ClientAuthError extends TorError {}

export interface OnionClient {
  name: string;
  /** base32 x25519 public key, what ADD_ONION's ClientAuthV3= takes */
  publicKey: string;
  /** base32 x25519 private key: what Tor Browser's "onion service key" prompt asks for */
  privateKey?: string;
  /**
   * The client's line for a .auth_private file in tor's ClientOnionAuthDir:
   * "<56 chars>:descriptor:x25519:<private key>". Only known once the onion address exists (after the
   * first start): tor makes the key, so before that `bitdrop auth list` shows it later.
   */
  line?: string;
}

export const clientsDir = (dataDir: string) => path.join(dataDir, 'tor', 'clients');

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const PUBLIC = /^descriptor:x25519:([A-Z2-7]{52})$/i;

function checkName(name: string): string {
  if (!NAME.test(name)) throw new ClientAuthError(`"${name}" is not a client name (use 1-64 letters, digits, - or _)`);
  return name;
}

function raw(key: crypto.KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from((jwk.d ?? jwk.x)!, 'base64url');
}

export function addClient(dataDir: string, name: string): OnionClient {
  const dir = clientsDir(dataDir);
  const authFile = path.join(dir, `${checkName(name)}.auth`);
  privateDir(dir);
  if (fs.existsSync(authFile)) throw new ClientAuthError(`client "${name}" already exists (remove it first to make a new key)`);
  const pair = crypto.generateKeyPairSync('x25519');
  const publicKey = base32Encode(raw(pair.publicKey));
  const privateKey = base32Encode(raw(pair.privateKey));
  // Private key first: the watcher reacts to .auth, and by then the pair is complete.
  writePrivate(path.join(dir, `${name}.x25519`), privateKey + '\n');
  writePrivate(authFile, `descriptor:x25519:${publicKey}\n`);
  return withLine(dataDir, { name, publicKey, privateKey });
}

export function listClients(dataDir: string): OnionClient[] {
  const dir = clientsDir(dataDir);
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const clients: OnionClient[] = [];
  for (const file of files.filter((f) => f.endsWith('.auth')).sort()) {
    const name = file.slice(0, -'.auth'.length);
    const m = PUBLIC.exec(readTrimmed(path.join(dir, file)) ?? '');
    if (!NAME.test(name) || !m) continue; // not ours, or half-written: ignored rather than fatal
    const privateKey = readTrimmed(path.join(dir, `${name}.x25519`));
    clients.push(withLine(dataDir, { name, publicKey: m[1].toUpperCase(), privateKey }));
  }
  return clients;
}

export function removeClient(dataDir: string, name: string): void {
  const dir = clientsDir(dataDir);
  const authFile = path.join(dir, `${checkName(name)}.auth`);
  if (!fs.existsSync(authFile)) throw new ClientAuthError(`no client named "${name}"`);
  fs.rmSync(authFile);
  fs.rmSync(path.join(dir, `${name}.x25519`), { force: true });
}

/** The public keys ADD_ONION needs, sorted so that an unchanged set compares equal. */
export const clientPublicKeys = (dataDir: string) => listClients(dataDir).map((c) => c.publicKey).sort();

function withLine(dataDir: string, client: OnionClient): OnionClient {
  const serviceId = readServiceId(path.join(dataDir, 'tor'));
  if (serviceId && client.privateKey) client.line = `${serviceId}:descriptor:x25519:${client.privateKey}`;
  return client;
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}
