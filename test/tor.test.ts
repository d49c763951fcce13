// TorService against real tor processes that never touch a network (DisableNetwork 1): the control
// protocol, the onion key, restarts, attach/off modes and client authorization. Reachability is
// test/tor-network.test.ts's job.

import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import t from 'tap';
import { TorService, TorServiceOptions, addClient, listClients, removeClient } from '../lib/tor';
import { ControlPort, ReplyReader, parseControlAddress } from '../lib/tor/control';
import { onionKeyFile } from '../lib/tor/onion-key';
import { base32Decode, base32Encode } from '../lib/tor/base32';
import { offlineAppendFile, requireTor, startLoneTor, tmpDir, waitFor } from './helpers/tor-lone';

requireTor();

const ONION = /^[a-z2-7]{56}\.onion$/;
const target = { host: '127.0.0.1', port: 18080 };

function service(dataDir: string, extra: Partial<TorServiceOptions> = {}) {
  const logs: string[] = [];
  const tor = new TorService({
    mode: 'managed',
    dataDir,
    torBinary: 'tor',
    torrcAppend: offlineAppendFile(dataDir),
    target,
    log: (line) => logs.push(line),
    ...extra,
  });
  return { tor, logs };
}

/** The managed tor's control port, as the daemon's tor wrote it. */
async function secondController(dataDir: string): Promise<ControlPort> {
  const text = fs.readFileSync(path.join(dataDir, 'tor', 'control-port'), 'utf8');
  const control = await ControlPort.connect(parseControlAddress(/PORT=(\S+)/.exec(text)![1]));
  await control.authenticate();
  return control;
}

const detached = async (control: ControlPort) => (await control.getInfo('onions/detached')).split('\n').filter(Boolean);

t.test("managed, leader terms: the tor of an earlier term still running never keeps the next term's tor from starting", async (t) => {
  const dataDir = tmpDir('managed-terms', t);
  // term 3's tor keeps running, as the tor of a stopped leader does (its DataDirectory lock held)
  const old = service(dataDir, { term: 3 });
  await old.tor.start();
  t.teardown(() => old.tor.stop());
  t.ok(fs.existsSync(path.join(dataDir, 'tor', 'data.t3', 'lock')), "term 3's tor works in data.t3");
  const next = service(dataDir, { term: 5 });
  await next.tor.start();
  t.teardown(() => next.tor.stop());
  t.equal(next.tor.status().onion, old.tor.status().onion, 'term 5 publishes the same onion (the key in tor/ is shared)');
  t.ok(fs.existsSync(path.join(dataDir, 'tor', 'control-port.t5')), "and works in files of its own (control-port.t5, data.t5)");
  t.ok(fs.readdirSync(path.join(dataDir, 'tor', 'data.t5')).includes('state'), "its DataDirectory seeded from term 3's");
});

t.test('managed: ADD_ONION gives an address; the key is kept 0600 and gives the same address after a restart', async (t) => {
  const dataDir = tmpDir('managed', t);

  const first = service(dataDir);
  const started = Date.now();
  await first.tor.start();
  t.comment(`managed tor started and ADD_ONION done in ${Date.now() - started} ms`);
  const status = first.tor.status();
  t.equal(status.mode, 'managed');
  t.match(status.onion, ONION);
  t.equal(first.tor.onionUrl(), `http://${status.onion}`);
  t.equal(status.bootstrap, 0, 'DisableNetwork 1: no bootstrap progress');
  t.equal(fs.statSync(onionKeyFile(path.join(dataDir, 'tor'))).mode & 0o777, 0o600, 'key file is 0600');
  t.equal(fs.statSync(path.join(dataDir, 'tor', 'data')).mode & 0o777, 0o700, "tor's DataDirectory is 0700");
  t.match(fs.readFileSync(onionKeyFile(path.join(dataDir, 'tor')), 'utf8'), /^ED25519-V3:[A-Za-z0-9+/]{86}==\n$/, 'padding kept');
  t.ok(first.logs.some((l) => l.includes(`http://${status.onion}`)), 'the address is logged');

  const control = await secondController(dataDir);
  t.same(await detached(control), [status.onion!.replace('.onion', '')], 'a second controller sees the detached onion');
  control.close();
  await first.tor.stop();

  const second = service(dataDir);
  await second.tor.start();
  t.equal(second.tor.status().onion, status.onion, 'same key, same address');
  await second.tor.stop();
});

/**
 * A tor with its network on but nowhere to go: a test network whose only authority is a closed
 * loopback port. Unlike DisableNetwork, tor then opens its SocksPort.
 */
