// Temporary directories for tests. Each is removed when its test file ends, passed or failed: through the
// root test's teardown (after every subtest's own teardown has stopped the daemons and tors using it), and
// at process exit should tap's teardown not run (an uncaught error). Pass the test to remove it as soon as
// that test ends. `scripts/tmp-guard` (run by `npm test`) fails the run listing anything left behind.

import fs from 'fs';
import os from 'os';
import path from 'path';
import tap, { type Test } from 'tap';

const made = new Set<string>();
let hooked = false;

function remove(dir: string): void {
  made.delete(dir);
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    // a mount still on it (a test that did not unmount): the guard will name it
  }
}

function removeAll(): void {
  for (const dir of [...made]) remove(dir);
}

export function tmpDir(prefix = 'bitdrop-test-', t?: Pick<Test, 'teardown'>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.add(dir);
  if (!hooked) {
    hooked = true;
    tap.teardown(removeAll);
    process.once('exit', removeAll);
  }
  t?.teardown(() => remove(dir));
  return dir;
}
