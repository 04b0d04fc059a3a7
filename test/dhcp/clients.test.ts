/**
 * The real dhcp service (registry, policy, sockets) in a network namespace, answering real clients
 * (busybox udhcpc, ISC dhclient) in another: addresses, boot fields, stable leases across reboots
 * and daemon restarts, REQUESTs for other servers, a /29 running out, a second interface that must
 * stay silent, and a 100,000-packet fuzz after which a real client still gets its lease.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { MessageType } from '../../src/protocol/dhcp/constants.js';
import { encodePacket } from '../../src/protocol/dhcp/packet.js';
import { openRegistry } from '../../src/registry/open.js';
import { clientPacket } from './packets.js';
import { DhcpDaemon } from '../lib/daemon.js';
import { needRoot } from '../lib/gate.js';
import { nsExec, testLab } from '../lib/netns.js';
import { makeStatedir } from '../lib/statedir.js';
import { dhclient, scriptedClient, txPackets, udhcpc } from './peers.js';

if (!needRoot(t)) process.exit(0);

const id = process.pid;
const lab = testLab(t, 'pvd-dhcp', { ipv6: false });
const dir = makeStatedir(t, {}, { prefix: 'pvd-dhcp-' });

const [S, C, X] = lab.nss('s', 'c', 'x');
const vs = `vs${id}`;
const vx = `vx${id}`;
lab.link({ ns: S, dev: vs, addr: '10.77.0.1/24' }, { ns: C, dev: 'eth0' });
// The master's other network: nothing on it may ever get a DHCP answer.
lab.link({ ns: S, dev: vx, addr: '10.79.0.1/24' }, { ns: X, dev: 'eth0' });

function writeConfig(name: string, dhcp: string, extra = ''): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `statedir: ${dir}\ndatabase: sqlite:${name}.db\nmaster: 10.77.0.1\n${extra}dhcp:\n  enabled: true\n  interface: ${vs}\n${dhcp}`);
  return path;
}

const mainConfig = writeConfig('main', '  range: [10.77.0.100, 10.77.0.150]\n  router: 10.77.0.1\n  dns: [10.77.0.1]\n  domain: cluster\n  leaseTime: 600\n');
const setMac = (mac: string) => {
  nsExec(C, 'ip', ['link', 'set', 'eth0', 'down']);
  nsExec(C, 'ip', ['link', 'set', 'eth0', 'address', mac]);
  nsExec(C, 'ip', ['link', 'set', 'eth0', 'up']);
};

t.test('real clients get address, next-server, boot file and their name', async (t) => {
  let daemon = await DhcpDaemon.start(lab, S, mainConfig);
  t.teardown(() => daemon.stop());

  setMac('52:54:00:aa:00:01');
  const txBefore = txPackets(S, vx);
  const uefi = udhcpc(C, 'eth0', dir, ['-x', '0x5d:0007', '-V', 'PXEClient:Arch:00007:UNDI:003016']);
  t.ok(uefi, 'udhcpc got a lease');
  t.equal(uefi?.ip, '10.77.0.100');
  t.equal(uefi?.siaddr, '10.77.0.1', 'next-server is the master');
  t.equal(uefi?.boot_file, 'snponly.efi', 'UEFI (arch 7) gets snponly.efi');
  t.equal(uefi?.hostname, 'n0000', 'auto-registered: the node comes up named');
  t.equal(uefi?.subnet, '255.255.255.0');
  t.equal(uefi?.router, '10.77.0.1');
  t.equal(uefi?.domain, 'cluster');
  t.equal(uefi?.lease, '600');
  t.equal(txPackets(S, vx), txBefore, 'no reply left by the other interface');

  const ipxe = udhcpc(C, 'eth0', dir, ['-x', '0x5d:0000', '-x', '0x4d:69505845']);
  t.equal(ipxe?.boot_file, 'http://10.77.0.1:8080/boot/${mac}.ipxe', 'iPXE (user class) gets the HTTP script URL');
  t.equal(ipxe?.opt175, 'b00101ff', 'with 175.176 = 1 (no ProxyDHCP wait)');
  t.equal(ipxe?.ip, '10.77.0.100', 'the same MAC keeps its address (second boot)');

  const http = udhcpc(C, 'eth0', dir, ['-x', '0x5d:0010', '-V', 'HTTPClient:Arch:00016:UNDI:003001']);
  t.equal(http?.boot_file, 'http://10.77.0.1:8080/boot/snponly.efi', 'UEFI HTTP boot gets a URL');
  t.equal(http?.vendor, 'HTTPClient', 'and option 60 HTTPClient');

  setMac('52:54:00:aa:00:02');
  const lease = dhclient(C, 'eth0', dir, 'request subnet-mask, routers, domain-name, domain-name-servers, host-name;\n');
  t.ok(lease, 'dhclient got a lease');
  t.match(lease, /fixed-address 10\.77\.0\.101;/);
  t.match(lease, /filename "undionly\.kpxe";/, 'a client without option 93 is treated as BIOS');
  t.match(lease, /server-name "10\.77\.0\.1";/);
  t.match(lease, /option host-name "n0001";/);
  t.match(lease, /option dhcp-server-identifier 10\.77\.0\.1;/);

  // A daemon restart: leases and names come back from the registry.
  await daemon.stop();
  daemon = await DhcpDaemon.start(lab, S, mainConfig);
  setMac('52:54:00:aa:00:01');
  t.equal(udhcpc(C, 'eth0', dir)?.ip, '10.77.0.100', 'same address after a daemon restart');
  setMac('52:54:00:aa:00:02');
  t.match(dhclient(C, 'eth0', dir), /fixed-address 10\.77\.0\.101;/, 'dhclient too');
  await daemon.stop();

  const config = loadConfig(mainConfig);
  const reg = await openRegistry(config, silentLogger());
  try {
    t.equal((await reg.getNodeByNodeid('52:54:00:AA:00:01'))?.name, 'n0000', 'node list shows it before any kernel loaded');
    t.equal((await reg.getNodeByAddress('10.77.0.101'))?.name, 'n0001', 'the HTTP server can find a node by its leased address');
    t.equal((await reg.getLease('52:54:00:AA:00:01'))?.state, 'bound');
    const stages = (await reg.listEvents('52:54:00:AA:00:01')).filter((e) => e.source === 'dhcp').map((e) => e.stage);
    t.ok(stages.includes('offer') && stages.includes('ack'), 'offers and acks are on the boot timeline');
  } finally {
    await reg.close();
  }
});

t.test('a REQUEST for another server is not answered; one for us is', async (t) => {
  const daemon = await DhcpDaemon.start(lab, S, mainConfig);
  t.teardown(() => daemon.stop());
  const other = encodePacket(clientPacket({ mac: '52:54:00:bb:00:01', type: MessageType.REQUEST, requested: '10.77.0.240', serverId: '10.77.0.254' }));
  const ours = encodePacket(clientPacket({ mac: '52:54:00:bb:00:02', type: MessageType.DISCOVER }));
  const [forOther, forUs] = scriptedClient(C, { steps: [{ packets: [other.toString('hex')], to: '255.255.255.255', port: 67, waitMs: 1500 }, { packets: [ours.toString('hex')], to: '255.255.255.255', port: 67, waitMs: 1500 }] }) as unknown[][];
  t.same(forOther, [], 'nothing for a REQUEST naming 10.77.0.254');
  t.equal(forUs!.length, 1, 'a DISCOVER is still answered');
  t.ok((await daemon.stats()).ignored >= 1, 'the foreign REQUEST is counted as ignored');
});

t.test('exhaustion of a /29: no offers and a counted warning, known nodes still answered', async (t) => {
  const cfg = writeConfig('small', '  range: [10.77.0.2, 10.77.0.6]\n  netmask: 255.255.255.248\n', 'defaults:\n  autoRegister: false\n');
  const daemon = await DhcpDaemon.start(lab, S, cfg, { DHCP_LOG: 'error' });
  t.teardown(() => daemon.stop());
  setMac('52:54:00:cc:00:01');
  const known = udhcpc(C, 'eth0', dir)?.ip;
  t.ok(known, 'the known node got an address');
  const macs = Array.from({ length: 8 }, (_, i) => `52:54:00:cc:01:0${i}`);
  const results = scriptedClient(C, { listenPort: 68, dora: { macs, to: '255.255.255.255', waitMs: 700 } }) as Array<{ ack: string | null }>;
  t.equal(results.filter((r) => r.ack).length, 4, 'the four free addresses are handed out');
  t.equal(results.filter((r) => !r.ack).length, 4, 'then no more offers');
  t.ok((await daemon.stats()).exhausted >= 4, 'exhaustion is counted');
  t.equal(udhcpc(C, 'eth0', dir)?.ip, known, 'the known node still gets its address');
});

t.test('the interface binding: a client on the other interface gets nothing', async (t) => {
  const daemon = await DhcpDaemon.start(lab, S, mainConfig);
  t.teardown(() => daemon.stop());
  const before = (await daemon.stats()).received;
  t.equal(udhcpc(X, 'eth0', dir, [], 2), null, 'no lease on the public side');
  t.equal((await daemon.stats()).received, before, 'its packets never even reach the server');
});

t.test('a second pool on its own interface: each network is served from its own pool', async (t) => {
  const cfg = writeConfig('multi', `  range: [10.77.0.100, 10.77.0.150]\n  subnets:\n    - { network: 10.79.0.0/24, range: [10.79.0.100, 10.79.0.110], router: 10.79.0.1, interface: ${vx} }\n`);
  const daemon = await DhcpDaemon.start(lab, S, cfg, { DHCP_LOG: 'error' });
  t.teardown(() => daemon.stop());
  const other = udhcpc(X, 'eth0', dir);
  t.equal(other?.ip, '10.79.0.100', 'the client on the second interface gets an address of its network');
  t.equal(other?.serverid, '10.79.0.1', "and the server's address on that interface");
  t.equal(other?.router, '10.79.0.1');
  setMac('52:54:00:aa:00:01');
  t.match(udhcpc(C, 'eth0', dir)?.ip, /^10\.77\.0\.1\d\d$/, 'the provisioning network still from the first pool');
});

t.test('pingCheck: an address some machine already answers on is not offered', async (t) => {
  const cfg = writeConfig('ping', '  range: [10.77.0.100, 10.77.0.150]\n  pingCheck: true\n');
  const daemon = await DhcpDaemon.start(lab, S, cfg, { DHCP_LOG: 'error' });
  t.teardown(() => daemon.stop());
  // A machine configured by hand with the first address of the range, on another interface's netns.
  nsExec(X, 'ip', ['addr', 'add', '10.77.0.100/24', 'dev', 'eth0']);
  nsExec(X, 'ip', ['route', 'add', '10.79.0.1/32', 'dev', 'eth0']);
  nsExec(S, 'ip', ['route', 'add', '10.77.0.100/32', 'dev', vx]);
  t.teardown(() => {
    nsExec(X, 'ip', ['route', 'del', '10.79.0.1/32', 'dev', 'eth0']);
    nsExec(S, 'ip', ['route', 'del', '10.77.0.100/32', 'dev', vx]);
    nsExec(X, 'ip', ['addr', 'del', '10.77.0.100/24', 'dev', 'eth0']);
  });
  setMac('52:54:00:ee:00:01');
  t.equal(udhcpc(C, 'eth0', dir)?.ip, '10.77.0.101', 'the next free address is offered instead');
});

t.test('fuzz: 100,000 hostile packets, then a real client still gets its lease', async (t) => {
  const cfg = writeConfig('fuzz', '  range: [10.77.0.100, 10.77.0.150]\n', 'defaults:\n  autoRegister: false\n');
  const daemon = await DhcpDaemon.start(lab, S, cfg, { DHCP_LOG: 'error' });
  t.teardown(() => daemon.stop());
  setMac('52:54:00:dd:00:01');
  const before = udhcpc(C, 'eth0', dir)?.ip;
  t.ok(before, 'a real client has a lease before the storm');
  const [sent] = scriptedClient(C, { listenPort: 6868, fuzz: { count: 100_000, to: '10.77.0.1', seed: 7 } }) as Array<{ sent: number }>;
  t.equal(sent?.sent, 100_000);
  // No pause after the storm: what is still queued in the server's 4 MiB receive buffer is worked
  // through while the real client asks. Replies to the storm's made-up ciaddrs must not hold the
  // client's replies behind ARP: it gets its lease at once (about 0.1 s here; 3.7 s when the
  // replies to those ciaddrs were unicast and waited for ARP in the socket's send buffer).
  const started = Date.now();
  const after = udhcpc(C, 'eth0', dir, [], 5)?.ip;
  const took = Date.now() - started;
  t.equal(after, before, 'the real client gets its lease again right after the storm');
  t.ok(took < 2500, `within a couple of seconds (${took} ms)`);
  const stats = await daemon.stats();
  t.ok(stats.received > 50_000, `the server received them (${stats.received})`);
  t.ok(stats.malformed > 20_000, `malformed ones dropped and counted (${stats.malformed})`);
  t.ok(stats.broadcastInstead > 0, `replies to ciaddrs nobody answers ARP for were broadcast (${stats.broadcastInstead})`);
  t.equal(daemon.proc.exitCode, null, 'the server is still running');
});
