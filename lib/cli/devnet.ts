// `bitdrop devnet pay` and `bitdrop devnet mine` as a person reads them: the txid or block hashes on stdout
// (scripts read those), and on stderr what was done to which file ("file report.pdf: 546 sats pending →
// confirmed, now active"). A payment to a file URL is remembered in the devnet dir (cli-payments.json) so
// that the next `mine` can say which files its blocks confirmed.

import fs from 'fs';
import path from 'path';
import * as bitcoin from 'bitcoinjs-lib';
import { NETWORK } from '../devnet/consensus';

export interface FileFacts {
  url: string;
  id?: string;
  name?: string;
  state?: string;
  pending?: number;
  amountDue?: number;
  address?: string;
  error?: string;
}

interface Remembered { txid: string; sats: number; page: string; label: string }

const memory = (devnetDir: string) => path.join(devnetDir, 'cli-payments.json');
const remembered = (devnetDir: string): Remembered[] => {
  try { return JSON.parse(fs.readFileSync(memory(devnetDir), 'utf8')) as Remembered[]; } catch { return []; }
};
const remember = (devnetDir: string, list: Remembered[]) => fs.writeFileSync(memory(devnetDir), JSON.stringify(list.slice(-200)) + '\n', { mode: 0o600 });

export async function facts(url: string): Promise<FileFacts> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (err) {
    throw new Error(`cannot reach ${url}: ${(err as Error).message}; is the daemon running?`);
  }
  const body = (await res.json().catch(() => ({}))) as FileFacts;
  return { ...body, url };
}

const label = (f: FileFacts) => `file ${f.name ? `“${f.name}” ` : ''}(${f.id ?? f.url})`;

/** What `pay` pays: a file URL's address, or an address of the devnet (bcrt1…). */
export async function payTarget(target: string): Promise<{ address: string; file?: FileFacts }> {
  if (/^https?:\/\//i.test(target)) {
    const f = await facts(target);
    if (!f.address) throw new Error(`${target} has no payment address (${f.error ?? 'it is not a file of a paid bitdrop'})`);
    return { address: f.address, file: f };
  }
  try {
    bitcoin.address.toOutputScript(target, NETWORK);
  } catch {
    throw new Error(`"${target}" is neither a file's URL (http://…/ID) nor a devnet address (bcrt1…)`);
  }
  return { address: target };
}

/** After a payment: waits a little for the daemon to see it and says what it did. */
export async function reportPayment(devnetDir: string, target: { address: string; file?: FileFacts }, sats: number, txid: string): Promise<string> {
  if (!target.file) return `paid ${sats.toLocaleString('en-US')} sats to ${target.address} (transaction ${txid}); confirm it with: bitdrop devnet mine`;
  const before = target.file;
  const page = before.url.replace(/(\/[A-Za-z0-9_-]{22})\/[^/]*$/, '$1');
  remember(devnetDir, [...remembered(devnetDir), { txid, sats, page, label: label(before) }]);
  let now = before;
  for (let i = 0; i < 50 && Number(now.pending ?? 0) <= Number(before.pending ?? 0); i++) {
    await new Promise((r) => setTimeout(r, 100));
    now = await facts(page).catch(() => now);
  }
  const seen = Number(now.pending ?? 0) > Number(before.pending ?? 0);
  return `${label(before)}: paid ${sats.toLocaleString('en-US')} sats (transaction ${txid}), ` +
    (seen ? `now pending; ` : 'not seen by the daemon yet; ') + 'confirm it with: bitdrop devnet mine';
}

/** After mining: which remembered payments the new blocks confirmed, file by file. */
export async function reportMined(devnetDir: string, hashes: string[], height?: number): Promise<string[]> {
  const lines = [`mined ${hashes.length === 1 ? '1 block' : `${hashes.length} blocks`}${height ? ` (tip now at height ${height})` : ''}`];
  const waiting = remembered(devnetDir);
  const left: Remembered[] = [];
  const pages = [...new Set(waiting.map((w) => w.page))];
  for (const page of pages) {
    const mine = waiting.filter((w) => w.page === page);
    const paid = mine.reduce((n, w) => n + w.sats, 0);
    let f = await facts(page).catch((err) => ({ url: page, error: (err as Error).message } as FileFacts));
    for (let i = 0; i < 50 && Number(f.pending ?? 0) > 0 && !f.error; i++) {
      await new Promise((r) => setTimeout(r, 100));
      f = await facts(page).catch(() => f);
    }
    if (f.error || !f.state) { lines.push(`${mine[0].label}: ${f.error ?? 'no longer there'}`); continue; }
    if (Number(f.pending ?? 0) > 0) { lines.push(`${mine[0].label}: ${f.pending} sats still pending (the daemon has not seen the block yet, or more confirmations are needed)`); left.push(...mine); continue; }
    lines.push(`${mine[0].label}: ${paid.toLocaleString('en-US')} sats pending → confirmed, now ${f.state}`);
  }
  remember(devnetDir, left);
  return lines;
}
