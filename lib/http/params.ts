// Reading what a client sent, when it may be repeated or oddly typed. koa gives a repeated query parameter
// as an array (?token=a&token=b); the handlers want one string or a clear 400.

import type { Context } from 'koa';
import { UserError } from '../errors';

/** One query parameter: undefined when absent, a 400 with one line when given more than once. */
export function queryParam(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new UserError(400, `?${name}= was given ${v.length} times; give it once`);
  return v;
}

/** A hostname (letters, digits, hyphens in dot-separated labels: example.bit, *.onion, 127.0.0.1), or [IPv6]. */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;

/** The Host header when it is a well-formed host[:port], else undefined (never echo it raw). */
export function wellFormedHost(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return undefined;
  const [, name, port] = m;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined;
  if (!HOSTNAME.test(name) && !IPV6.test(name)) return undefined;
  return host;
}
