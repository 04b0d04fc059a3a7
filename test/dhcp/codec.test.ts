import t from 'tap';
import { Arch, MessageType, Opt } from '../../src/protocol/dhcp/constants.js';
import { decapsulate, getClientArch, getClientUuid, getHwaddr, getMessageType, getParameterList, getUserClasses } from '../../src/protocol/dhcp/options.js';
import { decodePacket, DhcpDecodeError, encodedSize, encodePacket, encodePacketInto } from '../../src/protocol/dhcp/packet.js';
import { fuzzPackets } from './fuzz.js';
import { clientPacket } from './packets.js';

t.test('a PXE ROM discover decodes to what the ROM sent', async (t) => {
  const sent = clientPacket({ mac: '52:54:00:12:34:56', type: MessageType.DISCOVER, arch: Arch.EFI_X64, vendorClass: 'PXEClient:Arch:00007:UNDI:003016', uuid: '8c7d6a12-0b1e-4c3f-9a2b-1c2d3e4f5a6b', xid: 0xdeadbeef });
  const p = decodePacket(encodePacket(sent));
  t.equal(p.xid, 0xdeadbeef);
  t.equal(getMessageType(p), MessageType.DISCOVER);
  t.equal(getHwaddr(p), '52:54:00:12:34:56');
  t.equal(getClientArch(p), 9);
  t.equal(getClientUuid(p), '8c7d6a12-0b1e-4c3f-9a2b-1c2d3e4f5a6b');
  t.same(getParameterList(p), [1, 3, 6, 12, 15, 28, 43, 60, 66, 67, 175]);
  t.ok(encodePacket(sent).length >= 300, 'padded to the BOOTP minimum');
});

t.test('decode(encode(x)) keeps header, file, sname and options', async (t) => {
  const x = clientPacket({ mac: 'aa:bb:cc:dd:ee:ff', type: MessageType.REQUEST, requested: '10.0.0.5', serverId: '10.0.0.1', ciaddr: '10.0.0.5', giaddr: '10.1.0.1' });
  x.file = 'undionly.kpxe';
  x.sname = 'master';
  x.options.set(Opt.HOSTNAME, Buffer.alloc(300, 0x61)); // longer than 255: split and concatenated again
  const y = decodePacket(encodePacket(x));
  t.same({ ...y, options: [...y.options] }, { ...x, options: [...x.options].sort(([a], [b]) => (a === 53 ? -1 : b === 53 ? 1 : a === 54 ? -1 : b === 54 ? 1 : a - b)) });
});

t.test('encoded into a send buffer in use: the same octets as on their own, zeros where the packet has none', async (t) => {
  const x = clientPacket({ mac: 'aa:bb:cc:dd:ee:ff', type: MessageType.OFFER, requested: '10.0.0.5', serverId: '10.0.0.1' });
  x.file = 'ipxe.efi';
  const alone = encodePacket(x);
  t.equal(encodedSize(x), alone.length, 'the size said beforehand is the size made');
  // A buffer full of an earlier reply's octets: nothing of them may show through.
  const slab = Buffer.alloc(2048, 0xa5);
  t.equal(encodePacketInto(x, slab, 700), alone.length);
  t.same(slab.subarray(700, 700 + alone.length), alone, 'the same octets, padding and empty fields zero');
  t.equal(slab[699], 0xa5, 'nothing written before it');
  t.equal(slab[700 + alone.length], 0xa5, 'nor after it');
  const small = Buffer.alloc(alone.length + 10, 0xa5);
  t.throws(() => encodePacketInto(x, small, 11), RangeError, 'a packet that does not fit is refused');
  t.ok(small.every((b) => b === 0xa5), 'with nothing written');
});

t.test('iPXE user class is recognised in bare and RFC 3004 form', async (t) => {
  t.ok(getUserClasses(decodePacket(encodePacket(clientPacket({ mac: '00:11:22:33:44:55', type: 1, userClass: 'iPXE' })))).includes('iPXE'));
  const p = clientPacket({ mac: '00:11:22:33:44:55', type: 1 });
  p.options.set(Opt.USER_CLASS, Buffer.from('\x04iPXE\x03foo', 'latin1'));
  t.ok(getUserClasses(decodePacket(encodePacket(p))).includes('iPXE'));
});

