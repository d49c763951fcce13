// `bitdrop status`: asks the running daemon (found through its data dir) for its state.

import fs from 'fs';
import { adminTokenPath, runtimePath, type RuntimeInfo } from '../node';

export async function fetchStatus(dataDir: string): Promise<Record<string, unknown>> {
  let info: RuntimeInfo;
  try {
    info = JSON.parse(fs.readFileSync(runtimePath(dataDir), 'utf8'));
  } catch {
    throw new Error(`no bitdrop is running with data dir ${dataDir} (start one with: bitdrop start --data-dir ${dataDir})`);
  }
  const token = fs.readFileSync(adminTokenPath(dataDir), 'utf8').trim();
  let res: Response;
  try {
    res = await fetch(`${info.url}/status`, { headers: { 'X-Admin-Token': token, Accept: 'application/json' } });
  } catch {
    throw new Error(`bitdrop (pid ${info.pid}) does not answer at ${info.url}; is it still running?`);
  }
  if (!res.ok) throw new Error(`bitdrop answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Human-readable lines of a status object: nested objects flatten to dotted keys. */
export function formatStatus(status: Record<string, unknown>, prefix = ''): string[] {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(status)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) lines.push(...formatStatus(v as Record<string, unknown>, `${prefix}${k}.`));
    else lines.push(`${(prefix + k).padEnd(24)} ${Array.isArray(v) ? v.join(', ') : v}`);
  }
  return lines;
}
