// What the data dir lives on: the GlusterFS client graph read from <mount>/.meta, and the start-up
// warnings it leads to. (test/gluster.test.ts runs the same code against a real volume.)

import t from 'tap';
import { describeGraph, describeVolume, inspectVolume, parseVolfile, volumeWarnings, type VolumeInfo } from '../lib/store/volume';

const client = (name: string, brick: string) => `volume ${name}
    type protocol/client
    option ping-timeout 10
    option remote-host server1
    option remote-subvolume ${brick}
    option password secret
end-volume
`;
const replicate = (name: string, subs: string[], extra = '') => `volume ${name}
    type cluster/replicate
    option afr-pending-xattr ${subs.join(',')}
${extra}    subvolumes ${subs.join(' ')}
end-volume
`;
const dht = (subs: string[]) => `volume v-dht
    type cluster/distribute
    subvolumes ${subs.join(' ')}
end-volume
`;

const gluster = (volfile: string): VolumeInfo => ({
  kind: 'glusterfs', mountPoint: '/srv/bitdrop', source: 'server1:/v', fsType: 'fuse.glusterfs', ...describeGraph(parseVolfile(volfile)),
});

t.test('replica 3 and replica 2 arbiter 1 have quorum: no warning', async (t) => {
  const r3 = gluster(client('v-client-0', '/b0') + client('v-client-1', '/b1') + client('v-client-2', '/b2') +
    replicate('v-replicate-0', ['v-client-0', 'v-client-1', 'v-client-2']) + dht(['v-replicate-0']));
  t.same(r3.replicaSets, [{ name: 'v-replicate-0', copies: 3, arbiters: 0, thinArbiter: false, quorumType: undefined }]);
  t.equal(r3.pingTimeout, 10);
  t.same(volumeWarnings(r3), []);
  t.equal(describeVolume(r3), 'GlusterFS volume server1:/v at /srv/bitdrop (replica 3, ping-timeout 10 s)');

  const arb = gluster(client('v-client-0', '/b0') + client('v-client-1', '/b1') + client('v-client-2', '/a') +
    replicate('v-replicate-0', ['v-client-0', 'v-client-1', 'v-client-2'], '    option arbiter-count 1\n'));
  t.same(volumeWarnings(arb), []);
  t.match(describeVolume(arb), /replica 3 arbiter 1/);
});

t.test('replica 2 without an arbiter, quorum turned off, or no replica at all: warnings', async (t) => {
  const r2 = gluster(client('v-client-0', '/b0') + client('v-client-1', '/b1') + replicate('v-replicate-0', ['v-client-0', 'v-client-1']));
  t.match(volumeWarnings(r2), [/has no quorum \(v-replicate-0: replica 2, quorum-type default\): a split brain could lose acknowledged files/]);

  const off = gluster(client('v-client-0', '/b0') + client('v-client-1', '/b1') + client('v-client-2', '/b2') +
    replicate('v-replicate-0', ['v-client-0', 'v-client-1', 'v-client-2'], '    option quorum-type none\n'));
  t.match(volumeWarnings(off), [/has no quorum .*quorum-type none/]);

  const plain = gluster(client('v-client-0', '/b0') + client('v-client-1', '/b1') + dht(['v-client-0', 'v-client-1']));
  t.match(volumeWarnings(plain), [/keeps 2 brick\(s\) without a replica/]);

  const unknown: VolumeInfo = { kind: 'glusterfs', mountPoint: '/srv/bitdrop', source: 'server1:/v', fsType: 'fuse.glusterfs' };
  t.match(volumeWarnings(unknown), [/cannot read the client graph/]);
});

t.test('a local data dir is named by its file system and warns about nothing', async (t) => {
  const v = inspectVolume(t.testdir({}));
  t.equal(v.kind, 'local');
  t.ok(v.fsType && v.mountPoint.startsWith('/'));
  t.same(volumeWarnings(v), []);
  t.notMatch(JSON.stringify(v), /password/, 'nothing of the volfile but the shape is kept');
});
