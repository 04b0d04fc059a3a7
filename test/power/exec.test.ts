import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ExecDriver } from '../../src/power/exec/driver.js';
import { powerSettings } from '../../src/power/settings.js';
import { PowerError, UnsupportedVerbError, type PowerState } from '../../src/power/types.js';
import { powerContract } from './contract.js';

const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'pvd-power-exec-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function driver(dir: string, extra: Record<string, string> = {}): { d: ExecDriver; state: string } {
  const state = join(tmp, `state-${Math.random().toString(36).slice(2)}`);
  const attrs = { 'power.driver': 'exec', 'power.dir': join(FIXTURES, dir), 'power.statefile': state, 'power.address': 'pdu7:12', 'power.password': 'Sw0rdfish!', ...extra };
  return { d: new ExecDriver({ name: 'n0001', nodeid: '52:54:00:00:00:01', settings: powerSettings('n0001', attrs, tmp) }), state };
}

powerContract(t, 'exec', async () => {
  const { d, state } = driver('exec');
  return {
    driver: d,
    peer: {
      secret: 'Sw0rdfish!',
      power: async () => (existsSync(state) ? (readFileSync(state, 'utf8').trim() as PowerState) : 'off'),
      bootdev: async () => readFileSync(`${state}.boot`, 'utf8').trim(),
    },
  };
});

t.test('exec: the script gets the node and its settings; a missing cycle is off then on', async (t) => {
  const { d, state } = driver('exec');
  t.same(await d.interrogate(), { model: 'fixture-pdu', node: 'n0001', address: 'pdu7:12' });
  await d.power('on');
  await d.power('cycle');
  t.equal(readFileSync(state, 'utf8').trim(), 'on');
  t.match(d.describe('cycle'), /exec\/off then .*exec\/on n0001 52:54:00:00:00:01/);
});

t.test('exec: a failure carries the script\'s message, with the password masked', async (t) => {
  const { d } = driver('exec');
  const err = await d.power('shutdown').then(() => null, (e: Error) => e);
  t.type(err, PowerError);
  t.match(err!.message, /exit 3: pdu pdu7:12 refused shutdown for n0001 \(password \*\*\*\*\)/);
  t.notOk(err!.message.includes('Sw0rdfish!'), 'the password the script echoed is masked');
  await t.rejects(driver('exec').d.power('reset'), /exit 2: n0001: cannot reset, the node is off/);
});

t.test('exec: a verb without an executable is a clear "cannot"', async (t) => {
  const { d } = driver('exec-slow');
  await t.rejects(d.power('off'), UnsupportedVerbError);
  await t.rejects(d.power('off'), /^exec driver cannot off: no executable .*exec-slow\/off$/);
  await t.rejects(d.console(), /exec driver cannot console/);
  await t.rejects(d.status(), /printed "maybe", expected on, off or unknown/);
});

t.test('exec: a hung script is killed at the timeout, children included', async (t) => {
  const { d, state } = driver('exec-slow');
  const start = Date.now();
  await t.rejects(d.power('on', { signal: AbortSignal.timeout(500) }), /timed out/);
  t.ok(Date.now() - start < 4000, `gave up in ${Date.now() - start} ms`);
  const child = Number(readFileSync(`${state}.child`, 'utf8'));
  await new Promise((r) => setTimeout(r, 300));
  // A killed orphan may linger as a zombie until init reaps it: that is gone too.
  let alive = true;
  try {
    alive = readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    alive = false;
  }
  t.notOk(alive, `the script's own child (pid ${child}) is gone too`);
});

t.test('exec: the console program runs in a pty and talks both ways', async (t) => {
  const { d } = driver('exec');
  const session = await d.console();
  let seen = '';
  session.stream.on('data', (b: Buffer) => (seen += b.toString()));
  await until(() => seen.includes('console of n0001 ready'));
  session.stream.write('hello there\r');
  await until(() => seen.includes('node says: hello there'));
  await session.close();
  t.pass('round trip through the pty');
});

t.test('exec: resizing the console sets the size of its pty (stty size answers it)', async (t) => {
  const { d } = driver('exec');
  const session = await d.console();
  let seen = '';
  session.stream.on('data', (b: Buffer) => (seen += b.toString()));
  await until(() => seen.includes('console of n0001 ready'));
  session.stream.write('size\r');
  await until(() => /size: \d+ \d+/.test(seen));
  t.match(seen, /size: 24 80/, 'opened at 80x24');
  t.type(session.resize, 'function', 'a pty console has a window size');
  session.resize!(132, 43);
  session.stream.write('size\r');
  await until(() => seen.includes('size: 43 132'));
  t.pass('the program sees 132 columns and 43 rows');
  await session.close();
  t.doesNotThrow(() => session.resize!(100, 30), 'resizing a closed console is harmless');
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
