// Asking V8 for a collection. Buffers (socket reads, read slices, slots) live outside V8's heap, and V8
// counts them only loosely: dead ones pile up to tens of MiB before it collects by itself (BENCHMARKS.md).

import v8 from 'v8';
import vm from 'vm';

type Gc = (opts?: { type: 'major' | 'minor' }) => void;
let gc: Gc | undefined;
/**
 * A garbage collection: global.gc when node runs with --expose-gc, else V8's gc exposed on demand. Full by
 * default; `minor` collects only the young generation (about a millisecond here).
 */
export function collectGarbage(type: 'major' | 'minor' = 'major') {
  try {
    if (!gc) {
      const exposed = (globalThis as { gc?: Gc }).gc;
      if (exposed) gc = exposed;
      else {
        v8.setFlagsFromString('--expose-gc');
        gc = vm.runInNewContext('gc') as Gc;
      }
    }
    // A bare gc() is the full, synchronous collection the memory tests were measured with.
    if (type === 'minor') gc({ type });
    else gc();
  } catch {
    gc = () => {};
  }
}

/**
 * Counts the bytes of new buffers that die young (socket reads copied elsewhere, read slices past a pool)
 * and asks for a young-generation collection each time `everyBytes` more were counted.
 */
export function youngCollector(everyBytes: number): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    if ((since += bytes) < everyBytes) return;
    since = 0;
    collectGarbage('minor');
  };
}
