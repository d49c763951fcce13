// `bitdrop books [--csv]`: the books, from the running daemon's console, or — when none runs — read from
// the data dir's store directly (an accountant's copy of a stopped box).

import fs from 'fs';
import { adminTokenPath, runtimePath, type RuntimeInfo } from '../node';
import { Store } from '../store';
import { layout, PREFIX } from '../store/layout';
import { booksCsv, booksTable, readCosts, summarize, type BookRow } from '../economy';

export async function fetchBooks(dataDir: string, opts: { csv?: boolean; json?: boolean; days?: number; costs?: string }): Promise<string> {
  let info: RuntimeInfo | undefined;
  try { info = JSON.parse(fs.readFileSync(runtimePath(dataDir), 'utf8')); } catch { info = undefined; }
  const query = opts.days ? `?days=${opts.days}` : '';
  if (info) {
    const token = fs.readFileSync(adminTokenPath(dataDir), 'utf8').trim();
    const accept = opts.json ? 'application/json' : 'text/plain';
    try {
      const res = await fetch(`${info.console}/books${opts.csv ? '.csv' : ''}${query}`, { headers: { 'X-Admin-Token': token, Accept: accept } });
      const body = await res.text();
      if (!res.ok) throw new Error(`bitdrop answered ${res.status}: ${body.trim()}`);
      return opts.json ? JSON.stringify(JSON.parse(body), null, 2) + '\n' : body;
    } catch (err) {
      if ((err as Error).message.startsWith('bitdrop answered')) throw err;
      // not answering: a stale runtime file after a kill; read the store below
    }
  }
  if (!fs.existsSync(dataDir)) throw new Error(`no data dir ${dataDir}`);
  const store = await Store.open({ dir: dataDir });
  try {
    let rows: BookRow[] = [];
    for await (const v of store.db.values(layout.range(PREFIX.book))) rows.push(JSON.parse(v.toString()));
    if (opts.days) rows = rows.slice(-opts.days);
    if (opts.csv) return booksCsv(rows);
    const summary = summarize(rows, opts.costs ? readCosts(opts.costs) : undefined);
    return opts.json ? JSON.stringify({ summary, rows }, null, 2) + '\n' : booksTable(rows, summary);
  } finally {
    await store.close();
  }
}
