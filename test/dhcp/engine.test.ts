/**
 * The state machine without sockets: leases, pools and the boot policy, table-driven. The real
 * clients in clients.test.ts cover the same paths end to end.
 */
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { decideDhcp } from '../../src/boot/dhcp-policy.js';
import { silentLogger } from '../../src/log/logger.js';
import { MessageType, Opt } from '../../src/protocol/dhcp/constants.js';
import { decapsulate, getIpOption, getMessageType, getStringOption } from '../../src/protocol/dhcp/options.js';
import type { DhcpPacket } from '../../src/protocol/dhcp/packet.js';
import type { ResolvedNode } from '../../src/registry/types.js';
import { DhcpEngine, type Arrival } from '../../src/servers/dhcp/engine.js';
import { ipToInt, LeaseTable, Pool, type DhcpDeclined, type DhcpLease } from '../../src/servers/dhcp/pool.js';
import type { DhcpHandler, DhcpLeaseStore, DhcpServerOptions } from '../../src/servers/dhcp/types.js';
import { clientPacket, type ClientSpec } from './packets.js';

const config = parseConfig('master: 10.0.0.1\ndhcp:\n  efiBootFile: snponly.efi\n');

/** The lease store as the registry keeps it, in memory (the registry has its own tests). */
function memoryStore(): DhcpLeaseStore & { saved: Map<string, DhcpLease>; declined: Map<string, DhcpDeclined> } {
  const saved = new Map<string, DhcpLease>();
  const declined = new Map<string, DhcpDeclined>();
  return {
    saved,
    declined,
    listLeases: async () => [...saved.values()],
    putLease: async (l) => {
      saved.set(l.hwaddr, l);
      declined.delete(l.address);
    },
    deleteLease: async (h) => void saved.delete(h),
    listDeclined: async () => [...declined.values()],
    putDeclined: async (d) => void declined.set(d.address, d),
    flush: async () => {},
  };
}

function setup(range: [string, string] = ['10.0.0.100', '10.0.0.199'], handler?: Partial<DhcpHandler>, network = '10.0.0.0/24') {
  const store = memoryStore();
  const opts: DhcpServerOptions = {
    mode: 'server',
    interface: null,
    serverAddress: '10.0.0.1',
    pools: [{ network, range, router: '10.0.0.1', dns: [], domain: null, interface: null }],
    leaseTime: 600,
    handler: { decide: async (c) => ({ answer: true, hostname: null, boot: { nextServer: '10.0.0.1', file: c.arch === 9 ? 'snponly.efi' : 'undionly.kpxe' } }), ...handler },
    leases: store,
    logger: silentLogger(),
  };
  const pools = opts.pools.map((p) => new Pool(p));
  const engine = new DhcpEngine(opts, pools, () => new Set(['10.0.0.1']));
  const arrival: Arrival = { iface: null, serverId: '10.0.0.1', pool: pools[0]! };
  const send = (s: ClientSpec) => engine.handle(clientPacket(s), arrival);
  async function dora(mac: string, extra: Partial<ClientSpec> = {}): Promise<string | null> {
    const offer = await send({ mac, type: MessageType.DISCOVER, ...extra });
    if (!offer) return null;
    const ack = await send({ mac, type: MessageType.REQUEST, requested: offer.yiaddr, serverId: '10.0.0.1', ...extra });
    return ack && getMessageType(ack) === MessageType.ACK ? ack.yiaddr : null;
  }
  return { engine, store, send, dora, arrival };
}

t.test('a client keeps its address across reboots, released or not', async (t) => {
  const { dora, send, store } = setup();
  const a = await dora('00:00:00:00:00:01');
  t.equal(a, '10.0.0.100');
  t.equal(await dora('00:00:00:00:00:02'), '10.0.0.101');
  await send({ mac: '00:00:00:00:00:01', type: MessageType.RELEASE, ciaddr: a! });
  t.equal(store.saved.get('00:00:00:00:00:01')?.state, 'released');
  t.equal(await dora('00:00:00:00:00:03'), '10.0.0.102', 'a released address is not the first one given away');
  t.equal(await dora('00:00:00:00:00:01'), a, 'same address on the next boot');
});

