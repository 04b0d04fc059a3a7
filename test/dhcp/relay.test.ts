/**
 * Relayed DHCP: ISC dhcrelay (isc-dhcp-relay) between the client's network and the master's
 * provisioning network. The server must answer the relay (giaddr, port 67) from the pool that
 * contains giaddr, and the client must end up with an address of its own network.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DhcpDaemon } from '../lib/daemon.js';
import { needRoot } from '../lib/gate.js';
import { nsExec, testLab } from '../lib/netns.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';
import { udhcpc } from './peers.js';

if (!needRoot(t)) process.exit(0);

const id = process.pid;
const lab = testLab(t, 'pvd-dhcpr', { ipv6: false });
const dir = makeStatedir(t, {}, { prefix: 'pvd-dhcpr-' });

t.test('a client behind dhcrelay gets an address of its own subnet', async (t) => {
  const [S, R, C] = lab.nss('s', 'r', 'c');
  // The master's provisioning network is a bridge, as on a real master; the relay is one port.
  lab.bridge(S, 'br0', '10.77.0.1/24');
  lab.link({ ns: S, dev: `vp${id}`, master: 'br0' }, { ns: R, dev: 'up0', addr: '10.77.0.2/24' });
  nsExec(S, 'ip', ['route', 'add', '10.78.0.0/24', 'via', '10.77.0.2']);
  lab.link({ ns: R, dev: 'dn0', addr: '10.78.0.1/24' }, { ns: C, dev: 'eth0' });

  const cfg = join(dir, 'relay.yaml');
  writeFileSync(
    cfg,
    `statedir: ${dir}\ndatabase: sqlite:relay.db\nmaster: 10.77.0.1\ndhcp:\n  enabled: true\n  interface: br0\n  range: [10.77.0.100, 10.77.0.150]\n` +
      `  subnets:\n    - { network: 10.78.0.0/24, range: [10.78.0.100, 10.78.0.120], router: 10.78.0.1, dns: [10.78.0.1] }\n`,
  );
  const daemon = await DhcpDaemon.start(lab, S, cfg);
  t.teardown(() => daemon.stop());
  const relay = lab.spawn(R, 'dhcrelay', ['-4', '-d', '-q', '-id', 'dn0', '-iu', 'up0', '10.77.0.1'], { stdio: 'ignore' });
  t.teardown(() => relay.kill('SIGKILL'));
  await sleep(1000);

  const lease = udhcpc(C, 'eth0', dir, ['-x', '0x5d:0000'], 5);
  t.ok(lease, 'the client got a lease through the relay');
  t.equal(lease?.ip, '10.78.0.100', 'from the pool containing giaddr');
  t.equal(lease?.router, '10.78.0.1', "with its subnet's router");
  t.equal(lease?.dns, '10.78.0.1');
  t.equal(lease?.serverid, '10.77.0.1');
  t.equal(lease?.siaddr, '10.77.0.1', 'next-server is still the master');
  t.equal(lease?.boot_file, 'undionly.kpxe');
  const stats = await daemon.stats();
  t.equal(stats.acks, 1);
});
