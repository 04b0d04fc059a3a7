/**
 * The boot policy's one auto-registration behaviour, against the real SQLite registry (in memory):
 * which contacts register an unknown machine, which only record it as seen, and what the timeline
 * and the node's console are told.
 */
import t, { type Test } from 'tap';
import { Booter, type Contact } from '../../src/boot/booter.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import type { TimelineEvent } from '../../src/registry/types.js';

const MAC = '52:54:00:AB:00:01';

async function setup(t: Test, yaml = '') {
  const registry = SqliteRegistry.open({ path: ':memory:', logger: silentLogger() });
  t.teardown(() => registry.close());
  const config = parseConfig(`master: 10.0.0.1\n${yaml}`);
  const events: Array<Omit<TimelineEvent, 'time'>> = [];
  const booter = new Booter({ registry, config: () => config, timeline: (e) => events.push(e), log: silentLogger(), httpBase: () => 'http://10.0.0.1:8080' });
  return { registry, booter, events };
}

t.test('an unknown machine is registered at the contact that begins its boot, whichever server sees it', async (t) => {
  const begins: Array<[string, Contact, string]> = [
    ['a DHCP DISCOVER', { via: 'dhcp', nodeid: MAC, addr: null, message: 'discover' }, 'dhcp'],
    ['its iPXE script request', { via: 'http', nodeid: MAC, addr: '10.0.0.50', ipxe: true }, 'http'],
    ['nodescript init over HTTP', { via: 'http', nodeid: MAC, addr: '10.0.0.50', state: 'init' }, 'http'],
    ['nodescript init over the Perceus protocol', { via: 'perceus', nodeid: MAC, addr: '10.0.0.50', state: 'init' }, 'perceus'],
  ];
  for (const [what, contact, source] of begins) {
    const { registry, booter, events } = await setup(t, 'defaults:\n  group: rack1\n  nodeName: c###\n  firstNode: 1\n');
    await registry.addNode({ name: 'c001', nodeid: '52:54:00:AB:FF:FF' });
    const { node, why } = await booter.identify(contact);
    t.equal(node?.name, 'c002', `${what}: the next free name of the pattern`);
    t.equal(node?.group, 'rack1', `${what}: in the default group`);
    t.equal(node?.vnfs, null, `${what}: VNFS left to the group and defaults`);
    t.equal(why, '');
    t.match(events, [{ nodeid: MAC, source, stage: 'registered', ok: true, msg: /^auto-registered as c002 at its / }], `${what}: one timeline row says so`);
    t.same((await booter.identify(contact)).node, node, `${what}: a second contact finds the same node`);
    t.equal(events.length, 1, `${what}: registered once`);
  }
});

t.test('the other contacts of an unknown machine never register it', async (t) => {
  const { registry, booter, events } = await setup(t);
  const request = await booter.identify({ via: 'dhcp', nodeid: MAC, addr: null, message: 'request' });
  t.equal(request.node, null, 'a DHCP REQUEST (a renewal of a node the admin deleted) does not bring it back');
  t.same(await registry.listUnknown(), [], 'and is not another sighting: the DISCOVER of the boot counted it');
  const ready = await booter.identify({ via: 'http', nodeid: MAC, addr: '10.0.0.50', state: 'ready' });
  t.equal(ready.node, null);
  t.equal(ready.why, `${MAC} is not a registered node (asked for state ready)`);
  t.match(await registry.listUnknown(), [{ nodeid: MAC, via: 'http', lastaddr: '10.0.0.50' }], 'a nodescript request is a sighting');
  t.equal(await registry.getNodeByNodeid(MAC), null);
  t.same(events, []);
});

t.test('auto-registration off: the machine is recorded as seen and told how to add it', async (t) => {
  const { registry, booter } = await setup(t, 'defaults:\n  autoRegister: false\n');
  const { node, why } = await booter.identify({ via: 'dhcp', nodeid: MAC, addr: '10.0.9.1', message: 'discover' });
  t.equal(node, null);
  t.equal(why, `${MAC} is not a registered node and auto-registration is off (provisiond node add NAME ${MAC})`);
  t.match(await registry.listUnknown(), [{ nodeid: MAC, via: 'dhcp', lastaddr: '10.0.9.1' }]);
});

t.test('names exhausted: refused with the reason, on the timeline and as a sighting', async (t) => {
  const { registry, booter, events } = await setup(t, 'defaults:\n  nodeName: x#\n  totalNodes: 1\n');
  t.equal((await booter.identify({ via: 'dhcp', nodeid: MAC, addr: null, message: 'discover' })).node?.name, 'x0');
  const other = '52:54:00:AB:00:02';
  const { node, why } = await booter.identify({ via: 'http', nodeid: other, addr: '10.0.0.51', state: 'init' });
  t.equal(node, null);
  t.match(why, new RegExp(`^${other} cannot be auto-registered: .*no free name left in pattern x#`));
  t.match(events.at(-1), { nodeid: other, source: 'http', stage: 'registered', ok: false, msg: why });
  t.match(await registry.listUnknown(), [{ nodeid: other, via: 'http' }]);
  const ipxe = await booter.ipxeScript('52:54:00:AB:00:03', '10.0.0.52');
  t.match(ipxe, { node: null, ok: false, decision: 'refused: not registered' });
  t.match(ipxe.script, /^#!ipxe\necho provisiond: 52:54:00:AB:00:03 cannot be auto-registered: .*no free name left in pattern x#[\s\S]*\nexit\n/, "the reason on the machine's console, then the next boot device");
});

t.test('the DHCP decision: registered at its DISCOVER, the node named in the answer', async (t) => {
  const { booter } = await setup(t);
  const req = { hwaddr: MAC, arch: 0, userClasses: [], vendorClass: 'PXEClient', proxy: false, relay: null };
  const offer = await booter.dhcp({ ...req, messageType: 'discover' });
  t.match(offer, { answer: true, hostname: 'n0000', boot: { file: 'undionly.kpxe' } });
  const ack = await booter.dhcp({ ...req, messageType: 'request' });
  t.match(ack, { answer: true, hostname: 'n0000' }, 'the REQUEST that follows finds it');
});