t.test('a REQUEST naming another server is never answered', async (t) => {
  const { send, engine } = setup();
  const offer = await send({ mac: '00:00:00:00:00:05', type: MessageType.DISCOVER });
  t.ok(offer);
  const r = await send({ mac: '00:00:00:00:00:05', type: MessageType.REQUEST, requested: '10.0.0.250', serverId: '10.0.0.254' });
  t.equal(r, null);
  t.equal(engine.stats.acks + engine.stats.naks, 0);
});

t.test('INIT-REBOOT and renew: ACK for its own address, NAK for a wrong one', async (t) => {
  const { dora, send } = setup();
  const a = await dora('00:00:00:00:00:07');
  const reboot = await send({ mac: '00:00:00:00:00:07', type: MessageType.REQUEST, requested: a! });
  t.equal(getMessageType(reboot!), MessageType.ACK);
  const renew = await send({ mac: '00:00:00:00:00:07', type: MessageType.REQUEST, ciaddr: a!, broadcast: false });
  t.equal(getMessageType(renew!), MessageType.ACK);
  t.equal(renew!.ciaddr, a);
  const wrong = await send({ mac: '00:00:00:00:00:07', type: MessageType.REQUEST, requested: '192.168.7.7' });
  t.equal(getMessageType(wrong!), MessageType.NAK, 'an address from another network is refused');
  t.equal(getStringOption(wrong!, Opt.MESSAGE), 'address 192.168.7.7 is not yours');
});

t.test('INFORM: configuration without an address, to ciaddr', async (t) => {
  const { send } = setup();
  const r = await send({ mac: '00:00:00:00:00:09', type: MessageType.INFORM, ciaddr: '10.0.0.33', broadcast: false });
  t.equal(getMessageType(r!), MessageType.ACK);
  t.equal(r!.yiaddr, '0.0.0.0');
  t.equal(r!.ciaddr, '10.0.0.33');
  t.notOk(r!.options.has(Opt.LEASE_TIME), 'no lease time in an INFORM reply');
  t.equal(getIpOption(r!, Opt.ROUTER), '10.0.0.1');
});

t.test('a declined address is quarantined, and the client gets another', async (t) => {
  const { dora, send, store } = setup();
  const a = await dora('00:00:00:00:00:08');
  await send({ mac: '00:00:00:00:00:08', type: MessageType.DECLINE, requested: a! });
  t.ok(store.declined.get(a!)!.expires > Date.now(), 'quarantined in the store, keyed by the address');
  t.same([...store.saved.keys()], [], "the client's lease is dropped, and no lease of a made-up hardware address is written");
  const b = await dora('00:00:00:00:00:08');
  t.not(b, a);
  t.ok(b);
});

t.test('a declined address is not offered until its decline expires, across a restart too', async (t) => {
  const pool = new Pool({ network: '10.0.0.0/24', range: ['10.0.0.100', '10.0.0.101'], router: null, dns: [], domain: null, interface: null });
  const now = Date.now();
  const old: DhcpLease = { hwaddr: '00:00:00:00:00:01', address: '10.0.0.100', expires: now - 1000, state: 'bound' };
  const table = new LeaseTable();
  // As the server loads the store: leases, then the declines (newer than any lease of their address).
  table.load([old], [{ address: '10.0.0.100', expires: now + 60_000 }]);
  t.equal(table.size, 1, 'the address is declined, no longer the old client\'s');
  t.equal(table.byHwaddr(old.hwaddr), undefined);
  t.notOk(table.isFreeFor(ipToInt('10.0.0.100'), old.hwaddr, now), 'not even for its last holder');
  t.equal(table.candidate(pool, '00:00:00:00:00:02', now, () => false), ipToInt('10.0.0.101'), 'a new client gets the other address');
  table.set({ hwaddr: '00:00:00:00:00:02', address: '10.0.0.101', expires: now + 600_000, state: 'bound' });
  t.equal(table.candidate(pool, '00:00:00:00:00:03', now, () => false), null, 'and then the pool is exhausted');
  t.equal(table.candidate(pool, '00:00:00:00:00:03', now + 61_000, () => false), ipToInt('10.0.0.100'), 'once the decline expired, the address is offered again');
  table.set({ hwaddr: '00:00:00:00:00:03', address: '10.0.0.100', expires: now + 600_000, state: 'bound' });
  t.equal(table.declinedUntilOf('10.0.0.100'), undefined, 'a lease of the address lifts the decline');
  t.equal(table.size, 2);
});

