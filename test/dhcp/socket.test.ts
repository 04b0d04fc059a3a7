/**
 * The DHCP socket's receive buffer: a boot storm arrives faster than a registry batch or a GC pause
 * lets the server read, and the kernel drops what does not fit (each dropped DISCOVER costs its
 * node a 4 s retransmission). Root gets 4 MiB past net.core.rmem_max (SO_RCVBUFFORCE).
 */
import dgram from 'node:dgram';
import t from 'tap';
import { growReceiveBuffer } from '../../src/servers/dhcp/netif.js';

t.test('the receive buffer grows to hold a burst', async (t) => {
  const s = dgram.createSocket('udp4');
  t.teardown(() => s.close());
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const before = s.getRecvBufferSize();
  const after = growReceiveBuffer(s, 4 * 1024 * 1024);
  t.equal(after, s.getRecvBufferSize(), 'it reports what the kernel granted');
  t.ok(after >= before, `never smaller than the default (${before} -> ${after})`);
  if (process.getuid?.() === 0) t.ok(after >= 4 * 1024 * 1024, `root: at least 4 MiB (${after})`);
});
