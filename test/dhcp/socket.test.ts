/**
 * The DHCP socket (made by the native addon, adopted by dgram). Its receive buffer: a boot storm
 * arrives faster than a registry batch or a GC pause lets the server read, and the kernel drops what
 * does not fit (each dropped DISCOVER costs its node a 4 s retransmission). Root gets 4 MiB past
 * net.core.rmem_max (SO_RCVBUFFORCE).
 */
import dgram from 'node:dgram';
import t from 'tap';
import { openDhcpSocket } from '../../src/servers/dhcp/netif.js';

t.test('the receive buffer grows to hold a burst', async (t) => {
  const plain = dgram.createSocket('udp4');
  await new Promise<void>((r) => plain.bind(0, '127.0.0.1', () => r()));
  const before = plain.getRecvBufferSize();
  plain.close();
  const { socket: s, rcvbuf: after } = await openDhcpSocket({ address: '127.0.0.1', port: 0, receiveBuffer: 4 * 1024 * 1024 });
  t.teardown(() => s.close());
  t.equal(after, s.getRecvBufferSize(), 'it reports what the kernel granted');
  t.ok(after >= before, `never smaller than the default (${before} -> ${after})`);
  if (process.getuid?.() === 0) t.ok(after >= 4 * 1024 * 1024, `root: at least 4 MiB (${after})`);
});

t.test('the adopted socket is an ordinary dgram socket: it receives, and it may broadcast', async (t) => {
  const { socket: s } = await openDhcpSocket({ address: '127.0.0.1', port: 0 });
  t.teardown(() => s.close());
  const { port } = s.address();
  t.ok(port > 0, `bound to an ephemeral port (${port})`);
  const got = new Promise<Buffer>((resolve) => s.once('message', resolve));
  const c = dgram.createSocket('udp4');
  t.teardown(() => c.close());
  c.send(Buffer.from('discover'), port, '127.0.0.1');
  t.equal((await got).toString(), 'discover', 'a datagram arrives');
  await new Promise<void>((resolve, reject) => s.send(Buffer.from('offer'), c.address().port || 9, '255.255.255.255', (err) => (err && (err as NodeJS.ErrnoException).code === 'EACCES' ? reject(err) : resolve())));
  t.pass('SO_BROADCAST is set: sending to 255.255.255.255 is allowed');
});

t.test('an address in use and an unknown interface are clear errors', async (t) => {
  const { socket: s } = await openDhcpSocket({ address: '127.0.0.1', port: 0 });
  t.teardown(() => s.close());
  const taken = dgram.createSocket('udp4');
  t.teardown(() => taken.close());
  await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
  await t.rejects(openDhcpSocket({ address: '127.0.0.1', port: taken.address().port }), { code: 'EADDRINUSE', syscall: 'bind' }, 'a port bound without SO_REUSEADDR');
  await t.rejects(openDhcpSocket({ address: '127.0.0.1', port: 0, iface: 'pvd-nosuch0' }), /dhcp interface pvd-nosuch0: no such network interface/);
});
