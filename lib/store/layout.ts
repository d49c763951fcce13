/*
 * The whole LevelDB key space of bitdrop, in one place.
 *
 * Keys are binary: a one-byte ASCII prefix, then fixed-width fields. Values are JSON unless noted.
 *
 *   V                     -> { version }                      schema version of this database
 *   f[id]                 -> FileManifest                     one uploaded file (id = 22-char base64url)
 *   c[sha256:32]          -> uint32 BE refcount               how many manifests list this chunk
 *   b[sha256:32]          -> raw bytes                        chunk payload: every chunk with the "level" blob
 *                                                             backend, chunks ≤ 64 KiB (small files) with both
 *   a[id]                 -> Account                          a file's payment account (ledger); before its
 *                                                             upload, a reservation's (same id: reserve first)
 *   s[scripthash:32]      -> id                               which file an Electrum scripthash belongs to
 *   x[when:8 BE][id]      -> ''                               expiry index: when the ledger must next look at
 *                                                             the file (unpaid TTL or end of grace), ordered by time
 *   o[id][ticket:8]       -> uint64 BE bytes                  an open download: bytes already debited from the
 *                                                             file's account (Account.sentBytes) before the first
 *                                                             byte left, in the same synced batch; deleted with the
 *                                                             refund of what was not sent when the download ends.
 *                                                             One left at start-up was cut by a crash: it is
 *                                                             settled as charged in full (the key is dropped, the
 *                                                             debit stands), never free
 *   d[id]                 -> Drop                             several files uploaded together: member ids; the
 *                                                             drop id is also their payment account's id
 *   t[id]                 -> { deleted, why }                 tombstone of a deleted file or drop (its URL answers 410)
 *   m[id]                 -> ''                               maturing: the account has payments not confirmed
 *                                                             enough yet, so a new block may change it (ledger)
 *   n                     -> uint32 BE                        next address derivation index
 *   p[index:4 BE]         -> scripthash:32 ‖ address ASCII    an address derived ahead (lib/payments/address-pool):
 *                                                             the pool holds the indices [n, k[addressPool].end);
 *                                                             an entry is deleted in the batch of the account that
 *                                                             takes its index. Entries outside that range are
 *                                                             leftovers, never read (removed at the next start)
 *   k[name]               -> JSON                             small named singletons: k[tip] = {height} last chain
 *                                                             tip seen; k[flush] = '' (the level backend's sync
 *                                                             marker); k[counters] = { name: number } the
 *                                                             totals start-up needs (files, bytes, chunks,
 *                                                             unpaid bytes, files and bytes by state), written
 *                                                             in the same batch as every change they count
 *                                                             (absent: an older store, counted once at start);
 *                                                             k[addressPool] = { end, fingerprint } the address
 *                                                             pool's end and what it was derived from (network,
 *                                                             key), written with each batch of entries;
 *                                                             k[term] = { term } the leader term (lib/lease) that
 *                                                             opened the store last: a lower term never opens it
 *   N[name]               -> NameRecord                       one .bit name's registration state (lib/names/
 *                                                             registrar.ts): state, name_new txid and rand (written
 *                                                             in one synced put before the RPC answer is used for
 *                                                             anything else), the last operation's txid, an
 *                                                             intent marker written before each paying RPC so a
 *                                                             restart after a crash looks before it pays again
 *   B[sha256:32]          -> { reason, added }                content the operator blocked (lib/store/blocklist.ts):
 *                                                             an upload of the same bytes is refused with the reason
 *   H[day:4 BE]           -> DayStats                         the console's history, one entry per UTC day (days since
 *                                                             the epoch): bytes stored, sats earned, bytes sent
 *   Y[day:4 BE]           -> BookRow                          the books (lib/economy): one row a day (epoch day), the
 *                                                             revenue, costs and closing running totals of that day;
 *                                                             today's row is rewritten as the day goes
 *   S[at:8 BE][rand:4]    -> SpentEntry                       something the box paid (fees, NMC for names, the
 *                                                             operating wallet's payments): a cost of its day
 *   Z[scripthash:32]      -> id                               which file a Namecoin scripthash belongs to (paid in NMC
 *                                                             too: Account.nmc, the second watcher); k[nmcTip] =
 *                                                             {height} the last Namecoin tip seen
 *   k[prices]             -> PricePoint[]                     cost pricing's price history, one point a day (lib/economy)
 *   W[seq:8 BE]           -> SpendRecord                      one spend of the operating wallet (lib/wallet): written
 *                                                             with its signed transaction (hex, txid, inputs) in one
 *                                                             synced batch BEFORE it is broadcast; state 'signed' →
 *                                                             'broadcast' → 'confirmed' (or 'failed': its coins went
 *                                                             elsewhere). A restart rebroadcasts the same transaction,
 *                                                             never a new one. For the books (lib/economy): every key
 *                                                             of this prefix is one spend; fields kind:'wallet-spend',
 *                                                             created (ms), to, sats, fee, txid, state, purpose
 *                                                             ({ kind: 'mirror', mirror, file, through } for mirrors)
 *   w[purpose key]        -> uint64 BE seq                    the spend made for one purpose ("mirror|URL|id|n"): a
 *                                                             purpose already spent for is never paid again
 *   M[mirror URL 0x00 id] -> MirrorCopy                       a file's copy on a mirror (lib/mirrors): its URL there,
 *                                                             address, delete token, what was paid and through when,
 *                                                             last audit
 *   R[mirror URL]         -> MirrorState                      a mirror's prices as last seen and, once dropped, when
 *                                                             and why (a dropped mirror is never paid again)
 *
 * Chunk payloads with the default "file" backend live outside LevelDB, in
 * <dataDir>/chunks/<first 2 hex>/<sha256 hex>, referenced by the c[...] refcount entry (value separation).
 */