t.test('option overload: options carried in the file and sname fields are read', async (t) => {
  const buf = encodePacket(clientPacket({ mac: '00:11:22:33:44:55', type: 1 }));
  const b = Buffer.from(buf);
  b.fill(0, 44, 236);
  Buffer.from([Opt.CLIENT_ARCH, 2, 0, 7, 255]).copy(b, 108); // file field
  Buffer.from([Opt.HOSTNAME, 3, 0x6e, 0x30, 0x31, 255]).copy(b, 44); // sname field
  const end = b.indexOf(255, 240);
  const withOverload = Buffer.concat([b.subarray(0, end), Buffer.from([Opt.OVERLOAD, 1, 3, 255])]);
  const p = decodePacket(withOverload);
  t.equal(getClientArch(p), 7);
  t.equal(p.options.get(Opt.HOSTNAME)?.toString(), 'n01');
  t.equal(p.file, '');
});

t.test('IPoIB: the hardware address comes from the client identifier', async (t) => {
  const p = decodePacket(encodePacket(clientPacket({ mac: '00:11:22:33:44:55', type: 1 })));
  p.htype = 32;
  p.hlen = 0;
  p.chaddr.fill(0);
  p.options.set(Opt.CLIENT_ID, Buffer.from('ff00000001000100010203040506070809101112131415161718', 'hex').subarray(0, 25));
  const q = decodePacket(encodePacket(p));
  t.equal(getHwaddr(q)?.split(':').length, 20, 'a 20-octet IPoIB identifier');
});

t.test('malformed packets are refused with a reason', async (t) => {
  const good = encodePacket(clientPacket({ mac: '00:11:22:33:44:55', type: 1 }));
  const cases: Array<[string, Buffer, RegExp]> = [
    ['truncated', good.subarray(0, 200), /truncated/],
    ['wrong magic cookie', Buffer.concat([good.subarray(0, 236), Buffer.from([1, 2, 3, 4]), good.subarray(240)]), /magic cookie/],
    ['option past the end', Buffer.concat([good.subarray(0, 240), Buffer.from([12, 50, 65])]), /past the end/],
    ['option without length', Buffer.concat([good.subarray(0, 240), Buffer.from([53, 1, 1, 12])]), /no length/],
    ['hlen > 16', Buffer.concat([good.subarray(0, 2), Buffer.from([17]), good.subarray(3)]), /hlen 17/],
    ['unknown htype', Buffer.concat([good.subarray(0, 1), Buffer.from([99]), good.subarray(2)]), /htype 99/],
  ];
  for (const [name, buf, re] of cases) t.throws(() => decodePacket(buf), { name: 'DhcpDecodeError', message: re }, name);
  const huge = [good.subarray(0, 240)];
  for (let i = 0; i < 20; i++) huge.push(Buffer.from([55, 255]), Buffer.alloc(255, 1));
  t.throws(() => decodePacket(Buffer.concat(huge)), { name: 'DhcpDecodeError', message: /option 55 is too long/ }, 'an option 55 of 5 KiB is refused');
  t.doesNotThrow(() => decodePacket(Buffer.concat([good.subarray(0, 240), Buffer.from([53, 1, 1, 255, 12, 99])])), 'bytes after End are ignored');
});

t.test('encapsulated sub-options (43, 175) read back', async (t) => {
  t.same([...decapsulate(Buffer.from([6, 1, 8, 255]))], [[6, Buffer.from([8])]]);
  t.same([...decapsulate(Buffer.from([176, 1, 1, 177, 9]))], [[176, Buffer.from([1])]], 'stops at a truncated sub-option');
});

t.test('fuzz: 100,000 random and mutated packets never crash the codec', async (t) => {
  let refused = 0;
  let decoded = 0;
  for (const buf of fuzzPackets(100_000, 42)) {
    try {
      const p = decodePacket(buf);
      decoded++;
      // What decodes must also read safely and re-encode.
      getHwaddr(p);
      getClientArch(p);
      getUserClasses(p);
      getClientUuid(p);
      encodePacket(p);
    } catch (err) {
      if (!(err instanceof DhcpDecodeError)) throw err;
      refused++;
    }
  }
  t.equal(refused + decoded, 100_000);
  t.ok(refused > 30_000, `malformed ones refused (${refused})`);
  t.ok(decoded > 10_000, `mutations that stay valid decode (${decoded})`);
});
