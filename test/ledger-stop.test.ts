// A download that ends as the daemon stops: its settle (the open-download marker's removal, a refund) is
// written before the store closes. The newcomer check saw "error: settling a download … Database is not
// open" when SIGTERM followed a download at once.

import t from 'tap';
import { Readable } from 'stream';
import { tmpDir } from './helpers/daemon';
import { Store } from '../lib/store';
import { layout, PREFIX } from '../lib/store/layout';
import { Ledger } from '../lib/ledger';
import { DAY_MS } from '../lib/ledger/pricing';

t.test('settled() waits for the settles of ended downloads, so the store can close after them', async (t) => {
  const dir = tmpDir('bitdrop-test-', t);
  const store = await Store.open({ dir });
  const ledger = await Ledger.open({
    db: store.db, store, maxUnpaidBytes: 1e9, uriScheme: 'bitcoin',
    policy: { storagePrice: 1000, transferPrice: 1000, confirmations: 1, grace: DAY_MS, unpaidTtl: DAY_MS },
    allocate: () => ({ address: 'bcrt1qtest', scriptHash: '11'.repeat(32) }),
  });
  const { manifest } = await store.ingest(Readable.from([Buffer.from('hello, settle')]), {
    name: 'a.txt', type: 'text/plain', maxBytes: 1e6,
    extraOps: async (m) => (await ledger.uploadOps(m, undefined)).ops,
  });
  // paid and confirmed: the file is active
  await ledger.onTip(1);
  await ledger.onPayments('11'.repeat(32), [{ txid: 'aa'.repeat(32), height: 1, sats: 1000 }]);
  const tickets = await Promise.all([1, 2, 3].map(() => ledger.openDownload(manifest.id, manifest.size)));
  let markers = 0;
  for await (const _ of store.db.keys(layout.range(PREFIX.download))) markers++;
  t.equal(markers, 3, 'three downloads are open, each with its marker');
  // The downloads end (one of them cut half-way: a refund) and the daemon stops at once.
  const settles = tickets.map((tk, i) => tk.settle(i === 0 ? 6 : manifest.size));
  await ledger.settled();
  await store.close();
  const outcomes = await Promise.allSettled(settles);
  t.same(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled', 'fulfilled'], 'every settle was written before the store closed');
  // What the next start finds (the store alone: the ledger's open would clear markers, charging in full)
  const again = await Store.open({ dir });
  t.teardown(() => again.close());
  markers = 0;
  for await (const _ of again.db.keys(layout.range(PREFIX.download))) markers++;
  t.equal(markers, 0, 'no download marker is left for the next start to charge in full');
  const a = JSON.parse((await again.db.get(layout.account(manifest.id)))!.toString());
  t.equal(a.sentBytes, 2 * manifest.size + 6, 'the cut download was refunded what it did not send');
});
