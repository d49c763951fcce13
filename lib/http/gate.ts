// What the HTTP layer asks of payments. lib/node.ts hands the app either the ledger's gate or the free one;
// the HTTP code never imports the ledger itself.

import type { Context } from 'koa';
import { UserError } from '../errors';
import type { BatchOp, FileManifest } from '../store';

export interface DownloadTicket {
  /** Called exactly once when the response ends, with the bytes actually sent. */
  settle(bytesSent: number): Promise<void>;
}

export interface UploadContext {
  /** declared size (Content-Length of a PUT), when known */
  declaredBytes?: number;
  /** a reservation id from "reserve first" (`?reservation=` or `X-Reservation`) */
  reservation?: string;
}

export interface PaymentGate {
  /** Refuses an upload before any byte is stored (unpaid quota full, unknown reservation). */
  admitUpload(up: UploadContext): Promise<void>;
  /** Extra writes committed atomically with the new manifest; may still refuse (throw). */
  uploadOps(manifest: FileManifest, up: UploadContext): Promise<BatchOp[]>;
  /** After the upload is committed (start watching its address). */
  uploaded(manifest: FileManifest): void;
  /** Payment fields of a file's JSON: state, address, amountDue, balance, paidThrough … */
  describe(manifest: FileManifest, ctx?: Context): Promise<Record<string, unknown>>;
  /**
   * Debits `bytes` from the balance (durably, before any byte is sent) for a download, or throws UserError
   * 402 with how to pay; the ticket refunds what was not sent. `probe` (HEAD) checks without debiting.
   */
  openDownload(manifest: FileManifest, bytes: number, probe?: boolean): Promise<DownloadTicket>;
  /** Extra writes committed atomically with a deletion. */
  deleteOps(manifest: FileManifest): Promise<BatchOp[]>;
  /** After the deletion is committed (stop watching its address). */
  deleted(manifest: FileManifest): void;
  /** Payment routes of its own (reserve first); return true when handled. */
  route?(ctx: Context): Promise<boolean>;
}

/** Both prices zero: a free drop box. */
export const freeGate: PaymentGate = {
  async admitUpload(up) {
    if (up.reservation) throw new UserError(400, 'this bitdrop is free: uploads need no reservation');
  },
  async uploadOps() { return []; },
  uploaded() {},
  async describe() { return {}; },
  async openDownload() { return { async settle() {} }; },
  async deleteOps() { return []; },
  deleted() {},
};
