// names-proxy's fallback to a name's mirrors, against a scripted control port (the real tor story is in
// test/mirrors-tor.test.ts): a stream to the box's onion that fails before it connects sends the name's next
// streams to its first mirror; a mirror that fails too, to the next; after the down time, the box again. A
// name without mirrors keeps its onion.

import net from 'net';
import readline from 'readline';
import t, { type Test as TapTest } from 'tap';
import { NamesProxy } from '../lib/names/proxy';

const onion = (c: string) => `${c.repeat(56)}.onion`;
const BOX = onion('a');
const B = onion('b');
const C = onion('c');

/** A control port that answers what names-proxy asks, records its commands, and sends the events we script. */
async function fakeTor(t: TapTest) {
  const commands: string[] = [];
  const waiters: Array<() => void> = [];
  let client: net.Socket | undefined;
  const server = net.createServer((sock) => {
    client = sock;
    readline.createInterface({ input: sock }).on('line', (line) => {
      commands.push(line);
      for (const w of waiters.splice(0)) w();
      if (line.startsWith('PROTOCOLINFO')) sock.write('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n');
      else if (line.startsWith('GETCONF')) sock.write('250 __LeaveStreamsUnattached=0\r\n');
      else if (line.startsWith('GETINFO stream-status')) sock.write('250-stream-status=\r\n250 OK\r\n');
      else sock.write('250 OK\r\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { client?.destroy(); server.close(() => r()); }));
  const port = (server.address() as net.AddressInfo).port;
  /** sends a STREAM event and waits for names-proxy's answer to it (for NEW: its REDIRECTSTREAM) */
  const event = async (line: string, answer?: RegExp) => {
    const before = commands.length;
    client!.write(`650 ${line}\r\n`);
    if (!answer) return undefined;
    const end = Date.now() + 10_000;
    for (;;) {
      const hit = commands.slice(before).find((c) => answer.test(c));
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no ${answer} after ${line}: ${commands.slice(before).join(' | ')}`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 200); });
    }
  };
  return { port, commands, event };
}

t.test('a name falls back to its mirrors while its box does not answer', async (t) => {
  const tor = await fakeTor(t);
  const lines: string[] = [];
  const proxy = new NamesProxy({
    control: { host: '127.0.0.1', port: tor.port },
    resolve: async (domain) => (domain === 'box.bit' ? { onion: BOX, mirrors: [B, C] } : { onion: onion('d'), mirrors: [] }),
    downMs: 1500,
    log: (l) => lines.push(l),
  });
  await proxy.start();
  t.teardown(() => proxy.stop());
  let n = 0;
  /** a log line appears (a redirect is logged once tor has answered it) */
  const logged = async (text: string) => {
    for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (lines.some((l) => l.includes(text))) return true;
    return false;
  };
  const open = async (host: string) => {
    const id = String(++n);
    await tor.event(`STREAM ${id} NEW 0 ${host}:80 SOURCE_ADDR=127.0.0.1:5000 PURPOSE=USER`, new RegExp(`^ATTACHSTREAM ${id} `));
    return { id, to: tor.commands.find((c) => c.startsWith(`REDIRECTSTREAM ${id} `))!.split(' ')[2] };
  };
  const settle = async (id: string, to: string, status: 'SUCCEEDED' | 'FAILED' | 'CLOSED') => {
    await tor.event(`STREAM ${id} ${status} 0 ${to}:80${status === 'FAILED' ? ' REASON=TIMEOUT' : ''}`);
    await new Promise((r) => setImmediate(r));
  };

  const first = await open('box.bit');
  t.equal(first.to, BOX, 'the box\'s onion first');
  await settle(first.id, BOX, 'FAILED');
  const second = await open('box.bit');
  t.equal(second.to, B, 'its stream failed before it connected: the next goes to the first mirror');
  t.ok(await logged(`box.bit at ${BOX} does not answer (TIMEOUT); its next streams go to its mirror ${B}`), 'and says so');
  t.ok(await logged(`box.bit → ${B} port 80 (a mirror: ${BOX} does not answer)`), 'each redirect names the mirror');
  await settle(second.id, B, 'SUCCEEDED');
  t.equal((await open('box.bit')).to, B, 'the mirror answers: it keeps the name while the box is down');

  const third = await open('box.bit');
  await settle(third.id, B, 'CLOSED'); // the browser gave up before it connected
  t.equal((await open('box.bit')).to, C, 'a mirror given up on too: the next one');

  const other = await open('other.bit');
  await settle(other.id, onion('d'), 'FAILED');
  t.equal((await open('other.bit')).to, onion('d'), 'a name without mirrors keeps its onion');

  await new Promise((r) => setTimeout(r, 1600));
  const back = await open('box.bit');
  t.equal(back.to, BOX, 'after the down time, the box is tried again');
  await settle(back.id, BOX, 'SUCCEEDED');
  t.equal((await open('box.bit')).to, BOX, 'and kept once it answers');
});
