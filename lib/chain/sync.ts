// Brings a HeaderChain up to a server's tip over the Electrum protocol: find where the server's chain meets
// ours (probing back exponentially), then download the rest in chunks of up to 2016 headers. Everything the
// server sends goes through HeaderChain.accept; a rule broken is a ChainError naming the header.

import { ParseError } from './bytes';
import { ChainError, NoConnection, type HeaderChain } from './chain';
import { parseHeader, parseHeaders, type Header } from './header';

/** The JSON-RPC call of an Electrum client (lib/payments' ElectrumClient.request, or a one-off session). */
export type ElectrumRequest = (method: string, params: unknown[]) => Promise<unknown>;

const CHUNK = 2016;
/** a reorg deeper than this is refused as implausible (Electrum's limit for forks it follows is similar) */
const MAX_REORG = 4 * CHUNK;

export interface ServerTip {
  height: number;
  header: Header;
}

/** Parses a `blockchain.headers.subscribe` answer or notification ({height, hex}). */
export function parseTip(chain: HeaderChain, x: unknown): ServerTip {
  const t = x as { height?: unknown; hex?: unknown };
  if (!t || !Number.isSafeInteger(t.height) || (t.height as number) < 0 || typeof t.hex !== 'string') throw new ChainError('headers.subscribe: malformed answer');
  return { height: t.height as number, header: decodeHex(chain, t.hex) };
}

function decodeHex(chain: HeaderChain, hex: unknown, many = false): Header[] & Header {
  if (typeof hex !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(hex)) throw new ChainError('server sent a header that is not hex');
  try {
    const buf = Buffer.from(hex, 'hex');
    const aux = !!chain.params.auxpow;
    return (many ? parseHeaders(buf, aux) : parseHeader(buf, aux)) as Header[] & Header;
  } catch (err) {
    if (err instanceof ParseError) throw new ChainError(`server sent an unreadable header: ${err.message}`);
    throw err;
  }
}

export async function fetchHeaders(chain: HeaderChain, request: ElectrumRequest, start: number, count: number): Promise<Header[]> {
  const answer = (await request('blockchain.block.headers', [start, count])) as { hex?: unknown; headers?: unknown; count?: unknown } | null;
  if (!answer || typeof answer !== 'object') throw new ChainError('block.headers: malformed answer');
  let headers: Header[];
  if (Array.isArray(answer.headers)) headers = answer.headers.map((h) => decodeHex(chain, h));
  else headers = decodeHex(chain, answer.hex ?? '', true);
  if (answer.count !== headers.length || headers.length > count) throw new ChainError(`block.headers: count ${answer.count} does not match the ${headers.length} headers sent`);
  return headers;
}

async function fetchHeader(chain: HeaderChain, request: ElectrumRequest, height: number): Promise<Header> {
  return decodeHex(chain, await request('blockchain.block.header', [height]));
}

/**
 * Syncs `chain` to `tip` (the server's announced tip). Throws ChainError when the server's headers break the
 * rules or its tip does not match the headers it serves; transport errors pass through unchanged.
 */
export async function syncChain(chain: HeaderChain, request: ElectrumRequest, tip: ServerTip): Promise<void> {
  if (!chain.anchored) {
    // a checkpoint-root anchor: the server proves the anchor block against the root we ship
    const h = chain.base;
    const proof = (await request('blockchain.block.header', [h, h])) as { header?: unknown; branch?: unknown; root?: unknown } | null;
    if (!proof || typeof proof.header !== 'string' || !/^([0-9a-fA-F]{2}){80,}$/.test(proof.header)) throw new ChainError(`checkpoint ${h}: malformed proof`);
    chain.establishAnchor(Buffer.from(proof.header, 'hex'), proof.branch, proof.root);
  }
  if (chain.hashAt(tip.height) === tip.header.hash) return; // nothing new (or a tip we already passed)
  // where do we agree? probe back from the lower of the two tips
  let probe = Math.min(chain.height, tip.height - 1);
  let step = 1;
  for (;;) {
    if (probe <= chain.base) {
      probe = chain.base;
      const h = probe === tip.height ? tip.header : await fetchHeader(chain, request, probe).catch(anchorMissing(probe));
      if (h.hash !== chain.hashAt(probe)) throw new ChainError(`server's block ${probe} is ${h.hash}, not our anchor ${chain.hashAt(probe)}: another network, or a chain that forks below our checkpoint`);
      break;
    }
    const h = await fetchHeader(chain, request, probe);
    if (h.hash === chain.hashAt(probe)) break;
    if (chain.height - probe > MAX_REORG) throw new ChainError(`server's chain forks from ours more than ${MAX_REORG} blocks deep`);
    probe -= step;
    step *= 2;
  }
  // download probe+1 .. tip; a reorg branch is taken whole (its work is compared with what it replaces)
  const reorg = probe < chain.height;
  const branch: Header[] = [];
  for (let start = probe + 1; start <= tip.height; ) {
    const got = await fetchHeaders(chain, request, start, Math.min(CHUNK, tip.height - start + 1));
    if (got.length === 0) throw new ChainError(`block.headers from ${start}: nothing, though the server's tip is ${tip.height}`);
    if (reorg) branch.push(...got);
    else accept(chain, got, start);
    start += got.length;
  }
  if (reorg) accept(chain, branch, probe + 1);
  if (chain.hashAt(tip.height) !== tip.header.hash) throw new ChainError(`server announced tip ${tip.height} ${tip.header.hash} but served a chain with ${chain.hashAt(tip.height) ?? 'nothing'} there`);
}

function accept(chain: HeaderChain, headers: Header[], start: number): void {
  try {
    chain.accept(headers, start);
  } catch (err) {
    if (err instanceof NoConnection) throw new ChainError(`server's headers from ${start} do not link to its own block ${start - 1}`);
    throw err;
  }
}

const anchorMissing = (h: number) => (err: Error) => {
  throw new ChainError(`server cannot give block ${h}, our anchor (${err.message})`);
};
