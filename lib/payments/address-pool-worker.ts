// The address pool's worker thread: derives file addresses with the same function the daemon uses inline
// (deriveFileAddress), a batch per request, so the event loop never derives while the pool lasts.
// Protocol: { from, count } in; { from, entries: [address, scriptHash][] } or { error } out.

import os from 'os';
import { parentPort, workerData } from 'worker_threads';
import { deriveFileAddress, parseXpub } from './xpub';
import type { NetworkName } from '../config';

const { xpub, network } = workerData as { xpub: string; network: NetworkName };
const key = parseXpub(xpub, network);

// Lowest CPU priority for this thread only (on Linux, setpriority of "0" is the calling thread): a refill
// during a burst of uploads takes the CPU the event loop, LevelDB and the clients leave over.
try { os.setPriority(19); } catch { /* not allowed here: normal priority */ }

parentPort!.on('message', ({ from, count }: { from: number; count: number }) => {
  try {
    const entries: [string, string][] = [];
    for (let i = from; i < from + count; i++) {
      const a = deriveFileAddress(key, i);
      entries.push([a.address, a.scriptHash]);
    }
    parentPort!.postMessage({ from, entries });
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
});
