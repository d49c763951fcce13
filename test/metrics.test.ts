// An operator's Prometheus scrapes /metrics on the loopback console; the logs never carry a secret.

import t from 'tap';
import fs from 'fs';
import { curl, curlStatus, randomFile, tmpDir } from './helpers/daemon';
import { startPaidNode, until } from './helpers/paid-node';
import { adminTokenPath } from '../lib/node';

/** The value of one sample line (`name{labels} value`) of the Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('/metrics: uploads, downloads, 402s, files by state, Electrum, event-loop lag; only with the admin token', async (t) => {
  const dataDir = tmpDir();
  const work = tmpDir();
  t.teardown(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });
  const p = await startPaidNode({}, dataDir);
  t.teardown(() => p.stop());
  const token = fs.readFileSync(adminTokenPath(dataDir), 'utf8').trim();
  const metricsUrl = `${p.node.consoleUrl}/metrics`;
  const scrape = () => curl('-f', '-H', `Authorization: Bearer ${token}`, metricsUrl);

  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 5000, 'a.bin'), `${p.url}/`));
  t.equal((await curlStatus('-o', '/dev/null', `${p.url}/${up.id}`)).status, 402, 'unpaid: 402');

  const text = await until(async () => {
    const m = await scrape();
    return sample(m, 'bitdrop_electrum_connected') === 1 && m;
  }, 15_000, 'electrum connected in the metrics');
  t.match(text, /^# TYPE bitdrop_uploads_total counter$/m, 'Prometheus text format');
  t.equal(sample(text, 'bitdrop_uploads_total'), 1, 'one upload');
  t.equal(sample(text, 'bitdrop_payment_required_total'), 1, 'one 402');
  t.equal(sample(text, 'bitdrop_downloads_total'), 0, 'no download yet');
  t.ok(sample(text, 'bitdrop_http_received_bytes_total')! >= 5000, 'the upload\'s bytes came in');
  t.equal(sample(text, 'bitdrop_files{state="awaiting_payment"}'), 1, 'files by state');
  t.equal(sample(text, 'bitdrop_file_bytes{state="awaiting_payment"}'), 5000, 'bytes by state');
  t.equal(sample(text, 'bitdrop_store_files'), 1);
  t.equal(sample(text, 'bitdrop_unpaid_bytes'), 5000);
  t.ok(sample(text, 'bitdrop_electrum_subscriptions')! >= 1, 'the new address is subscribed');
  t.equal(sample(text, 'bitdrop_upload_slots'), 6, 'upload slots');
  t.equal(sample(text, 'bitdrop_upload_slots_in_use'), 0, 'none in use at rest');
  t.equal(sample(text, 'bitdrop_tor_onion_published{mode="off"}'), 0, 'tor off');
  t.match(text, /^nodejs_eventloop_lag_seconds \d/m, 'event-loop lag');
  t.match(text, /^bitdrop_credits_earned_sats 0$/m, 'no credits yet');

  t.equal((await curlStatus('-o', '/dev/null', metricsUrl)).status, 401, 'no token: 401');
  t.equal((await curlStatus('-o', '/dev/null', '-H', 'Authorization: Bearer nope', metricsUrl)).status, 401, 'wrong token: 401');

  // No secret in the logs: not the delete token the upload answer carried, nor the admin token.
  await curlStatus('-X', 'DELETE', '-H', `X-Delete-Token: ${up.deleteToken}`, `${p.url}/${'A'.repeat(22)}`);
  t.match(up.deleteToken, /^[A-Za-z0-9_-]{16,}$/, 'the upload answer carried a delete token');
  const logs = p.logs.join('\n');
  t.ok(logs.length > 0, 'the daemon logged');
  t.notOk(logs.includes(up.deleteToken), 'the delete token is never logged');
  t.notOk(logs.includes(token), 'the admin token is never logged');
});
