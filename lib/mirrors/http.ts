// HTTP to other drop boxes: onions and .bit names through tor's SocksPort (the host name goes to tor
// unresolved), loopback URLs directly (tests). One small request function with a deadline and a body cap.

import http from 'http';
import https from 'https';
import type { Readable } from 'stream';
import { socksAgent } from '../net/socks-agent';

export interface MirrorResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Readable | Buffer;
  /** tor's SocksPort, HOST:PORT: needed for .onion and .bit hosts */
  socks?: string;
  timeoutMs?: number;
  /** most body bytes kept; more fails the request */
  maxBody?: number;
}

export const needsTor = (url: string) => /\.(onion|bit)$/i.test(new URL(url).hostname);

const agents = new Map<string, http.Agent>();

/** tor's SOCKS agent for onions and .bit names (one per SocksPort), none for loopback test URLs */
function agentFor(url: string, socks: string | undefined): http.Agent | undefined {
  if (!needsTor(url)) return undefined;
  if (!socks) throw new Error(`${new URL(url).host} is reached through tor, which is off (--tor off)`);
  const agent = agents.get(socks) ?? socksAgent(socks);
  agents.set(socks, agent);
  return agent;
}

export function mirrorRequest(url: string, o: RequestOptions = {}): Promise<MirrorResponse> {
  const u = new URL(url);
  let agent: http.Agent | undefined;
  try { agent = agentFor(url, o.socks); } catch (err) { return Promise.reject(err); }
  const lib = u.protocol === 'https:' ? https : http;
  const maxBody = o.maxBody ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, { method: o.method ?? 'GET', headers: o.headers, agent }, (res) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > maxBody) { req.destroy(new Error(`${u.host} answered more than ${maxBody} bytes`)); return; }
        parts.push(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.setTimeout(o.timeoutMs ?? 60_000, () => req.destroy(new Error(`${u.host} did not answer within ${o.timeoutMs ?? 60_000} ms`)));
    req.on('error', reject);
    if (!o.body) req.end();
    else if (Buffer.isBuffer(o.body)) req.end(o.body);
    else {
      o.body.on('error', (err) => req.destroy(err));
      o.body.pipe(req);
    }
  });
}

/** A GET whose body is read by the caller as it arrives (the CDN's proxy). */
export function mirrorStream(url: string, o: Pick<RequestOptions, 'socks' | 'timeoutMs'> = {}): Promise<http.IncomingMessage> {
  const u = new URL(url);
  let agent: http.Agent | undefined;
  try { agent = agentFor(url, o.socks); } catch (err) { return Promise.reject(err); }
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(u, { agent }, resolve);
    req.setTimeout(o.timeoutMs ?? 120_000, () => req.destroy(new Error(`${u.host} went silent for ${o.timeoutMs ?? 120_000} ms`)));
    req.on('error', reject);
  });
}

export function jsonOf(res: MirrorResponse): Record<string, unknown> {
  try {
    const v = JSON.parse(res.body.toString('utf8'));
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}