function nowhereAppendFile(dir: string): string {
  const file = path.join(dir, 'nowhere.torrc');
  const fpr = 'A'.repeat(40);
  fs.writeFileSync(file, `TestingTorNetwork 1\nDirAuthority nowhere orport=1 no-v2 v3ident=${fpr} 127.0.0.1:1 ${fpr}\n`);
  return file;
}

t.test('managed: kill -9 tor → it is restarted, the onion published again, on the same SocksPort', async (t) => {
  const dataDir = tmpDir('restart', t);
  const { tor, logs } = service(dataDir, { torrcAppend: nowhereAppendFile(dataDir) });
  await tor.start();
  t.teardown(() => tor.stop());
  const onion = tor.status().onion!;
  const socks = tor.status().socks;
  t.match(socks, { host: '127.0.0.1', port: Number }, 'status().socks is the SocksPort tor opened');
  const pidFile = path.join(dataDir, 'tor', 'tor.pid');
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));

  const killed = Date.now();
  process.kill(pid, 'SIGKILL');
  await waitFor('the onion on a new tor', async () => {
    const newPid = Number(fs.readFileSync(pidFile, 'utf8'));
    if (newPid === pid || tor.status().onion !== onion) return false;
    const control = await secondController(dataDir);
    try {
      return (await detached(control)).includes(onion.replace('.onion', ''));
    } finally {
      control.close();
    }
  });
  t.comment(`republished ${Date.now() - killed} ms after kill -9`);
  t.same(tor.status().socks, socks, 'the new tor listens on the old SocksPort');
  t.ok(logs.some((l) => /tor exited \(SIGKILL\); trying again/.test(l)), 'the loss is logged');
  t.ok(logs.some((l) => /published again/.test(l)), 'the recovery is logged');
});

