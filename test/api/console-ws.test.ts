/**
 * The console WebSocket from a plain client (the `ws` package) against a real daemon: refused
 * without a token, from another site's page, and for an unknown node; a node whose console cannot
 * open gets a clear error; a Bearer operator types and a Bearer viewer only watches; a plain GET is
 * a 426. The terminal size is the last resizing or typing operator's (`stty size` in a shell in
 * the pty answers it), a viewer's is ignored, and bad control messages are answered and counted.
 * And the session store: idle and absolute lifetimes.
 */
import t from 'tap';
import WebSocket from 'ws';
import { SessionStore } from '../../src/api/sessions.js';
import { startApiDaemon } from './lib/harness.js';

const CONSOLE = '#!/bin/sh\necho "console of $1 ready"\nwhile IFS= read -r line; do echo "node says: $line"; done\n';

interface Opened {
  ws: WebSocket;
  text: () => string;
  controls: Array<Record<string, unknown>>;
  closed: Promise<number>;
}

/** Opens a console socket; resolves at the handshake, or rejects with the HTTP status refusing it. */
function open(url: string, headers: Record<string, string>): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    let out = '';
    const controls: Array<Record<string, unknown>> = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (d, binary) => (binary ? (out += d.toString()) : controls.push(JSON.parse(d.toString()) as Record<string, unknown>)));
    ws.on('open', () => resolve({ ws, text: () => out, controls, closed }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode })));
    });
    ws.on('error', reject);
  });
}

