import t from 'tap';
import { decodePacket, encodePacket, TftpDecodeError, type TftpPacket } from '../../src/protocol/tftp/packet.js';
import { negotiateOptions } from '../../src/protocol/tftp/options.js';
import { normalizeRequestPath } from '../../src/protocol/tftp/path.js';
import { fromNetascii, toNetascii } from '../../src/protocol/tftp/netascii.js';

t.test('decode(encode(x)) == x for every packet type', async (t) => {
  const packets: TftpPacket[] = [
    { op: 'rrq', filename: 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', mode: 'octet', options: { blksize: '1468', tsize: '0', windowsize: '16' } },
    { op: 'wrq', filename: 'x', mode: 'netascii', options: {} },
    { op: 'data', block: 65535, data: Buffer.from('abc') },
    { op: 'ack', block: 0 },
    { op: 'error', code: 8, message: 'option refused' },
    { op: 'oack', options: { tsize: '1234' } },
  ];
  for (const p of packets) t.same(decodePacket(encodePacket(p)), p, p.op);
});

t.test('a golden RRQ as EDK2 sends it (option names in any case, mode in capitals)', async (t) => {
  const wire = Buffer.from('\x00\x01undionly.kpxe\x00OCTET\x00TSIZE\x000\x00blksize\x001468\x00', 'latin1');
  t.same(decodePacket(wire), { op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: { tsize: '0', blksize: '1468' } });
  // trailing padding after the options is tolerated
  t.equal((decodePacket(Buffer.concat([wire, Buffer.from([0])])) as { filename: string }).filename, 'undionly.kpxe');
});

t.test('malformed packets are typed errors', async (t) => {
  for (const bad of ['\x00', '\x00\x01file', '\x00\x01file\x00', '\x00\x01f\x00bogus\x00', '\x00\x09\x00\x00']) {
    t.throws(() => decodePacket(Buffer.from(bad, 'latin1')), { name: 'TftpDecodeError' }, JSON.stringify(bad));
    t.ok((() => { try { decodePacket(Buffer.from(bad, 'latin1')); } catch (e) { return e instanceof TftpDecodeError; } })());
  }
});

t.test('block numbers are encoded modulo 65536', async (t) => {
  t.equal(encodePacket({ op: 'ack', block: 65536 }).readUInt16BE(2), 0);
  t.equal(encodePacket({ op: 'data', block: 65537, data: Buffer.alloc(0) }).readUInt16BE(2), 1);
});

t.test('option negotiation', async (t) => {
  const limits = { maxBlksize: 65464, maxWindowsize: 64, maxWindowBytes: 96 * 1024 };
  t.same(negotiateOptions({}, 10, limits), { blksize: 512, windowsize: 1, timeout: null, oack: null }, 'no options: plain RFC 1350');
  const n = negotiateOptions({ blksize: '1468', tsize: '0', timeout: '3', windowsize: '64', multicast: '' }, 999, limits);
  t.same(n.oack, { blksize: '1468', timeout: '3', tsize: '999', windowsize: '64' }, 'unknown options ignored');
  t.equal(negotiateOptions({ blksize: '100000' }, 1, limits).blksize, 65464, 'blksize capped at the RFC maximum');
  t.equal(negotiateOptions({ blksize: '9000' }, 1, { ...limits, maxBlksize: 1468 }).blksize, 1468, 'capped at the configured maximum');
  t.equal(negotiateOptions({ blksize: '4' }, 1, limits).oack, null, 'blksize below 8 ignored');
  t.equal(negotiateOptions({ timeout: '0' }, 1, limits).oack, null, 'timeout 0 ignored');
  t.equal(negotiateOptions({ tsize: '0' }, null, limits).oack, null, 'tsize not acknowledged when the size is unknown');
  t.equal(negotiateOptions({ blksize: '65464', windowsize: '64' }, 1, limits).windowsize, 1, 'window capped so the burst fits a receive buffer');
  t.equal(negotiateOptions({ blksize: '8192', windowsize: '64' }, 1, limits).windowsize, 12);
});

t.test('request paths', async (t) => {
  t.same(normalizeRequestPath('pxelinux.cfg//./default'), { ok: true, path: 'pxelinux.cfg/default', segments: ['pxelinux.cfg', 'default'] });
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a\\b', '..\\x', 'a\0b', '', '.', 'x'.repeat(2000)]) {
    t.equal(normalizeRequestPath(bad).ok, false, JSON.stringify(bad.slice(0, 20)));
  }
});

t.test('netascii', async (t) => {
  const text = Buffer.from('line1\nline2\rx\n');
  const na = toNetascii(text);
  t.equal(na.toString('latin1'), 'line1\r\nline2\r\0x\r\n');
  t.same(fromNetascii(na), text);
});
