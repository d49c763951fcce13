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
  const dataDir = tmpDir('bitdrop-test-', t);
  const work = tmpDir('bitdrop-test-', t);
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
  t.equal(sample(text, 'bitdrop_upload_slots'), 4, 'upload slots: SLOTS_IN_FLIGHT');
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

t.test('logs: --log-format json is one JSON object a line with levels; readable lines by default; secrets masked', async (t) => {
  const { startDaemon } = await import('./helpers/daemon');
  const { createLogger } = await import('../lib/log');
  const { PassThrough } = await import('stream');

  // The masking, directly: known secrets and anything shaped like a credential.
  const out = new PassThrough();
  let written = '';
  out.on('data', (d) => { written += d; });
  const logger = createLogger({ format: 'json', level: 'debug', destination: out });
  logger.addSecret('s3cr3t-admin-token-value');
  logger.log('error: request with X-Delete-Token: AbCdEf0123456789xyz failed');
  logger.log('WARNING   got Cookie: session=abcdef; other=1 and Authorization: Bearer zzz');
  logger.debug('saw s3cr3t-admin-token-value and http://user:hunter2@127.0.0.1:8336/');
  logger.log('bitdrop 0.1.0');
  const lines = written.trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.level), ['error', 'warn', 'debug', 'info'], 'levels from the wording');
  t.ok(lines.every((l) => typeof l.time === 'string' && typeof l.pid === 'number' && typeof l.msg === 'string'));
  for (const secret of ['AbCdEf0123456789xyz', 'session=abcdef', 'Bearer zzz', 's3cr3t-admin-token-value', 'hunter2']) {
    t.notOk(written.includes(secret), `${secret} is masked`);
  }

  // The daemon itself, in JSON, at debug level, through an upload and a deletion with its token.
  const d = await startDaemon({ args: ['--log-format', 'json', '--log-level', 'debug'], readyPattern: /"msg":"ready\s/ }).catch((err) => { throw err; });
  t.teardown(() => d.stop());
  const work = tmpDir('bitdrop-test-', t);
  const up = JSON.parse(await curl('-f', '-H', 'Accept: application/json', '-T', randomFile(work, 100, 'x.bin'), `${d.url}/`));
  t.equal((await curlStatus('-X', 'DELETE', '-H', `X-Delete-Token: ${up.deleteToken}`, `${d.url}/${up.id}`)).status, 200, 'deleted with its token');
  await d.stop();
  const logLines = d.output().trim().split('\n').filter(Boolean);
  t.ok(logLines.length > 5, 'the daemon logged');
  const parsed = logLines.map((l) => { try { return JSON.parse(l); } catch { return undefined; } });
  t.ok(parsed.every((l) => l && typeof l.msg === 'string' && typeof l.level === 'string'), 'every line is one JSON object with a level and a message');
  const admin = fs.readFileSync(adminTokenPath(d.dataDir), 'utf8').trim();
  t.notOk(d.output().includes(up.deleteToken), 'no delete token in the log');
  t.notOk(d.output().includes(admin), 'no admin token in the log');
  fs.rmSync(d.dataDir, { recursive: true, force: true });
});