t.test('exhaustion of a /29 pool: no offer, counted, known clients still answered', async (t) => {
  const { dora, engine } = setup(['10.0.0.2', '10.0.0.6'], {}, '10.0.0.0/29');
  const known = await dora('00:00:00:00:01:00');
  const got: Array<string | null> = [];
  for (let i = 1; i <= 8; i++) got.push(await dora(`00:00:00:00:01:0${i}`));
  t.equal(got.filter(Boolean).length, 4, 'the four other addresses are given');
  t.equal(got.filter((x) => x === null).length, 4, 'then nothing');
  t.ok(engine.stats.exhausted >= 4, 'exhaustion counted');
  t.equal(await dora('00:00:00:00:01:00'), known, 'the known client still gets its address');
});

t.test('fixed addresses: a node gets its ipaddr; nobody else is offered it', async (t) => {
  const { dora } = setup(['10.0.0.100', '10.0.0.101'], {
    decide: async (c) => ({ answer: true, address: c.hwaddr === '00:00:00:00:02:01' ? '10.0.0.100' : null, boot: null }),
    addressReserved: (addr, hw) => addr === '10.0.0.100' && hw !== '00:00:00:00:02:01',
  });
  t.equal(await dora('00:00:00:00:02:02'), '10.0.0.101');
  t.equal(await dora('00:00:00:00:02:01'), '10.0.0.100');
  t.equal(await dora('00:00:00:00:02:03'), null, 'the reserved address is not offered');
});

t.test('relayed requests: the pool containing giaddr', async (t) => {
  const { engine, arrival } = setup();
  const relayed = await engine.handle(clientPacket({ mac: '00:00:00:00:03:01', type: MessageType.DISCOVER, giaddr: '10.9.9.1' }), arrival);
  t.equal(relayed, null, 'no pool for 10.9.9.1: ignored');
  const local = await engine.handle(clientPacket({ mac: '00:00:00:00:03:01', type: MessageType.DISCOVER, giaddr: '10.0.0.254' }), arrival);
  t.equal(local?.giaddr, '10.0.0.254');
  t.equal(local?.yiaddr, '10.0.0.100');
});

const node = (over: Partial<ResolvedNode> = {}): ResolvedNode => ({
  name: 'n0001', nodeid: '52:54:00:00:00:01', group: 'cluster', vnfs: 'demo', enabled: true, debug: 0, ipaddr: null, desc: null, boot: 'pxe',
  state: null, lastcontact: null, lastaddr: null, bootVnfs: null, bootImage: null, attrs: {}, sources: {}, ...over,
});