/** The status and message of a refused handshake. */
async function refused(url: string, headers: Record<string, string>): Promise<{ status?: number; message: string }> {
  try {
    const o = await open(url, headers);
    o.ws.close();
    return { message: 'accepted' };
  } catch (err) {
    return { status: (err as { status?: number }).status, message: (err as Error).message };
  }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.test('console WebSocket: refusals, errors, roles', async (t) => {
  const h = await startApiDaemon(t, 'api:\n  port: 0\n  consoleGrace: 0.2\n');
  h.write('power/console', CONSOLE, 0o755);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:ce:00:01', attrs: { 'power.driver': 'exec', 'power.dir': 'power' } });
  await h.daemon.registry.addNode({ name: 'n0002', nodeid: '52:54:00:ce:00:02', attrs: { 'power.driver': 'exec', 'power.dir': 'nowhere' } });
  const ws = h.apiBase.replace(/^http/, 'ws');
  const bearer = (tok: string | null) => ({ authorization: `Bearer ${tok}` });

  t.match(await refused(`${ws}/api/v1/nodes/n0001/console`, {}), { status: 401 }, 'no token: 401');
  t.match(await refused(`${ws}/api/v1/nodes/n0001/console`, { ...bearer(h.viewer.token), origin: 'http://evil.example' }), { status: 403, message: /own pages/ }, 'another origin: 403');
  t.match(await refused(`${ws}/api/v1/nodes/nope/console`, bearer(h.viewer.token)), { status: 404 }, 'an unknown node: 404');
  t.match(await refused(`${ws}/api/v1/elsewhere`, bearer(h.viewer.token)), { status: 404 }, 'no WebSocket elsewhere');
  const plain = await fetch(`${h.apiBase}/api/v1/nodes/n0001/console`, { headers: bearer(h.viewer.token) });
  t.equal(plain.status, 426, 'a plain GET: 426');

  const broken = await open(`${ws}/api/v1/nodes/n0002/console`, bearer(h.operator.token));
  t.equal(await broken.closed, 1011, 'a console that cannot open closes the socket (1011)');
  t.match(broken.controls, [{ type: 'error', message: /could not be opened: exec driver cannot console/ }], 'with the reason');

  const op = await open(`${ws}/api/v1/nodes/n0001/console`, bearer(h.operator.token));
  const vw = await open(`${ws}/api/v1/nodes/n0001/console`, bearer(h.viewer.token));
  await until(() => vw.text().includes('console of n0001 ready') && op.text().includes('console of n0001 ready'));
  t.match(op.controls[0], { type: 'attached', node: 'n0001', canType: true });
  t.match(vw.controls[0], { type: 'attached', canType: false });
  vw.ws.send(Buffer.from('from the viewer\r'));
  await until(() => vw.controls.some((c) => c.type === 'readonly'));
  op.ws.send(Buffer.from('from the operator\r'));
  await until(() => vw.text().includes('node says: from the operator'));
  t.notMatch(op.text(), /node says: from the viewer/, "a viewer's input is dropped");
  t.equal(h.daemon.config.api.consoleGrace, 0.2);
  op.ws.close();
  vw.ws.close();
  await Promise.all([op.closed, vw.closed]);
});

t.test('console WebSocket: terminal size of the operator who last resized or typed; bad messages answered', async (t) => {
  const h = await startApiDaemon(t, 'api:\n  port: 0\n  consoleGrace: 0.2\n');
  // A shell in the exec console's pty: `stty size` prints the rows and columns its terminal has.
  h.write('power/console', '#!/bin/sh\nPS1="$ " exec /bin/sh\n', 0o755);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:ce:00:01', attrs: { 'power.driver': 'exec', 'power.dir': 'power' } });
  const url = `${h.apiBase.replace(/^http/, 'ws')}/api/v1/nodes/n0001/console`;
  const bearer = (tok: string | null) => ({ authorization: `Bearer ${tok}` });
  const alice = await open(url, bearer(h.operator.token));
  const bob = await open(url, bearer(h.admin.token));
  const vw = await open(url, bearer(h.viewer.token));
  await until(() => bob.controls.some((c) => c.type === 'attached'));
  t.match(alice.controls[0], { type: 'attached', resizable: true, size: null }, 'a pty console has a window size to set');

  /** Types `stty size` as `o` and returns the answer the node's shell printed. */
  let asked = 0;
  const sttySize = async (o: Opened) => {
    const mark = `m${++asked}`;
    o.ws.send(Buffer.from(`echo ${mark}-$(stty size)\r`));
    let m = null as RegExpExecArray | null;
    await until(() => (m = new RegExp(`${mark}-(\\d+ \\d+)`).exec(vw.text())) !== null);
    return m![1];
  };
  t.equal(await sttySize(alice), '24 80', 'before any resize: the pty default');

  alice.ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }));
  await until(() => vw.controls.some((c) => c.type === 'size' && c.cols === 100));
  t.match(vw.controls.at(-1), { type: 'size', cols: 100, rows: 30, by: 't-operator (operator)' }, 'every viewer is told the new size and who set it');
  t.equal(await sttySize(alice), '30 100', "the operator's size reached the node's terminal");

  bob.ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 43 }));
  await until(() => vw.controls.some((c) => c.type === 'size' && c.cols === 132));
  t.equal(await sttySize(alice), '30 100', 'the operator who types gets their own size back');
  t.equal(await sttySize(bob), '43 132', 'and the other operator theirs when typing');

  const before = vw.controls.filter((c) => c.type === 'size').length;
  vw.ws.send(JSON.stringify({ type: 'resize', cols: 40, rows: 10 }));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(vw.controls.filter((c) => c.type === 'size').length, before, "a viewer's size changes nothing");
  t.equal(await sttySize(bob), '43 132');

  const bad = ['stty size', '[1,2]', 'null', '{"type":"resize","cols":0,"rows":24}', '{"type":"resize","cols":80.5,"rows":24}', '{"type":"resize","cols":80,"rows":65536}', '{"type":"resize","cols":"80","rows":24}', '{"type":"reboot"}', `{"type":"resize","pad":"${'x'.repeat(5000)}"}`];
  for (const b of bad) alice.ws.send(b);
  await until(() => alice.controls.filter((c) => c.type === 'invalid').length === bad.length);
  t.match(alice.controls.filter((c) => c.type === 'invalid'), [{ message: /JSON control message/ }, { message: /JSON object/ }, { message: /JSON object/ }, { message: /1 to 1000/ }, { message: /1 to 1000/ }, { message: /1 to 1000/ }, { message: /1 to 1000/ }, { message: /unknown control message type "reboot"/ }, { message: /at most 1024 characters/ }], 'each bad message is answered with why');
  t.equal(h.log.lines.filter((l) => /refused a message from t-operator/.test(l.msg)).length, bad.length, 'and counted in the log');
  t.equal(await sttySize(bob), '43 132', 'the console goes on, its size unchanged');
  t.equal(alice.ws.readyState, WebSocket.OPEN, 'the socket of the sender stays open');
  for (const o of [alice, bob, vw]) o.ws.close();
  await Promise.all([alice.closed, bob.closed, vw.closed]);
});

t.test('sessions: idle and absolute lifetime, ids kept hashed', async (t) => {
  const s = new SessionStore({ ttlMs: 1000, maxMs: 2500 });
  const { id } = s.create('hash', 0);
  t.ok(s.get(id, 900), 'used within its idle time');
  t.ok(s.get(id, 1800), 'renewed by use');
  t.ok(s.get(id, 2400));
  t.equal(s.get(id, 2600), null, 'never beyond its absolute lifetime');
  const b = s.create('hash', 0).id;
  t.equal(s.get(b, 1001), null, 'idle too long: gone');
  const c = s.create('hash', 0).id;
  t.ok(s.delete(c));
  t.equal(s.get(c, 1), null, 'deleted (logout)');
  t.equal(s.get('made-up', 1), null);
});
