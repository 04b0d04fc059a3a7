/**
 * proxyDHCP beside dnsmasq (the site's DHCP server, on another host of the same network: a bridge in
 * the master's namespace joins master, dnsmasq host and client. Not the same namespace: dnsmasq
 * holds port 67 without SO_REUSEADDR, so no second DHCP daemon can share a host with it). dnsmasq hands out the
 * address, provisiond only the boot information (no yiaddr, option 60 PXEClient, option 43) on
 * port 67 and the boot file again on port 4011. Non-PXE clients get nothing from provisiond.
 * The PXE client is the scripted one (a stand-in for a PXE ROM, which udhcpc and dhclient are not);
 * both servers are real.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageType } from '../../src/protocol/dhcp/constants.js';
import { encodePacket } from '../../src/protocol/dhcp/packet.js';
import { clientPacket } from './packets.js';
import { DhcpDaemon } from '../lib/daemon.js';
import { needRoot } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';
import { scriptedClient, udhcpc } from './peers.js';

if (!needRoot(t)) process.exit(0);

const id = process.pid;
const lab = testLab(t, 'pvd-dhcpp', { ipv6: false });
const dir = makeStatedir(t, {}, { prefix: 'pvd-dhcpp-' });

interface Reply {
  from: string;
  port: number;
  type: number;
  yiaddr: string;
  siaddr: string;
  file: string;
  options: Record<string, string>;
}

t.test('a PXE client ends with an address from dnsmasq and its boot file from provisiond', async (t) => {
  const [S, D, C] = lab.nss('s', 'd', 'c');
  lab.bridge(S, 'br0', '10.77.0.1/24');
  lab.link({ ns: S, dev: `vd${id}`, master: 'br0' }, { ns: D, dev: 'eth0', addr: '10.77.0.2/24' });
  lab.link({ ns: S, dev: `vc${id}`, master: 'br0' }, { ns: C, dev: 'eth0' });
  const vs = 'br0';
  const dnsmasq = lab.spawn(D, 'dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=eth0', '--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,1h', `--dhcp-leasefile=${dir}/dnsmasq.leases`, '--no-ping', `--pid-file=${dir}/dnsmasq.pid`], { stdio: 'ignore' });
  t.teardown(() => dnsmasq.kill('SIGKILL'));
  await sleep(500);
  const cfg = join(dir, 'proxy.yaml');
  writeFileSync(cfg, `statedir: ${dir}\ndatabase: sqlite:proxy.db\nmaster: 10.77.0.1\ndhcp:\n  enabled: true\n  mode: proxy\n  interface: ${vs}\n`);
  const daemon = await DhcpDaemon.start(lab, S, cfg);
  t.teardown(() => daemon.stop());

  const mac = '52:54:00:ee:00:01';
  const discover = clientPacket({ mac, type: MessageType.DISCOVER, arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', uuid: '11223344-5566-7788-99aa-bbccddeeff00' });
  const [offers] = scriptedClient(C, { steps: [{ packets: [encodePacket(discover).toString('hex')], to: '255.255.255.255', port: 67, waitMs: 2000 }] }) as Reply[][];
  const withAddress = offers!.filter((o) => o.type === MessageType.OFFER && o.yiaddr !== '0.0.0.0');
  const proxy = offers!.filter((o) => o.type === MessageType.OFFER && o.yiaddr === '0.0.0.0');
  t.equal(withAddress.length, 1, 'dnsmasq offers an address');
  t.match(withAddress[0]?.yiaddr, /^10\.77\.0\.(5\d|60)$/);
  t.equal(proxy.length, 1, 'provisiond sends one proxy offer');
  t.equal(proxy[0]?.file, 'undionly.kpxe', 'with the boot file');
  t.equal(proxy[0]?.siaddr, '10.77.0.1', 'and the next-server');
  t.equal(Buffer.from(proxy[0]?.options['60'] ?? '', 'hex').toString(), 'PXEClient', 'option 60 PXEClient');
  t.equal(proxy[0]?.options['43'], '060108ff', 'option 43: no boot server discovery, use the file named');
  t.equal(proxy[0]?.options['97'], '0011223344556677' + '8899aabbccddeeff00', 'the UUID echoed');

  // The client takes dnsmasq's address, then asks the proxy on port 4011 (PXE spec 2.2.8).
  const address = withAddress[0]!.yiaddr;
  const request = clientPacket({ mac, type: MessageType.REQUEST, xid: 7, requested: address, serverId: '10.77.0.2', arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' });
  const boot = clientPacket({ mac, type: MessageType.REQUEST, xid: 8, ciaddr: address, arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', broadcast: false });
  const [acks, proxyAcks] = scriptedClient(
    C,
    { steps: [{ packets: [encodePacket(request).toString('hex')], to: '255.255.255.255', port: 67, waitMs: 1500 }, { packets: [encodePacket(boot).toString('hex')], to: '10.77.0.1', port: 4011, waitMs: 1500 }] },
    `${address}/24`,
  ) as Reply[][];
  t.same(acks!.map((a) => [a.type, a.yiaddr]), [[MessageType.ACK, address]], 'dnsmasq ACKs its address; provisiond stays silent');
  t.equal(proxyAcks!.length, 1, 'the proxy answers on port 4011');
  t.equal(proxyAcks![0]?.port, 4011);
  t.equal(proxyAcks![0]?.type, MessageType.ACK);
  t.equal(proxyAcks![0]?.file, 'undionly.kpxe', 'the client ends with its address and its boot file');

  const before = await daemon.stats();
  const plain = udhcpc(C, 'eth0', dir);
  t.match(plain?.ip, /^10\.77\.0\.(5\d|60)$/, 'a plain client gets its address from dnsmasq');
  t.notOk(plain?.boot_file, 'and no boot file');
  const after = await daemon.stats();
  t.equal(after.offers, before.offers, 'provisiond did not answer the non-PXE client');
  t.ok(after.ignored > before.ignored);
});
