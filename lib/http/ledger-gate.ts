// The ledger's HTTP face: the PaymentGate for a priced bitdrop, plus the "reserve first" routes.
// The ledger itself offers plain typed methods (lib/ledger/index.ts) and knows nothing of koa.

import type { Context } from 'koa';
import { UserError } from '../errors';
import { tooLarge, type FileManifest } from '../store';
import type { Account, Ledger } from '../ledger';
import type { PaymentGate } from './gate';
import { flavor } from './negotiate';
import { baseUrl } from './views';
import { queryParam } from './params';

const RESERVATION_ROUTE = /^\/reserve\/([A-Za-z0-9_-]{22})$/;

/** A file of a drop is paid through the drop's account. */
const accountId = (m: FileManifest) => m.drop ?? m.id;

export function ledgerGate(ledger: Ledger, maxUploadBytes: number, publicUrl?: string): PaymentGate {
  // The account committed with an upload's manifest, kept for that upload's answer: reading it back costs
  // two LevelDB gets per upload, each a round trip through libuv's thread pool (about a tenth of a paid
  // small upload's time on the event loop, profiled). Keyed by the manifest object, so it lives as long as
  // the request that holds it; manifests read from the store are not in it and read their account.
  const written = new WeakMap<FileManifest, Account>();
  const accountOf = async (m: FileManifest) => written.get(m) ?? ledger.account(accountId(m));
  return {
    admitUpload: (up) => ledger.admitUpload(up.declaredBytes, up.reservation),
    async uploadOps(m, up) {
      const { ops, account } = await ledger.uploadOps(m, up.reservation);
      written.set(m, account);
      return ops;
    },
    uploaded: (m) => {
      accountOf(m).then((a) => a && ledger.hot(a.scriptHash), () => undefined);
    },
    async describe(m: FileManifest) {
      const a = await accountOf(m);
      if (!a) return {};
      // Paid in NMC too: the Namecoin address is assigned on first view; a node that does not answer only
      // leaves it off the page.
      const nmc = await ledger.nmcView(a.id).catch(() => undefined);
      return { ...ledger.view(a), ...(nmc ? { nmc } : {}) };
    },
    openDownload: (m, bytes, probe) => ledger.openDownload(accountId(m), bytes, probe),
    deleteOps: (m) => ledger.deleteOps(m),
    deleted: (m) => ledger.forgetId(m.id),
    async route(ctx: Context) {
      if (ctx.path === '/reserve' && ctx.method === 'POST') {
        const raw = queryParam(ctx, 'size') ?? ctx.get('X-Size');
        const size = Number(raw);
        if (!raw || !Number.isSafeInteger(size) || size < 0) throw new UserError(400, 'say how many bytes to reserve: POST /reserve?size=N');
        if (size > maxUploadBytes) throw tooLarge(maxUploadBytes);
        const r = ledger.reservationView(await ledger.reserve(size));
        const base = baseUrl(ctx, publicUrl);
        const body = {
          reservation: r.reservation,
          size,
          address: r.address,
          amountDue: r.amountDue,
          paymentUri: r.paymentUri,
          expires: r.expires,
          upload: `${base}/?reservation=${r.reservation}`,
          status: `${base}/reserve/${r.reservation}`,
        };
        ctx.status = 201;
        ctx.set('Location', body.status);
        if (flavor(ctx) === 'json') ctx.body = body;
        else {
          ctx.type = 'text/plain; charset=utf-8';
          ctx.body = `pay ${r.amountDue} sats to ${r.address} (${r.paymentUri})\n` +
            `then upload: curl -T FILE '${body.upload}'\nexpires ${body.expires}\n`;
        }
        return true;
      }
      const m = RESERVATION_ROUTE.exec(ctx.path);
      if (m && ctx.method === 'GET') {
        const r = await ledger.reservation(m[1]);
        if (!r) throw new UserError(404, 'no such reservation');
        const { reservation, size, used, expires: _expires, ...view } = r;
        ctx.body = { reservation, size, used, ...view };
        return true;
      }
      return false;
    },
  };
}