t.test('kill -9 the daemon: its tor exits too (TAKEOWNERSHIP), no orphan keeps the onion', async (t) => {
  const dataDir = tmpDir('orphan', t);
  const standIn = path.join(__dirname, 'helpers', 'tor-standin-daemon.ts');
  const args = ['start', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--tor', 'managed', '--torrc-append', offlineAppendFile(dataDir)];
  const daemon = spawn(process.execPath, [...process.execArgv, standIn, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
  });
  let out = '';
  daemon.stdout!.on('data', (d) => (out += d));
  await waitFor('the stand-in daemon to print its onion', () => {
    if (daemon.exitCode !== null) throw new Error(`the stand-in exited (${daemon.exitCode})`);
    return /http:\/\/[a-z2-7]{56}\.onion/.test(out);
  }, 30_000);
  const torPid = Number(fs.readFileSync(path.join(dataDir, 'tor', 'tor.pid'), 'utf8'));
  daemon.kill('SIGKILL');
  const killed = Date.now();
  await waitFor('tor to exit', () => {
    try {
      process.kill(torPid, 0);
      return false;
    } catch {
      return true;
    }
  }, 20_000);
  t.comment(`tor exited ${Date.now() - killed} ms after its daemon`);
  t.pass('no orphaned tor');
});

t.test('attach (cookie): DEL_ONION on stop, seen from a second control connection', async (t) => {
  const lone = await startLoneTor();
  t.teardown(() => lone.stop());
  const dataDir = tmpDir('attach', t);
  const { tor } = service(dataDir, { mode: 'attach', torControl: lone.controlArg });
  await tor.start();
  const id = tor.status().onion!.replace('.onion', '');
  t.equal(tor.status().mode, 'attach');

  const observer = await lone.connect();
  t.teardown(() => observer.close());
  t.same(await detached(observer), [id], 'listed while running');
  t.same((await observer.getInfo('onions/current')).split('\n').filter(Boolean), [], "not the observer's own onion");
  await tor.stop();
  t.same(await detached(observer), [], 'gone after stop(): DEL_ONION');
  t.equal(lone.child.exitCode, null, 'an attached tor is not ours to stop');

  // A crashed daemon leaves its detached onion behind; the next start removes it instead of colliding.
  const key = fs.readFileSync(onionKeyFile(path.join(dataDir, 'tor')), 'utf8').trim();
  await observer.addOnion({ key, ports: [{ virtualPort: 80, target: '127.0.0.1:18080' }], detach: true });
  t.same(await detached(observer), [id], 'the leftover of a crashed run');
  const next = service(dataDir, { mode: 'attach', torControl: lone.controlArg });
  await next.tor.start();
  t.equal(next.tor.status().onion, `${id}.onion`, 'restart over a leftover onion: same address, no collision');
  await next.tor.stop();
  t.same(await detached(observer), []);
});

t.test('onion DoS defences: proof-of-work and a stream limit go with ADD_ONION, and tor takes them', async (t) => {
  const lone = await startLoneTor();
  t.teardown(() => lone.stop());
  const dataDir = tmpDir('defences', t);
  const observer = await lone.connect();
  t.teardown(() => observer.close());

  // tor checks every ADD_ONION keyword and value: a misspelt one, or a value out of range, is refused whole.
  const probe = { key: 'NEW:ED25519-V3', ports: [{ virtualPort: 80, target: '127.0.0.1:18080' }] };
  await t.rejects(observer.command('ADD_ONION NEW:ED25519-V3 PoWDefenseEnabled=1 Port=80,127.0.0.1:18080'), /512 .*Unrecognized keyword argument "PoWDefenseEnabled"/,
    'a keyword tor does not know is refused, so an accepted one was understood');
  await t.rejects(observer.command('ADD_ONION NEW:ED25519-V3 MaxStreams=70000 Port=80,127.0.0.1:18080'), /512/, 'MaxStreams past 65535 is refused');
  const accepted = await observer.addOnion({ ...probe, maxStreams: 64, pow: { queueRate: 250, queueBurst: 2500 } });
  t.match(accepted.serviceId, /^[a-z2-7]{56}$/, 'PoWDefensesEnabled, PoWQueueRate, PoWQueueBurst, MaxStreams and MaxStreamsCloseCircuit accepted');
  await observer.delOnion(accepted.serviceId).catch(() => undefined);

  const { tor, logs } = service(dataDir, { mode: 'attach', torControl: lone.controlArg, defenses: { pow: true, powQueueRate: 100, powQueueBurst: 1000, maxStreams: 32 } });
  t.teardown(() => tor.stop());
  await tor.start();
  const id = tor.status().onion!.replace('.onion', '');
  t.same(await detached(observer), [id], 'tor lists the onion it accepted with the defences (GETINFO onions/detached)');
  t.match(tor.status().defenses, {
    pow: { on: true, queueRate: 100, queueBurst: 1000 },
    maxStreams: { on: true, limit: 32, closeCircuit: true },
    introDoS: { on: false, why: /HiddenServiceEnableIntroDoSDefense/ },
  }, 'status reports what tor took, and what ADD_ONION cannot set');
  t.ok(logs.some((l) => /DoS defences: proof-of-work \(queue 100\/s, burst 1000\), at most 32 streams a circuit/.test(l)), 'and the log says so');
  // Ephemeral onions are not configuration: GETCONF has nothing to show for them (hence the checks above).
  t.same((await observer.command('GETCONF HiddenServiceOptions')).lines, ['HiddenServiceOptions']);
  await tor.stop();

  const off = service(dataDir, { mode: 'attach', torControl: lone.controlArg, defenses: { pow: false, powQueueRate: 250, powQueueBurst: 2500, maxStreams: 0 } });
  t.teardown(() => off.tor.stop());
  await off.tor.start();
  t.match(off.tor.status().defenses, { pow: { on: false, why: /--onion-pow off/ }, maxStreams: { on: false } }, 'both can be turned off');
});

t.test('attach with a password, and over a unix socket', async (t) => {
  const withPassword = await startLoneTor({ password: 'correct horse' });
  t.teardown(() => withPassword.stop());
  const dataDir = tmpDir('attach-pw', t);

  const noPassword = service(dataDir, { mode: 'attach', torControl: withPassword.controlArg });
  await t.rejects(noPassword.tor.start(), { message: /wants a control password: pass --tor-password/ });
  const wrong = service(dataDir, { mode: 'attach', torControl: withPassword.controlArg, torPassword: 'nope' });
  await t.rejects(wrong.tor.start(), { message: /rejected the control password/ });
  const right = service(dataDir, { mode: 'attach', torControl: withPassword.controlArg, torPassword: 'correct horse' });
  await right.tor.start();
  t.match(right.tor.status().onion, ONION);
  await right.tor.stop();

  const unix = await startLoneTor({ unix: true });
  t.teardown(() => unix.stop());
  const overUnix = service(dataDir, { mode: 'attach', torControl: unix.controlArg });
  await overUnix.tor.start();
  t.equal(overUnix.tor.status().onion, right.tor.status().onion ?? overUnix.tor.status().onion);
  t.match(overUnix.tor.status().onion, ONION);
  await overUnix.tor.stop();
});

t.test('readable one-line errors', async (t) => {
  const dataDir = tmpDir('errors', t);
  const nobody = service(dataDir, { mode: 'attach', torControl: '127.0.0.1:1' });
  await t.rejects(nobody.tor.start(), { message: 'cannot reach the tor control port 127.0.0.1:1: ECONNREFUSED' });

  const bad = path.join(dataDir, 'bad.torrc');
  fs.writeFileSync(bad, 'NoSuchTorOption 1\n');
  const broken = service(dataDir, { torrcAppend: bad });
  const err = await broken.tor.start().then(() => undefined, (e: Error) => e);
  t.match(err?.message, /^tor exited during startup \(code 1\): \[warn\] .*NoSuchTorOption/);
  t.notMatch(err?.message, /\n/, 'one line');
});

t.test('off, and managed without a tor binary falls back to off with the install hint', async (t) => {
  const dataDir = tmpDir('off', t);
  const off = service(dataDir, { mode: 'off' });
  await off.tor.start();
  t.same(off.tor.status(), { mode: 'off', bootstrap: 0, onion: undefined, socks: undefined });
  t.equal(off.tor.onionUrl(), undefined);
  await off.tor.stop();

  const missing = service(dataDir, { torBinary: 'tor-that-is-not-installed' });
  await missing.tor.start();
  t.equal(missing.tor.status().mode, 'off');
  t.ok(missing.logs.some((l) => l.includes('apt-get install tor')), missing.logs.join('\n'));
  await missing.tor.stop();
  t.notOk(fs.existsSync(path.join(dataDir, 'tor', 'data')), 'no tor was started');
});

t.test('client authorization: add, list, remove; a running service re-adds its onion', async (t) => {
  const dataDir = tmpDir('clients', t);

  // Before the first start the address is unknown, so the client line comes later.
  const early = addClient(dataDir, 'alice');
  t.match(early.publicKey, /^[A-Z2-7]{52}$/);
  t.match(early.privateKey, /^[A-Z2-7]{52}$/);
  t.equal(early.line, undefined);
  t.throws(() => addClient(dataDir, 'alice'), { message: /already exists/ });
  t.throws(() => addClient(dataDir, '../evil'), { message: /is not a client name/ });

  const { tor, logs } = service(dataDir);
  await tor.start();
  t.teardown(() => tor.stop());
  const id = tor.status().onion!.replace('.onion', '');
  t.ok(logs.some((l) => l.includes('(private: 1 client)')), 'published with ClientAuthV3');

  const [alice] = listClients(dataDir);
  t.equal(alice.line, `${id}:descriptor:x25519:${early.privateKey}`, "the .auth_private line for the client's tor");
  const dir = path.join(dataDir, 'tor', 'clients');
  t.equal(fs.readFileSync(path.join(dir, 'alice.auth'), 'utf8'), `descriptor:x25519:${early.publicKey}\n`, "tor's authorized_clients format");
  t.equal(fs.statSync(path.join(dir, 'alice.x25519')).mode & 0o777, 0o600);

  const bob = addClient(dataDir, 'bob');
  t.equal(bob.line?.split(':')[0], id);
  await waitFor('the re-add with 2 clients', () => logs.some((l) => l.includes('(private: 2 clients)')), 10_000);
  t.same(listClients(dataDir).map((c) => c.name), ['alice', 'bob']);

  removeClient(dataDir, 'alice');
  removeClient(dataDir, 'bob');
  t.throws(() => removeClient(dataDir, 'bob'), { message: 'no client named "bob"' });
  await waitFor('the re-add as a public onion', () => logs.at(-1)?.includes(`http://${id}.onion → 127.0.0.1:18080`) && !logs.at(-1)?.includes('private'), 10_000);
  t.equal(tor.status().onion, `${id}.onion`, 'same address with or without clients');
  t.same(listClients(dataDir), []);
});

t.test('control-reply framing and base32 (what granax gets wrong)', async (t) => {
  const reader = new ReplyReader();
  const wire = Buffer.from('250+onions/detached=\r\nabc\r\n..dot\r\n.\r\n250 OK\r\n250-PrivateKey=ED25519-V3:AA==\r\n250 OK\r\n650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5\r\n');
  const replies = [];
  for (let i = 0; i < wire.length; i += 7) replies.push(...reader.feed(wire.subarray(i, i + 7))); // TCP cuts anywhere
  t.same(replies, [
    { code: 250, lines: ['onions/detached=abc\n.dot', 'OK'] },
    { code: 250, lines: ['PrivateKey=ED25519-V3:AA==', 'OK'] },
    { code: 650, lines: ['STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5'] },
  ]);
  const bytes = Buffer.from('0123456789abcdefghijklmnopqrstuv');
  t.same(base32Decode(base32Encode(bytes)), bytes);
  t.equal(base32Encode(Buffer.from('foobar')), 'MZXW6YTBOI', 'RFC 4648 test vector, unpadded');
});
