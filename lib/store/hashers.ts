// SHA-256 off the event loop. An upload hashes every byte twice (each chunk's key, and the whole file's
// digest): on the main thread that costs more than receiving the bytes (BENCHMARKS.md). Worker threads
// do it instead, reading the bytes from shared memory, so nothing is copied between threads.
//
// A chunk is received straight into a slot (4 MiB of shared, page-aligned memory). When it is full, a
// worker hashes it, the whole-file hash folds it in, and the store writes it to disk from the same memory.
// Each upload fills one slot at a time, at its client's pace; the slots being hashed and written are
// bounded for all uploads together, so memory and disk work stay bounded and a slow client never holds
// up the others.

import { Worker } from 'worker_threads';
import { collectGarbage } from './gc';
import { SlotAdmission, type SlotHolder } from './admission';

export interface Slot {
  readonly buf: Buffer;
  readonly memory: SharedArrayBuffer;
  /** the client address of the upload holding it (admission.ts counts slots per address) */
  client?: string;
}

/** A running SHA-256 over slots, folded in the order of the `update` calls, on one worker. */
export interface HashStream {
  update(slot: Slot, length: number): Promise<void>;
  digest(): Promise<string>;
  /** forgets the state (an upload that failed) */
  drop(): void;
}

export interface HashPoolOptions {
  threads: number;
  /** slots hashed and written at once, for all uploads together */
  inFlight: number;
  /** slots in use at once (being filled, hashed or written), for all uploads together: the memory bound */
  maxSlots: number;
  slotSize: number;
  /** while an upload waits for a slot, one that has received nothing for this long loses its own (ms) */
  stallMs?: number;
}

export type { SlotHolder } from './admission';

