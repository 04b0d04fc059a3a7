/**
 * The DHCP socket (made by the native addon, its datagrams in batches through recvmmsg and
 * sendmmsg). Its receive buffer: a boot storm arrives faster than a registry batch or a GC pause lets
 * the server read, and the kernel drops what does not fit (each dropped DISCOVER costs its node a
 * 4 s retransmission). Root gets 4 MiB past net.core.rmem_max (SO_RCVBUFFORCE).
 */
import dgram from 'node:dgram';
import t, { type Test } from 'tap';
import { MessageType, Opt } from '../../src/protocol/dhcp/constants.js';
import { decodePacket, encodePacket, ipToUint32 } from '../../src/protocol/dhcp/packet.js';
import { clientPacket } from './packets.js';
import { DhcpSocket, type Peer } from '../../src/servers/dhcp/netif.js';

interface Opened {
  socket: DhcpSocket;
  got: Array<{ msg: string; from: Peer }>;
  errors: string[];
  refused: Array<[number, string, string]>;
  /** Resolves once `n` datagrams have arrived. */
  arrived(n: number): Promise<void>;
}

function open(t: Test, options: { address?: string; port?: number; receiveBuffer?: number } = {}): Opened {
  const got: Opened['got'] = [];
  const errors: string[] = [];
  const refused: Opened['refused'] = [];
  let wake = () => {};
  const socket = DhcpSocket.open({
    address: options.address ?? '127.0.0.1',
    port: options.port ?? 0,
    receiveBuffer: options.receiveBuffer ?? 0,
    onMessage: (msg, from) => {
      got.push({ msg: msg.toString('latin1'), from });
      wake();
    },
    onError: (code) => errors.push(code),
    onSendFailed: (failed, code, to) => refused.push([failed, code, to]),
  });
  t.teardown(() => socket.close());
  return {
    socket,
    got,
    errors,
    refused,
    arrived: (n) =>
      new Promise<void>((resolve) => {
        wake = () => got.length >= n && resolve();
        wake();
      }),
  };
}

async function plainSocket(t: Test): Promise<dgram.Socket> {
  const c = dgram.createSocket('udp4');
  t.teardown(() => c.close());
  await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
  return c;
}

t.test('the receive buffer grows to hold a burst', async (t) => {
  const plain = await plainSocket(t);
  const before = plain.getRecvBufferSize();
  const { socket } = open(t, { receiveBuffer: 4 * 1024 * 1024 });
  t.ok(socket.rcvbuf >= before, `never smaller than the default (${before} -> ${socket.rcvbuf})`);
  if (process.getuid?.() === 0) t.ok(socket.rcvbuf >= 4 * 1024 * 1024, `root: at least 4 MiB (${socket.rcvbuf})`);
});

t.test('a burst arrives whole, in order, each datagram with its sender', async (t) => {
  const s = open(t);
  t.ok(s.socket.port > 0, `bound to an ephemeral port (${s.socket.port})`);
  const a = await plainSocket(t);
  const b = await plainSocket(t);
  // More than one recvmmsg holds (32), of different lengths, from two senders.
  for (let i = 0; i < 100; i++) (i % 2 ? b : a).send(Buffer.from(`discover ${i} ${'x'.repeat(i * 7)}`), s.socket.port, '127.0.0.1');
  await s.arrived(100);
  t.same(
    s.got.map((g) => g.msg),
    Array.from({ length: 100 }, (_, i) => `discover ${i} ${'x'.repeat(i * 7)}`),
    'every datagram, byte for byte, in the order sent',
  );
  t.same(s.got.slice(0, 2).map((g) => g.from), [
    { address: '127.0.0.1', port: a.address().port },
    { address: '127.0.0.1', port: b.address().port },
  ], 'each with the address and port it came from');
  t.same(s.errors, [], 'no receive error');
});

