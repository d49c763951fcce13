// What the HTTP handlers are handed. Its own file so app.ts and the handlers it composes
// (home, upload, files, views) import it, not each other: lib/http has no import circle.

import type { Config } from '../config';
import type { Store } from '../store';
import type { PaymentGate } from './gate';
import type { HttpObserver } from '../metrics';

export interface AppDeps {
  config: Config;
  store: Store;
  gate?: PaymentGate;
  /** the onion URL once published (the home page's curl line) */
  onion?: () => string | undefined;
  /** counts bytes sent to downloaders (the console's totals) */
  served?: (bytes: number) => void;
  log: (line: string) => void;
  /** told of every answer (metrics: uploads, downloads, 402s, bytes in and out) */
  observe?: HttpObserver;
  /** payments are simulated (the embedded devnet): every page says so */
  simulated?: boolean;
  /** cost pricing (lib/economy): the policy and the price history the home page shows */
  pricing?: () => { mode: string; policy?: string; history: ReadonlyArray<{ day: number; storagePrice: number; transferPrice: number }> } | undefined;
  /** a file's copies on other drop boxes (lib/mirrors); absent when no mirror is configured */
  mirrors?: (id: string) => MirrorLink[];
  /** downloads through mirrors (lib/mirrors): which copy serves a download, and how it went */
  cdn?: {
    pick(id: string, downloadsInFlight: number): { url: string; mirror: string; redirect: boolean } | undefined;
    open(url: string): Promise<import('http').IncomingMessage>;
    proxied(id: string, mirror: string, ok: boolean, why?: string): void;
  };
  /**
   * A mirror's side (lib/mirrors/origin.ts): what the file at another box's URL is (its SHA-256 and size), so
   * that an upload sent as a copy of it (X-Bitdrop-Copy-Of) may keep its id; absent: copies get fresh ids.
   */
  originOf?: (url: string) => Promise<{ sha256: string; size: number }>;
  /** what is routine on the internet (clients gone mid-request, malformed requests): one line each */
  debug?: (line: string) => void;
}

/** A file's copy on another drop box (lib/mirrors), as the file's JSON lists it in `mirrors`. */
export interface MirrorLink {
  /** the file's URL on the mirror (the contract: every entry has it) */
  url: string;
  /** the mirror's own URL */
  mirror: string;
  /** until when this box paid the mirror to keep it (null: a free mirror) */
  paidThrough: string | null;
  /** when the copy was made */
  since: string;
}

/** AppDeps with the gate filled in (the free gate when no price is set). */
export type Deps = Required<Pick<AppDeps, 'gate'>> & AppDeps;
