// Listens on UDP 67 inside the test namespace and prints one JSON line per DHCP packet: the
// firmware-level check that a VM reached the network, independent of provisiond's own server.
import dgram from 'node:dgram';

const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
sock.on('message', (m) => {
  if (m.length < 240 || m.readUInt32BE(236) !== 0x63825363) return;
  const opts = {};
  for (let i = 240; i < m.length; ) {
    const code = m[i];
    if (code === 255) break;
    if (code === 0) { i++; continue; }
    const len = m[i + 1];
    opts[code] = m.subarray(i + 2, i + 2 + len);
    i += 2 + len;
  }
  const mac = [...m.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  process.stdout.write(JSON.stringify({
    time: Date.now(), mac, type: opts[53]?.[0] ?? null,
    arch: opts[93]?.length >= 2 ? opts[93].readUInt16BE(0) : null,
    vendorClass: opts[60]?.toString('latin1') ?? null, userClass: opts[77]?.toString('latin1') ?? null,
  }) + '\n');
});
sock.bind(67, '0.0.0.0', () => process.stdout.write('{"listening":true}\n'));