export const PREFIX = {
  version: 'V',
  file: 'f',
  chunkRef: 'c',
  blob: 'b',
  account: 'a',
  scriptHash: 's',
  expiry: 'x',
  download: 'o',
  maturing: 'm',
  nextIndex: 'n',
  pooledAddress: 'p',
  drop: 'd',
  tombstone: 't',
  singleton: 'k',
  name: 'N',
  blocked: 'B',
  history: 'H',
  book: 'Y',
  nmcScriptHash: 'Z',
  spent: 'S',
  walletSpend: 'W',
  walletPurpose: 'w',
  mirrorCopy: 'M',
  mirror: 'R',
} as const;

export const SCHEMA_VERSION = 1;

const p = (prefix: string, body: Buffer = Buffer.alloc(0)) => Buffer.concat([Buffer.from(prefix, 'ascii'), body]);
const ascii = (s: string) => Buffer.from(s, 'ascii');

export const layout = {
  version: () => p(PREFIX.version),
  file: (id: string) => p(PREFIX.file, ascii(id)),
  chunkRef: (hash: Buffer) => p(PREFIX.chunkRef, hash),
  blob: (hash: Buffer) => p(PREFIX.blob, hash),
  account: (id: string) => p(PREFIX.account, ascii(id)),
  scriptHash: (sh: Buffer) => p(PREFIX.scriptHash, sh),
  expiry: (when: number, id: string) => {
    const t = Buffer.alloc(8);
    t.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(when))));
    return p(PREFIX.expiry, Buffer.concat([t, ascii(id)]));
  },
  download: (id: string, ticket: Buffer) => p(PREFIX.download, Buffer.concat([ascii(id), ticket])),
  maturing: (id: string) => p(PREFIX.maturing, ascii(id)),
  nextIndex: () => p(PREFIX.nextIndex),
  pooledAddress: (index: number) => {
    const i = Buffer.alloc(4);
    i.writeUInt32BE(index);
    return p(PREFIX.pooledAddress, i);
  },
  parsePooledAddress: (key: Buffer) => key.readUInt32BE(1),
  drop: (id: string) => p(PREFIX.drop, ascii(id)),
  tombstone: (id: string) => p(PREFIX.tombstone, ascii(id)),
  counters: () => p(PREFIX.singleton, ascii('counters')),
  singleton: (name: string) => p(PREFIX.singleton, ascii(name)),
  /** a Namecoin name (e.g. "d/example"), bytes as given (names are ≤ 255 bytes) */
  name: (name: string) => p(PREFIX.name, Buffer.from(name, 'latin1')),

  blocked: (sha256: Buffer) => p(PREFIX.blocked, sha256),
  history: (day: number) => {
    const d = Buffer.alloc(4);
    d.writeUInt32BE(day);
    return p(PREFIX.history, d);
  },
  parseHistory: (key: Buffer) => key.readUInt32BE(1),
  nmcScriptHash: (sh: Buffer) => p(PREFIX.nmcScriptHash, sh),
  book: (day: number) => {
    const d = Buffer.alloc(4);
    d.writeUInt32BE(day);
    return p(PREFIX.book, d);
  },
  parseBook: (key: Buffer) => key.readUInt32BE(1),
  spent: (at: number, rand: Buffer) => {
    const t = Buffer.alloc(8);
    t.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(at))));
    return p(PREFIX.spent, Buffer.concat([t, rand]));
  },
  /** the spent entries of [from, to) */
  spentRange: (from: number, to: number) => ({ gte: layout.spent(from, Buffer.alloc(0)), lt: layout.spent(to, Buffer.alloc(0)) }),
  /** a spend of the operating wallet, by sequence number (lib/wallet) */
  walletSpend: (seq: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(seq));
    return p(PREFIX.walletSpend, b);
  },
  parseWalletSpend: (key: Buffer) => Number(key.readBigUInt64BE(1)),
  walletPurpose: (purpose: string) => p(PREFIX.walletPurpose, Buffer.from(purpose, 'utf8')),
  /** a file's copy on a mirror, and every copy on one mirror (lib/mirrors) */
  mirrorCopy: (mirror: string, id: string) => p(PREFIX.mirrorCopy, Buffer.concat([Buffer.from(mirror, 'utf8'), Buffer.from([0]), ascii(id)])),
  mirrorCopies: (mirror: string) => {
    const start = p(PREFIX.mirrorCopy, Buffer.concat([Buffer.from(mirror, 'utf8'), Buffer.from([0])]));
    return { gte: start, lt: p(PREFIX.mirrorCopy, Buffer.concat([Buffer.from(mirror, 'utf8'), Buffer.from([1])])) };
  },
  mirror: (mirror: string) => p(PREFIX.mirror, Buffer.from(mirror, 'utf8')),

  /** [gte, lt) bounds covering every key of one prefix */
  range: (prefix: string) => ({ gte: p(prefix), lt: p(String.fromCharCode(prefix.charCodeAt(0) + 1)) }),
  /** the expiry keys due at or before `now` */
  expiryDue: (now: number) => ({ gte: p(PREFIX.expiry), lt: layout.expiry(now + 1, '') }),
  parseExpiry: (key: Buffer) => ({ when: Number(key.readBigUInt64BE(1)), id: key.subarray(9).toString('ascii') }),
  parseDownload: (key: Buffer) => ({ id: key.subarray(1, 23).toString('ascii'), ticket: key.subarray(23) }),
  /** the part of a key after its prefix byte */
  body: (key: Buffer) => key.subarray(1),
};
