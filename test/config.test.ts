// Configuration: flags > BITDROP_* env > config file > defaults, and one readable line for bad values.

import t from 'tap';
import fs from 'fs';
import path from 'path';
import { commandName, loadConfig, parseBytes, parseDuration, ConfigError } from '../lib/config';
import { tmpDir } from './helpers/daemon';

t.test('defaults', async (t) => {
  const c = loadConfig({ env: {} });
  t.equal(c.dataDir, path.resolve('./bitdrop-data'));
  t.same(c.listen, { host: '127.0.0.1', port: 8080 });
  t.equal(c.confirmations, 1);
  t.equal(c.grace, 7 * 86_400_000);
  t.equal(c.unpaidTtl, 86_400_000);
  t.equal(c.watchBudget, 500);
  t.equal(c.addressPool, 1000, 'file addresses derived ahead');
  t.equal(c.storagePrice, 2, 'pay per use by default');
  t.equal(c.transferPrice, 10);
  t.equal(c.free, false);
  t.same(c.console, { host: '127.0.0.1', port: 8081 });
});

t.test('--address-pool: flag, env, 0 turns it off, a bad value is one line', async (t) => {
  t.equal(loadConfig({ env: {}, flags: { addressPool: '120000' } }).addressPool, 120000);
  t.equal(loadConfig({ env: { BITDROP_ADDRESS_POOL: '0' } }).addressPool, 0);
  t.throws(() => loadConfig({ env: {}, flags: { addressPool: 'lots' } }), /^--address-pool: "lots" is not a whole number ≥ 0$/);
});

t.test('a free drop box is an explicit choice: --free, or both prices 0', async (t) => {
  let c = loadConfig({ env: {}, flags: { free: true } });
  t.match(c, { free: true, storagePrice: 0, transferPrice: 0 });
  c = loadConfig({ env: { BITDROP_STORAGE_PRICE: '0', BITDROP_TRANSFER_PRICE: '0' } });
  t.match(c, { free: true, storagePrice: 0, transferPrice: 0 });
  c = loadConfig({ env: {}, flags: { storagePrice: '0' } });
  t.match(c, { free: false, storagePrice: 0, transferPrice: 10 }, 'one price 0 is still pay per use');
  t.throws(() => loadConfig({ env: {}, flags: { free: true, transferPrice: '5' } }), /^--free and --transfer-price 5 contradict each other/);
});

t.test('flags beat env, env beats file, file beats defaults', async (t) => {
  const dir = tmpDir();
  const file = path.join(dir, 'bitdrop.json');
  fs.writeFileSync(file, JSON.stringify({ dataDir: '/from/file', 'max-upload-bytes': '1MiB', grace: '2d', electrum: ['tcp://a:1'] }));
  const env = { BITDROP_DATA_DIR: '/from/env', BITDROP_MAX_UPLOAD_BYTES: '2MiB', BITDROP_CONFIG: file };
  let c = loadConfig({ env });
  t.equal(c.dataDir, '/from/env');
  t.equal(c.maxUploadBytes, 2 * 1024 * 1024);
  t.equal(c.grace, 2 * 86_400_000, 'from the file');
  t.same(c.electrum, ['tcp://a:1']);
  t.equal(c.configFile, file);
  c = loadConfig({ env, flags: { dataDir: '/from/flag', listen: '127.0.0.2:9999' } });
  t.equal(c.dataDir, '/from/flag');
  t.same(c.listen, { host: '127.0.0.2', port: 9999 });
  c = loadConfig({ env: { BITDROP_ELECTRUM: 'ssl://x:50002,tcp://y:50001' } });
  t.same(c.electrum, ['ssl://x:50002', 'tcp://y:50001'], 'a list in env is comma-separated');
});

t.test('bad values give one readable line', async (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ listen: 'nope' }, /^--listen: "nope" is not HOST:PORT/],
    [{ listen: '0.0.0.0:80' }, /not a loopback address; add --listen-public/],
    [{ maxUploadBytes: '12 parsecs' }, /^--max-upload-bytes: "12 parsecs" is not a size/],
    [{ grace: 'forever' }, /^--grace: "forever" is not a duration/],
    [{ confirmations: '-1' }, /^--confirmations: "-1" is not a whole number/],
    [{ network: 'litecoin' }, /^--network: "litecoin" is not one of bitcoin, testnet/],
    [{ tor: 'attach' }, /--tor attach needs --tor-control/],
    [{ console: '192.168.1.2:8081' }, /^--console 192\.168\.1\.2:8081 is not a loopback address/],
    [{ electrum: ['http://x:1'] }, /expected tcp:\/\/HOST:PORT or ssl:\/\/HOST:PORT/],
  ];
  for (const [flags, re] of bad) {
    try {
      loadConfig({ env: {}, flags });
      t.fail(`accepted ${JSON.stringify(flags)}`);
    } catch (err) {
      t.type(err, ConfigError);
      t.match((err as Error).message, re);
      t.notMatch((err as Error).message, /\n/, 'one line');
    }
  }
  t.throws(() => loadConfig({ env: { BITDROP_CONFIG: '/nonexistent.json' } }), /^config file \/nonexistent\.json: /);
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'c.json'), '{"colour":"blue"}');
  t.throws(() => loadConfig({ env: {}, file: path.join(dir, 'c.json') }), /unknown key "colour"/);
  t.same(loadConfig({ env: {}, flags: { listen: '0.0.0.0:80', listenPublic: true } }).listen, { host: '0.0.0.0', port: 80 });
});

t.test('sizes and durations', async (t) => {
  t.equal(parseBytes('5GiB'), 5 * 1024 ** 3);
  t.equal(parseBytes('100MB'), 100e6);
  t.equal(parseBytes('1048576'), 1048576);
  t.equal(parseDuration('7d'), 7 * 86_400_000);
  t.equal(parseDuration('90m'), 90 * 60_000);
  t.equal(parseDuration('45'), 45_000, 'a bare number is seconds');
});

t.test('printed commands say npx bitdrop when the operator ran npx bitdrop (bitdrop is not on PATH after npm ci)', async (t) => {
  t.equal(commandName({ npm_command: 'exec' }), 'npx bitdrop');
  t.equal(commandName({}), 'bitdrop');
  t.equal(commandName({ npm_command: 'test' }), 'bitdrop');
});
