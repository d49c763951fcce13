import type { Context } from 'koa';
import type { FileManifest } from '../store';
import type { Deps } from './deps';

/** The absolute base URL: the configured one, else what the client used (an .onion Host over Tor). */
export function baseUrl(ctx: Context, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  return `${ctx.protocol}://${ctx.host}`;
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
  };
}