t.test('boot policy: architecture and iPXE decide the file', async (t) => {
  const base = { hwaddr: '52:54:00:00:00:01', userClasses: [] as string[], vendorClass: null, proxy: false };
  const cases: Array<[string, Partial<typeof base> & { arch: number | null }, string, string | null]> = [
    ['BIOS', { arch: 0 }, 'undionly.kpxe', null],
    ['UEFI x64', { arch: 9 }, 'snponly.efi', null],
    ['UEFI BC', { arch: 7 }, 'snponly.efi', null],
    ['ARM64', { arch: 11 }, 'ipxe-arm64.efi', null],
    ['UEFI HTTP boot', { arch: 16 }, 'http://10.0.0.1:8080/boot/snponly.efi', 'HTTPClient'],
    ['iPXE', { arch: 0, userClasses: ['iPXE'] }, 'http://10.0.0.1:8080/boot/${mac}.ipxe', null],
  ];
  for (const [name, req, file, vc] of cases) {
    const d = decideDhcp({ ...base, ...req }, node(), config);
    t.ok(d.answer, name);
    if (!d.answer) continue;
    t.equal(d.boot?.file, file, `${name}: ${file}`);
    t.equal(d.boot?.vendorClass ?? null, vc, `${name}: option 60`);
    t.equal(d.boot?.nextServer, '10.0.0.1');
    t.equal(d.hostname, 'n0001');
  }
  const local = decideDhcp({ ...base, arch: 0 }, node({ boot: 'local' }), config);
  t.same(local.answer && local.boot, null, 'boot local: an address, no boot file');
  const ign = decideDhcp({ ...base, arch: 0 }, node({ enabled: false }), parseConfig('dhcp:\n  localBoot: ignore\n'));
  t.equal(ign.answer, false, 'disabled with localBoot ignore: no answer');
  t.equal(decideDhcp({ ...base, arch: 0 }, null, parseConfig('dhcp:\n  ignoreUnknown: true\n')).answer, false, 'ignoreUnknown');
});

t.test('replies carry the boot fields, options 66/67, 175.176 for iPXE and the lease times', async (t) => {
  const { send } = setup(undefined, {
    decide: async () => ({ answer: true, hostname: 'n0042', boot: { nextServer: '10.0.0.1', file: 'http://10.0.0.1:8080/boot/${mac}.ipxe', ipxeNoProxyWait: true } }),
  });
  const o = (await send({ mac: '00:00:00:00:04:01', type: MessageType.DISCOVER, userClass: 'iPXE' })) as DhcpPacket;
  t.equal(o.siaddr, '10.0.0.1');
  t.equal(o.file, 'http://10.0.0.1:8080/boot/${mac}.ipxe');
  t.equal(getStringOption(o, Opt.BOOTFILE), o.file);
  t.equal(getStringOption(o, Opt.TFTP_SERVER), '10.0.0.1');
  t.equal(getStringOption(o, Opt.HOSTNAME), 'n0042');
  t.same([...decapsulate(o.options.get(Opt.IPXE_ENCAP)!)], [[176, Buffer.from([1])]]);
  t.equal(o.options.get(Opt.LEASE_TIME)?.readUInt32BE(0), 600);
  t.equal(o.options.get(Opt.RENEWAL_TIME)?.readUInt32BE(0), 300);
  t.equal(o.options.get(Opt.REBINDING_TIME)?.readUInt32BE(0), 525);
  t.equal(getIpOption(o, Opt.SUBNET_MASK), '255.255.255.0');
});

t.test('two clients REQUESTing one address while a registry lookup is in flight: one ACK, one NAK', async (t) => {
  // addressReserved answers after real I/O (a networked registry): the second request must not
  // pass the availability check made before that wait.
  const { send, store } = setup(['10.0.0.100', '10.0.0.199'], { addressReserved: () => new Promise((r) => setTimeout(() => r(false), 20)) });
  const a = '52:54:00:00:0a:01';
  const b = '52:54:00:00:0a:02';
  const [ra, rb] = await Promise.all([
    send({ mac: a, type: MessageType.REQUEST, requested: '10.0.0.150' }),
    send({ mac: b, type: MessageType.REQUEST, requested: '10.0.0.150' }),
  ]);
  const types = [ra, rb].map((r) => (r ? getMessageType(r) : null)).sort();
  t.same(types, [MessageType.ACK, MessageType.NAK].sort(), 'one is bound, the other told no');
  t.equal([...store.saved.values()].filter((l) => l.address === '10.0.0.150').length, 1, 'one lease of the address is stored');
});
