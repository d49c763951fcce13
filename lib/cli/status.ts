// `bitdrop status`: asks the running daemon's console (found through its data dir) for its state, the
// same object the console page shows.

import fs from 'fs';
import { commandName } from '../config';
import { adminTokenPath, runtimePath, type RuntimeInfo } from '../node';
export { formatStatus } from '../http/console';

export async function fetchStatus(dataDir: string): Promise<Record<string, unknown>> {
  let info: RuntimeInfo;
  try {
    info = JSON.parse(fs.readFileSync(runtimePath(dataDir), 'utf8'));
  } catch {
    throw new Error(`no bitdrop is running with data dir ${dataDir} (start one with: ${commandName()} start --data-dir ${dataDir})`);
  }
  const token = fs.readFileSync(adminTokenPath(dataDir), 'utf8').trim();
  let res: Response;
  try {
    res = await fetch(`${info.console}/status`, { headers: { 'X-Admin-Token': token, Accept: 'application/json' } });
  } catch {
    throw new Error(`bitdrop (pid ${info.pid}) does not answer on its console ${info.console}; is it still running?`);
  }
  if (!res.ok) throw new Error(`bitdrop answered ${res.status}: ${(await res.text()).trim()}`);
  return (await res.json()) as Record<string, unknown>;
}
