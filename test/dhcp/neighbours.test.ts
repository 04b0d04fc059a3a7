/**
 * Which ciaddrs a reply may be unicast to without waiting for ARP (src/servers/dhcp/neighbours.ts),
 * with the kernel's ARP table and the interface list given as text (the storm itself, with the real
 * kernel, is the fuzz test of clients.test.ts).
 */
import t from 'tap';
import type { networkInterfaces } from 'node:os';
import { Neighbours } from '../../src/servers/dhcp/neighbours.js';

const ARP = `IP address       HW type     Flags       HW address            Mask     Device
10.77.0.20       0x1         0x2         52:54:00:aa:00:01     *        vs1
10.77.0.21       0x1         0x0         00:00:00:00:00:00     *        vs1
`;

const ifaces = (() => ({
  vs1: [{ address: '10.77.0.1', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.77.0.1/24' }],
  vx1: [{ address: '10.79.0.1', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.79.0.1/24' }],
})) as unknown as typeof networkInterfaces;

t.test('on-link addresses need a complete ARP entry; off-link ones go to their router', async (t) => {
  let reads = 0;
  let arp = ARP;
  const n = new Neighbours(() => {
    reads++;
    return arp;
  }, ifaces);
  t.ok(n.deliverable('10.77.0.20', 'vs1', 1000), 'a client the kernel knows (it ARPed for us): unicast');
  t.notOk(n.deliverable('10.77.0.21', 'vs1', 1001), 'an incomplete entry (ARP still asking): broadcast');
  t.notOk(n.deliverable('10.77.0.99', 'vs1', 1002), 'an address nobody announced: broadcast');
  t.ok(n.deliverable('192.0.2.7', 'vs1', 1003), 'off-link (behind a router): unicast');
  t.ok(n.deliverable('10.79.0.5', 'vs1', 1004), "another interface's subnet is off-link for a socket tied to vs1");
  t.notOk(n.deliverable('10.79.0.5', null, 1005), 'but on-link for an untied one');
  t.equal(reads, 1, 'the table is read once for a burst of misses');
  arp += '10.77.0.99       0x1         0x2         52:54:00:aa:00:02     *        vs1\n';
  t.notOk(n.deliverable('10.77.0.99', 'vs1', 1100), 'not re-read within 250 ms');
  t.ok(n.deliverable('10.77.0.99', 'vs1', 1300), 'then re-read: the new neighbour is seen');
  t.equal(reads, 2);
});

t.test('without an ARP table to read, replies go where RFC 2131 says', async (t) => {
  const n = new Neighbours(() => {
    throw new Error('ENOENT');
  }, ifaces);
  t.ok(n.deliverable('10.77.0.99', 'vs1', 1000));
});
