// What the data dir lives on. A GlusterFS FUSE mount differs from a local disk in ways the store must
// handle (measured with strace on the brick processes, docs/scale-out.md):
//  - fsync of a directory through the mount never reaches the bricks (the FUSE client answers it
//    itself), so a rename is made durable by fsync of the renamed file, which the bricks do run: on
//    their XFS/ext4 that commits the journal holding the rename;
//  - O_DIRECT and fdatasync of a file do reach the bricks; POSIX locks (LevelDB's LOCK) hold across
//    mounts and are released as soon as the holder dies (kill -9) — or, when the holder's machine
//    vanishes, after the volume's network.ping-timeout;
//  - without quorum (replica 2 with no arbiter) the two copies can split: each side keeps accepting
//    writes, and healing the split brain can throw away files that were acknowledged.
// The client's whole graph is readable under <mount>/.meta/graphs/active/volfile, so no gluster CLI is
// needed on the machine that runs bitdrop.

import fs from 'fs';
import path from 'path';

export interface ReplicaSet {
  name: string;
  /** bricks holding a full copy (arbiters excluded) */
  copies: number;
  arbiters: number;
  thinArbiter: boolean;
  /** cluster.quorum-type when set in the graph ('none' turns quorum off) */
  quorumType?: string;
}

export interface VolumeInfo {
  kind: 'local' | 'glusterfs' | 'other-fuse';
  /** mount point and source, e.g. "server1:/bitdrop" */
  mountPoint: string;
  source: string;
  fsType: string;
  /** GlusterFS only */
  replicaSets?: ReplicaSet[];
  /** bricks with no replicate layer above them (distribute-only volumes): one copy */
  unreplicatedBricks?: number;
  /** seconds before a client that vanished is dropped and its locks released */
  pingTimeout?: number;
}

interface Mount { mountPoint: string; fsType: string; source: string }

/** octal escapes of /proc/self/mountinfo ("\040" is a space) */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));

function mountOf(dir: string, mountinfo: string): Mount | undefined {
  let best: Mount | undefined;
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const mountPoint = unescape(left.split(' ')[4]);
    const [fsType, source] = right.split(' ');
    const inside = dir === mountPoint || dir.startsWith(mountPoint.endsWith('/') ? mountPoint : mountPoint + '/');
    if (inside && (!best || mountPoint.length >= best.mountPoint.length)) best = { mountPoint, fsType, source: unescape(source) };
  }
  return best;
}

interface Xlator { name: string; type: string; options: Map<string, string>; subvolumes: string[] }

/** Parses a GlusterFS volfile: blocks of "volume NAME / type T / option K V / subvolumes A B / end-volume". */
export function parseVolfile(text: string): Xlator[] {
  const out: Xlator[] = [];
  let cur: Xlator | undefined;
  for (const raw of text.split('\n')) {
    const [word, ...rest] = raw.trim().split(/\s+/);
    if (word === 'volume') cur = { name: rest[0], type: '', options: new Map(), subvolumes: [] };
    else if (!cur) continue;
    else if (word === 'type') cur.type = rest[0];
    else if (word === 'option') cur.options.set(rest[0], rest.slice(1).join(' '));
    else if (word === 'subvolumes') cur.subvolumes = rest;
    else if (word === 'end-volume') { out.push(cur); cur = undefined; }
  }
  return out;
}

/** The replica sets, unreplicated bricks and ping-timeout of a client graph. */
export function describeGraph(xlators: Xlator[]): Pick<VolumeInfo, 'replicaSets' | 'unreplicatedBricks' | 'pingTimeout'> {
  const replicaSets: ReplicaSet[] = xlators.filter((x) => x.type === 'cluster/replicate').map((x) => {
    const arbiters = Number(x.options.get('arbiter-count') ?? 0);
    return {
      name: x.name,
      copies: x.subvolumes.length - arbiters,
      arbiters,
      thinArbiter: x.options.has('thin-arbiter'),
      quorumType: x.options.get('quorum-type'),
    };
  });
  const replicated = new Set(xlators.filter((x) => x.type === 'cluster/replicate').flatMap((x) => x.subvolumes));
  const clients = xlators.filter((x) => x.type === 'protocol/client');
  const unreplicatedBricks = clients.filter((x) => !replicated.has(x.name)).length;
  const timeouts = clients.map((x) => Number(x.options.get('ping-timeout'))).filter((n) => Number.isFinite(n));
  return { replicaSets, unreplicatedBricks, pingTimeout: timeouts.length ? Math.max(...timeouts) : undefined };
}

