// What the HTTP handlers are handed. Its own file so app.ts and the handlers it composes
// (home, upload, files, views) import it, not each other: lib/http has no import circle.

import type { Config } from '../config';
import type { Store } from '../store';
import type { PaymentGate } from './gate';

export interface AppDeps {
  config: Config;
  store: Store;
  gate?: PaymentGate;
  /** the daemon's full status (bitdrop status); answered only with the admin token */
  status: () => Promise<Record<string, unknown>>;
  adminToken: string;
  log: (line: string) => void;
}

/** AppDeps with the gate filled in (the free gate when no price is set). */
export type Deps = Required<Pick<AppDeps, 'gate'>> & AppDeps;
