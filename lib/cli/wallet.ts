// `bitdrop wallet address|balance|history`: the operating wallet (lib/wallet). The address is read from the
// key file (made on first use, so the operator can fund it before starting); balance and history come from
// the running daemon's console, which holds the database and an Electrum session.

import fs from 'fs';
import type { NetworkName } from '../config';
import { commandName } from '../config';
import { adminTokenPath, runtimePath, type RuntimeInfo } from '../node';
import { loadWalletKey } from '../wallet/key';

export function walletAddress(dataDir: string, network: NetworkName): string {
  return loadWalletKey(dataDir, network).address;
}

export async function fetchWallet(dataDir: string): Promise<Record<string, unknown>> {
  let info: RuntimeInfo;
  try {
    info = JSON.parse(fs.readFileSync(runtimePath(dataDir), 'utf8'));
  } catch {
    throw new Error(`no bitdrop is running with data dir ${dataDir}; the wallet's balance and history need it (${commandName()} start --data-dir ${dataDir})`);
  }
  const token = fs.readFileSync(adminTokenPath(dataDir), 'utf8').trim();
  let res: Response;
  try {
    res = await fetch(`${info.console}/wallet`, { headers: { 'X-Admin-Token': token, Accept: 'application/json' } });
  } catch {
    throw new Error(`bitdrop (pid ${info.pid}) does not answer on its console ${info.console}; is it still running?`);
  }
  if (res.status === 404) throw new Error('this bitdrop runs no operating wallet: it needs payments on (--xpub and --electrum, or the devnet) and a --mirror, or a wallet key (bitdrop wallet address)');
  if (!res.ok) throw new Error(`bitdrop answered ${res.status}: ${(await res.text()).trim()}`);
  return (await res.json()) as Record<string, unknown>;
}

export function formatBalance(w: Record<string, unknown>): string[] {
  return [
    `address    ${w.address}`,
    `confirmed  ${w.confirmed} sats (proven)`,
    `change     ${w.change} sats (our own, unconfirmed)`,
    `pending    ${w.pending} sats (not spendable yet)`,
    `spent      ${w.spentToday} of ${w.spendLimit} sats in the last 24 hours (--spend-limit)`,
  ];
}

export function formatHistory(w: Record<string, unknown>): string[] {
  const rows = (w.history as Array<Record<string, unknown>>) ?? [];
  if (rows.length === 0) return ['no transactions yet'];
  return rows.map((r) => [
    String(r.height || 'unconfirmed').padEnd(12),
    String(r.sats).padStart(12),
    r.txid,
    r.kind === 'spent' ? `${r.state} to ${r.to} (fee ${r.fee}) ${r.purpose}` : 'received',
  ].join('  '));
}
