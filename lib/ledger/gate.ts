// The ledger as the HTTP layer's PaymentGate, plus its own routes (reserve first).

import type { Context } from 'koa';
import { UserError } from '../errors';
import { tooLarge, type FileManifest } from '../store';
import type { PaymentGate } from '../http/gate';
import { flavor } from '../http/negotiate';
import { baseUrl } from '../http/views';
import type { Ledger } from './index';

const RESERVATION_ROUTE = /^\/reserve\/([A-Za-z0-9_-]{22})$/;

export function ledgerGate(ledger: Ledger, maxUploadBytes: number, publicUrl?: string): PaymentGate {
  return {
    admitUpload: (up) => ledger.admitUpload(up.declaredBytes, up.reservation),
    uploadOps: (m, up) => ledger.uploadOps(m, up.reservation),
    uploaded: (m) => {
      ledger.account(m.id).then((a) => a && ledger.hot(a.scriptHash), () => undefined);
    },
    async describe(m: FileManifest) {
      const a = await ledger.account(m.id);
      return a ? ledger.view(a) : {};
    },
    openDownload: (m, bytes) => ledger.openDownload(m.id, bytes),
    deleteOps: (m) => ledger.deleteOps(m),
    deleted: (m) => ledger.forgetId(m.id),
    async route(ctx: Context) {
      if (ctx.path === '/reserve' && ctx.method === 'POST') {
        const raw = (ctx.query.size as string | undefined) ?? ctx.get('X-Size');
        const size = Number(raw);
        if (!raw || !Number.isSafeInteger(size) || size < 0) throw new UserError(400, 'say how many bytes to reserve: POST /reserve?size=N');
        if (size > maxUploadBytes) throw tooLarge(maxUploadBytes);
        const a = await ledger.reserve(size);
        const v = ledger.view(a);
        const base = baseUrl(ctx, publicUrl);
        const body = {
          reservation: a.id,
          size,
          address: a.address,
          amountDue: v.amountDue,
          paymentUri: v.paymentUri,
          expires: new Date(a.created + ledger.policy.unpaidTtl).toISOString(),
          upload: `${base}/?reservation=${a.id}`,
          status: `${base}/reserve/${a.id}`,
        };
        ctx.status = 201;
        ctx.set('Location', body.status);
        if (flavor(ctx) === 'json') ctx.body = body;
        else {
          ctx.type = 'text/plain; charset=utf-8';
          ctx.body = `pay ${v.amountDue} sats to ${a.address} (${v.paymentUri})\n` +
            `then upload: curl -T FILE '${body.upload}'\nexpires ${body.expires}\n`;
        }
        return true;
      }
      const m = RESERVATION_ROUTE.exec(ctx.path);
      if (m && ctx.method === 'GET') {
        const a = await ledger.account(m[1]);
        if (!a) throw new UserError(404, 'no such reservation');
        ledger.hot(a.scriptHash);
        ctx.body = { reservation: a.id, size: a.reservedSize ?? a.size, used: a.reservedSize === undefined, ...ledger.view(a) };
        return true;
      }
      return false;
    },
  };
}