/** Finds what `dir` is stored on; reads the GlusterFS client graph when it is a GlusterFS mount. */
export function inspectVolume(dir: string): VolumeInfo {
  let real = path.resolve(dir);
  try { real = fs.realpathSync(dir); } catch { /* not made yet: its parent decides */ }
  let mountinfo = '';
  try { mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8'); } catch { /* not Linux */ }
  const m = mountOf(real, mountinfo) ?? { mountPoint: '/', fsType: 'unknown', source: '' };
  if (m.fsType === 'fuse.glusterfs') {
    const info: VolumeInfo = { kind: 'glusterfs', ...m };
    try {
      Object.assign(info, describeGraph(parseVolfile(fs.readFileSync(path.join(m.mountPoint, '.meta', 'graphs', 'active', 'volfile'), 'utf8'))));
    } catch { /* mounted without the meta xlator: no graph to judge */ }
    return info;
  }
  return { kind: m.fsType.startsWith('fuse') ? 'other-fuse' : 'local', ...m };
}

/** Lines the daemon prints at start: what the volume is, and what could lose acknowledged files. */
export function volumeWarnings(v: VolumeInfo): string[] {
  if (v.kind !== 'glusterfs') return [];
  const out: string[] = [];
  if (!v.replicaSets) {
    out.push(`cannot read the client graph of GlusterFS volume ${v.source} (${v.mountPoint}/.meta): its replication and quorum are unknown`);
    return out;
  }
  for (const r of v.replicaSets) {
    const noQuorum = r.quorumType === 'none' || (r.copies === 2 && r.arbiters === 0 && !r.thinArbiter && r.quorumType !== 'fixed');
    if (noQuorum) {
      out.push(`GlusterFS volume ${v.source} has no quorum (${r.name}: replica ${r.copies + r.arbiters}${r.arbiters ? ` arbiter ${r.arbiters}` : ''}, quorum-type ${r.quorumType ?? 'default'}): ` +
        'a split brain could lose acknowledged files; use replica 3 or replica 2 arbiter 1 (docs/scale-out.md)');
    }
  }
  if (v.unreplicatedBricks) {
    out.push(`GlusterFS volume ${v.source} keeps ${v.unreplicatedBricks} brick(s) without a replica: a brick lost is files lost`);
  }
  return out;
}

/** One line saying what the data dir is on, for the start banner. */
export function describeVolume(v: VolumeInfo): string {
  if (v.kind !== 'glusterfs') return `${v.fsType} at ${v.mountPoint}`;
  const sets = v.replicaSets ?? [];
  const shape = sets.length
    ? `${sets.length > 1 ? `${sets.length} × ` : ''}replica ${sets[0].copies + sets[0].arbiters}${sets[0].arbiters ? ` arbiter ${sets[0].arbiters}` : ''}`
    : 'unknown layout';
  return `GlusterFS volume ${v.source} at ${v.mountPoint} (${shape}${v.pingTimeout !== undefined ? `, ping-timeout ${v.pingTimeout} s` : ''})`;
}

export interface VolumeWatchOptions {
  /** a file of the data dir to stat (its metadata comes from the bricks) */
  probe: string;
  /** how long the volume may stay unreachable before `onLost` (ms) */
  failAfterMs: number;
  everyMs?: number;
  onLost: (why: string) => void;
}

/**
 * Fencing for a primary on a GlusterFS volume. When this machine loses the bricks, they drop its client
 * after network.ping-timeout and with it the data dir's lock — and a standby elsewhere takes over. Before
 * that can happen, a primary that cannot reach its volume must stop serving (and stop publishing the onion);
 * so it stops after half the ping-timeout without a successful stat. A probe that hangs counts as failing.
 */
export function watchVolume(o: VolumeWatchOptions): { stop(): void } {
  let failingSince = 0;
  let lastError = '';
  let pending = false;
  let stopped = false;
  const timer = setInterval(() => {
    if (pending) {
      // the last probe still hangs: a mount that does not answer is as good as gone
      failingSince ||= Date.now();
      lastError = 'the mount does not answer';
    } else {
      pending = true;
      fs.promises.stat(o.probe).then(() => { failingSince = 0; }, (err: NodeJS.ErrnoException) => {
        failingSince ||= Date.now();
        lastError = err.code ?? err.message;
      }).finally(() => { pending = false; });
    }
    if (!stopped && failingSince && Date.now() - failingSince >= o.failAfterMs) {
      stopped = true;
      clearInterval(timer);
      o.onLost(`the data dir's volume has been unreachable for ${Math.round((Date.now() - failingSince) / 1000)} s (${lastError})`);
    }
  }, o.everyMs ?? 1000);
  timer.unref();
  return { stop: () => { stopped = true; clearInterval(timer); } };
}

/** How long a primary may go without its volume: half the ping-timeout, so it stops before its lock is dropped. */
export const fenceAfterMs = (v: VolumeInfo) => Math.max(2000, ((v.pingTimeout ?? 42) * 1000) / 2);