t.test('replies leave together, each to its own destination; one refused does not stop the others', async (t) => {
  const s = open(t);
  const c = await plainSocket(t);
  const d = await plainSocket(t);
  const atC: string[] = [];
  const atD: string[] = [];
  c.on('message', (m) => atC.push(m.toString()));
  d.on('message', (m) => atD.push(m.toString()));
  for (let i = 0; i < 150; i++) s.socket.send(Buffer.from(`offer ${i}`), (i % 3 ? c : d).address().port, '127.0.0.1');
  // One the kernel refuses (port 0), between good ones: the rest still leave.
  s.socket.send(Buffer.from('nowhere'), 0, '127.0.0.1');
  s.socket.send(Buffer.from('offer last'), c.address().port, '127.0.0.1');
  for (let i = 0; i < 200 && atC.length + atD.length < 151; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(atC.length + atD.length, 151, 'all 151 good replies arrived (more than two sendmmsg batches of 64)');
  t.same(atD.slice(0, 3), ['offer 0', 'offer 3', 'offer 6'], 'to the destination each was sent to, in order');
  t.equal(atC.at(-1), 'offer last', 'the one after the refused datagram left too');
  t.same(s.refused, [[1, 'EINVAL', '127.0.0.1:0']], 'the refused one is reported, with its errno and destination');
  s.socket.send(Buffer.from('x'), 68, 'not-an-address');
  s.socket.flush();
  t.same(s.refused.at(-1), [1, 'EINVAL', 'not-an-address:68'], 'a destination that is not an IPv4 literal is refused and reported');
});

t.test('DHCP packets encoded straight into the send buffer arrive whole, among raw datagrams', async (t) => {
  const s = open(t);
  const c = await plainSocket(t);
  const got: Buffer[] = [];
  c.on('message', (m) => got.push(m));
  const reply = (i: number) => clientPacket({ mac: `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`, type: MessageType.OFFER, xid: i, serverId: '10.0.0.1' });
  for (let i = 0; i < 40; i++) {
    if (i % 4 === 0) s.socket.send(Buffer.from(`raw ${i}`), c.address().port, '127.0.0.1');
    else s.socket.sendPacket(reply(i), c.address().port, '127.0.0.1');
  }
  for (let i = 0; i < 200 && got.length < 40; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(got.length, 40, 'all 40 arrived (three flushes of 16)');
  t.same(got.map((m, i) => (i % 4 === 0 ? m.toString() : decodePacket(m).xid)), Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? `raw ${i}` : i)), 'in order, each packet whole');
  t.same(got[1], encodePacket(reply(1)), 'octet for octet what encodePacket makes');
  const huge = reply(99);
  huge.options.set(Opt.VENDOR_SPECIFIC, Buffer.alloc(300 * 1024));
  s.socket.sendPacket(huge, c.address().port, '127.0.0.1');
  t.same(s.refused.at(-1), [1, 'EMSGSIZE', `127.0.0.1:${c.address().port}`], 'one larger than the send buffer is refused and reported');
});

t.test('it may broadcast (SO_BROADCAST), and after close nothing more arrives', async (t) => {
  const s = open(t);
  s.socket.send(Buffer.from('offer'), 9, '255.255.255.255');
  s.socket.flush();
  t.notOk(s.refused.some(([, code]) => code === 'EACCES'), `sending to 255.255.255.255 is allowed (${JSON.stringify(s.refused)})`);
  const c = await plainSocket(t);
  s.socket.close();
  c.send(Buffer.from('late'), s.socket.port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 100));
  t.same(s.got, [], 'a closed socket delivers nothing');
  const again = open(t, { port: s.socket.port });
  c.send(Buffer.from('again'), again.socket.port, '127.0.0.1');
  await again.arrived(1);
  t.equal(again.got[0]?.msg, 'again', 'its port can be bound again at once');
});

t.test('an address in use and an unknown interface are clear errors', async (t) => {
  const taken = await plainSocket(t);
  t.throws(() => open(t, { port: taken.address().port }), { code: 'EADDRINUSE', syscall: 'bind' }, 'a port bound without SO_REUSEADDR');
  t.throws(() => DhcpSocket.open({ address: '127.0.0.1', port: 0, iface: 'pvd-nosuch0', onMessage() {}, onError() {}, onSendFailed() {} }), /dhcp interface pvd-nosuch0: no such network interface/);
});

t.test('IPv4 literals as numbers (the destinations send() takes)', async (t) => {
  t.equal(ipToUint32('255.255.255.255'), 0xffffffff);
  t.equal(ipToUint32('10.1.2.3'), 0x0a010203);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', 'a.b.c.d', '1.2.3.'] as const) t.throws(() => ipToUint32(bad), /not an IPv4 address/, `${JSON.stringify(bad)} is not one`);
});
