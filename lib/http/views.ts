import type { Context } from 'koa';
import { wellFormedHost } from './params';
import type { FileManifest } from '../store';
import type { Deps } from './deps';
import { mirrorsField } from './mirrors-view';

/**
 * The absolute base URL: the configured one, else the host the client used (an .onion or .bit Host over
 * Tor) when it is well formed, else the address the request came in on (a raw Host never reaches answers).
 */
export function baseUrl(ctx: Context, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  const host = wellFormedHost(ctx.get('Host'));
  if (host) return `${ctx.protocol}://${host}`;
  const { localAddress, localPort } = ctx.req.socket;
  const addr = (localAddress ?? '127.0.0.1').replace(/^::ffff:(?=\d+\.)/, '');
  return `${ctx.protocol}://${addr.includes(':') ? `[${addr}]` : addr}:${localPort}`;
}

export const fileUrl = (ctx: Context, d: Deps, m: FileManifest) =>
  `${baseUrl(ctx, d.config.publicUrl)}/${m.id}/${encodeURIComponent(m.name)}`;

/** A file's JSON: the store's facts plus the payment fields the gate adds. */
export async function fileView(ctx: Context, d: Deps, m: FileManifest): Promise<Record<string, unknown>> {
  return {
    id: m.id,
    url: fileUrl(ctx, d, m),
    name: m.name,
    type: m.type,
    size: m.size,
    sha256: m.sha256,
    created: new Date(m.created).toISOString(),
    ...(await d.gate.describe(m, ctx)),
    ...mirrorsField(d, m.id),
    ...(m.copyOf ? { copyOf: m.copyOf } : {}),
  };
}
