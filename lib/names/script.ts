// Namecoin name scripts, byte for byte as Namecoin Core builds and parses them (src/script/names.cpp):
//
//   name_new          OP_NAME_NEW (OP_1) <hash160(rand ‖ name)> OP_2DROP                     <address script>
//   name_firstupdate  OP_NAME_FIRSTUPDATE (OP_2) <name> <rand> <value> OP_2DROP OP_2DROP   <address script>
//   name_update       OP_NAME_UPDATE (OP_3) <name> <value> OP_2DROP OP_DROP                <address script>
//
// Pushes are written as CScript's operator<< writes a byte vector: a plain length-prefixed push (or
// PUSHDATA1/2), never the OP_n shorthand bitcoinjs' script.compile would pick for a one-byte value.
// Transactions carrying a name operation have version 0x7100 (NAMECOIN_TX_VERSION).

import crypto from 'crypto';

export const OP_NAME_NEW = 0x51;
export const OP_NAME_FIRSTUPDATE = 0x52;
export const OP_NAME_UPDATE = 0x53;
export const NAMECOIN_TX_VERSION = 0x7100;
export const MAX_NAME_LENGTH = 255;
export const MAX_VALUE_LENGTH = 520;
/** The coins locked in every name output (Namecoin Core's NAME_LOCKED_AMOUNT, 0.01 NMC). */
export const NAME_LOCKED_AMOUNT = 1_000_000n;

const OP_PUSHDATA1 = 0x4c;
const OP_PUSHDATA2 = 0x4d;
const OP_PUSHDATA4 = 0x4e;
const OP_DROP = 0x75;
const OP_2DROP = 0x6d;
const OP_NOP = 0x61;

export type NameOp =
  | { op: 'name_new'; hash: Buffer; address: Buffer }
  | { op: 'name_firstupdate'; name: Buffer; rand: Buffer; value: Buffer; address: Buffer }
  | { op: 'name_update'; name: Buffer; value: Buffer; address: Buffer };

function push(data: Uint8Array): Buffer {
  const b = Buffer.from(data);
  if (b.length < OP_PUSHDATA1) return Buffer.concat([Buffer.from([b.length]), b]);
  if (b.length <= 0xff) return Buffer.concat([Buffer.from([OP_PUSHDATA1, b.length]), b]);
  const len = Buffer.alloc(2);
  len.writeUInt16LE(b.length);
  return Buffer.concat([Buffer.from([OP_PUSHDATA2]), len, b]);
}

/** Hash160(rand ‖ name): what a name_new commits to. */
export function nameNewHash(name: Uint8Array, rand: Uint8Array): Buffer {
  const sha = crypto.createHash('sha256').update(Buffer.concat([rand, name])).digest();
  return crypto.createHash('ripemd160').update(sha).digest();
}

export function buildNameNew(address: Uint8Array, name: Uint8Array, rand: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([OP_NAME_NEW]), push(nameNewHash(name, rand)), Buffer.from([OP_2DROP]), address]);
}

export function buildNameFirstupdate(address: Uint8Array, name: Uint8Array, value: Uint8Array, rand: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([OP_NAME_FIRSTUPDATE]), push(name), push(rand), push(value), Buffer.from([OP_2DROP, OP_2DROP]), address]);
}

export function buildNameUpdate(address: Uint8Array, name: Uint8Array, value: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([OP_NAME_UPDATE]), push(name), push(value), Buffer.from([OP_2DROP, OP_DROP]), address]);
}

/** Reads one opcode at `pc`: its code, pushed data (for pushes) and the next position; undefined past the end or when torn. */
function readOp(s: Buffer, pc: number): { op: number; data?: Buffer; next: number } | undefined {
  if (pc >= s.length) return undefined;
  const op = s[pc];
  let len: number;
  let at = pc + 1;
  if (op < OP_PUSHDATA1) len = op;
  else if (op === OP_PUSHDATA1) {
    if (at + 1 > s.length) return undefined;
    len = s[at];
    at += 1;
  } else if (op === OP_PUSHDATA2) {
    if (at + 2 > s.length) return undefined;
    len = s.readUInt16LE(at);
    at += 2;
  } else if (op === OP_PUSHDATA4) {
    if (at + 4 > s.length) return undefined;
    len = s.readUInt32LE(at);
    at += 4;
  } else return { op, next: at };
  if (at + len > s.length) return undefined;
  return { op, data: s.subarray(at, at + len), next: at + len };
}

/** Parses a name script; undefined for any other script (as CNameScript does, the address part is what follows the drops). */
export function parseNameScript(script: Uint8Array): NameOp | undefined {
  const s = Buffer.from(script);
  const first = readOp(s, 0);
  if (!first || ![OP_NAME_NEW, OP_NAME_FIRSTUPDATE, OP_NAME_UPDATE].includes(first.op)) return undefined;
  const args: Buffer[] = [];
  let pc = first.next;
  let cur = readOp(s, pc);
  while (cur && cur.op !== OP_DROP && cur.op !== OP_2DROP && cur.op !== OP_NOP) {
    if (cur.data === undefined) return undefined;
    args.push(cur.data);
    pc = cur.next;
    cur = readOp(s, pc);
  }
  if (!cur) return undefined; // no drop: not a name script (e.g. a taproot output also starts with OP_1)
  while (cur && (cur.op === OP_DROP || cur.op === OP_2DROP || cur.op === OP_NOP)) {
    pc = cur.next;
    cur = readOp(s, pc);
  }
  const address = Buffer.from(s.subarray(pc));
  switch (first.op) {
    case OP_NAME_NEW:
      return args.length === 1 && args[0].length === 20 ? { op: 'name_new', hash: args[0], address } : undefined;
    case OP_NAME_FIRSTUPDATE:
      return args.length === 3 ? { op: 'name_firstupdate', name: args[0], rand: args[1], value: args[2], address } : undefined;
    default:
      return args.length === 2 ? { op: 'name_update', name: args[0], value: args[1], address } : undefined;
  }
}

/** The script a wallet signs for and an address is derived from: the name prefix removed. */
export function addressScript(script: Uint8Array): Buffer {
  return parseNameScript(script)?.address ?? Buffer.from(script);
}

// ElectrumX's name index (NameIndexMixin.build_name_index_script): a name's history in an Electrum server is
// the history of this script, which no real output ever has.
const OP_RETURN = 0x6a;

/** ElectrumX's build_name_index_script. */
export function nameIndexScript(name: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([OP_NAME_UPDATE]), push(name), push(Buffer.alloc(0)), Buffer.from([OP_2DROP, OP_DROP, OP_RETURN])]);
}

/** The Electrum scripthash of a name's index script (sha256, reversed, hex). */
export function nameIndexScriptHash(name: Uint8Array): string {
  return crypto.createHash('sha256').update(nameIndexScript(name)).digest().reverse().toString('hex');
}