// Plain JavaScript run with `eval`: no file to locate whether the daemon runs from build/ or from source.
const WORKER_SOURCE = `
const { parentPort } = require('worker_threads');
const crypto = require('crypto');
const streams = new Map();
parentPort.on('message', (m) => {
  try {
    const bytes = m.memory && Buffer.from(m.memory, 0, m.length);
    if (m.op === 'hash') {
      parentPort.postMessage({ id: m.id, digest: crypto.createHash('sha256').update(bytes).digest() });
    } else if (m.op === 'update') {
      let h = streams.get(m.stream);
      if (!h) streams.set(m.stream, (h = crypto.createHash('sha256')));
      h.update(bytes);
      parentPort.postMessage({ id: m.id });
    } else if (m.op === 'digest') {
      const h = streams.get(m.stream) || crypto.createHash('sha256');
      streams.delete(m.stream);
      parentPort.postMessage({ id: m.id, digest: h.digest() });
    } else if (m.op === 'drop') {
      streams.delete(m.stream);
    }
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

const WASM_PAGE = 64 * 1024;

/**
 * Shared memory that starts on a page boundary, so whole chunks can be written with O_DIRECT straight from
 * it (blobs.ts). A SharedArrayBuffer comes from malloc, 16 bytes past a page; a shared WebAssembly memory
 * is mapped by itself, page-aligned.
 */
export function sharedPageAligned(bytes: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  try {
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => { buffer: SharedArrayBuffer } } }).WebAssembly;
    return new wasm.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
  } catch {
    return new SharedArrayBuffer(bytes);
  }
}

interface Pending {
  resolve: (digest?: Buffer) => void;
  reject: (err: Error) => void;
}

class HashWorker {
  readonly pending = new Map<number, Pending>();
  private readonly worker: Worker;
  dead?: Error;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; digest?: Uint8Array; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`hashing failed: ${m.error}`));
      else p.resolve(m.digest && Buffer.from(m.digest.buffer, m.digest.byteOffset, m.digest.byteLength));
    });
    const fail = (err: Error) => {
      this.dead ??= err;
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`hashing thread exited (${code})`)));
  }

  call(id: number, message: Record<string, unknown>): Promise<Buffer | undefined> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  post(message: Record<string, unknown>) {
    if (!this.dead) this.worker.postMessage(message);
  }

  terminate() {
    return this.worker.terminate();
  }
}

export class HashPool {
  private workers: HashWorker[] = [];
  /** slots kept for reuse: a new one is fresh memory, and fresh pages are slow to fault in on a VM */
  private readonly spare: Slot[] = [];
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  /** who gets the slots when there are not enough (admission.ts) */
  private readonly admission: SlotAdmission;
  private droppedBytes = 0;
  private collectTimer?: NodeJS.Timeout;
  private nextId = 0;
  private nextStream = 0;

  constructor(private readonly opts: HashPoolOptions) {
    this.admission = new SlotAdmission(opts.maxSlots, opts.stallMs);
  }

  /** Threads are started on first use: a store that never takes a large upload costs nothing. */
  private start() {
    // A thread that died (it should not) is replaced; the uploads it served have failed.
    for (let i = 0; i < this.opts.threads; i++) {
      if (!this.workers[i] || this.workers[i].dead) this.workers[i] = new HashWorker();
    }
  }

  /**
   * A slot to receive a chunk into, for `holder`'s upload. When all slots are in use it waits (the upload
   * stops reading its socket, and TCP makes the client wait: back-pressure) for the slot the admission
   * rules give it; meanwhile holders silent too long while others wait are cut (admission.ts).
   */
  async slot(holder?: SlotHolder): Promise<Slot> {
    await this.admission.acquire(holder);
    const spare = this.spare.pop();
    const slot = spare ?? (() => {
      const memory = sharedPageAligned(this.opts.slotSize);
      return { memory, buf: Buffer.from(memory, 0, this.opts.slotSize) } as Slot;
    })();
    slot.client = holder?.client;
    return slot;
  }

  /** Gives back a slot nothing reads any more; a few are kept for reuse, the rest are freed. */
  recycle(slot: Slot) {
    const client = slot.client;
    slot.client = undefined;
    // A slot an upload waits for goes to it as it is: dropping it and making a new one for the waiter made
    // stalled uploads cut one after the other churn through fresh memory (peak RSS 233 MiB in the siege
    // test). Beyond what waits, a few are kept for reuse and the rest are freed.
    if (this.spare.length < this.opts.inFlight || this.spare.length < this.admission.waiting) this.spare.push(slot);
    else this.dropped(slot);
    this.admission.release(client);
    while (this.admission.waiting === 0 && this.spare.length > this.opts.inFlight) this.dropped(this.spare.pop()!);
  }

  /**
   * A slot's memory returns to the system only when V8 collects it, and nothing makes V8 collect when
   * the daemon goes quiet after a burst (50 stalled uploads cut: RSS stayed 70 MiB up). After a burst of
   * dropped slots settles, ask for one collection.
   */
  private dropped(_slot: Slot) {
    this.droppedBytes += this.opts.slotSize;
    clearTimeout(this.collectTimer);
    this.collectTimer = setTimeout(() => {
      if (this.droppedBytes >= 4 * this.opts.slotSize) collectGarbage();
      this.droppedBytes = 0;
    }, 1000).unref();
  }

  /** Registers an upload that fills slots, so that it can be cut when it stalls while others wait. */
  hold(holder: SlotHolder): () => void {
    return this.admission.hold(holder);
  }

  stats() {
    return { slotsInUse: this.admission.inUse, slotsMax: this.opts.maxSlots, waitingForSlot: this.admission.waiting };
  }

  /** Waits for a turn to hash and write a full slot; `done()` ends it. */
  /** chunk slots being hashed and written now, of the most allowed at once */
  slotsInUse(): { inUse: number; max: number } {
    return { inUse: this.inFlight, max: this.opts.inFlight };
  }

  async admit(): Promise<void> {
    if (this.inFlight >= this.opts.inFlight) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.inFlight++;
  }

  done() {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }

  /** SHA-256 of the first `length` bytes of a slot, on the least busy thread. */
  async digest(slot: Slot, length: number): Promise<Buffer> {
    this.start();
    const w = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    return (await w.call(++this.nextId, { op: 'hash', memory: slot.memory, length }))!;
  }

  /** A whole-file hash; its updates run in order on one thread, spread over the pool by round robin. */
  stream(): HashStream {
    const key = ++this.nextStream;
    let w: HashWorker | undefined;
    // The thread is chosen at the first update: a file that never needs one starts no thread.
    const worker = () => {
      if (!w) {
        this.start();
        w = this.workers[key % this.workers.length];
      }
      return w;
    };
    return {
      update: async (slot, length) => { await worker().call(++this.nextId, { op: 'update', stream: key, memory: slot.memory, length }); },
      digest: async () => (await worker().call(++this.nextId, { op: 'digest', stream: key }))!.toString('hex'),
      drop: () => w?.post({ op: 'drop', stream: key }),
    };
  }

  async close() {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
