/**
 * The BOOTP/DHCP packet (RFC 2131 section 2, RFC 2132 options): `decodePacket` turns octets into a
 * typed packet or throws a DhcpDecodeError naming what is wrong; `encodePacket` does the reverse.
 * Pure: no sockets, no policy. Options are kept raw (code -> octets); options.ts reads them.
 */
import { HEADER_LENGTH, HTYPE_ETHERNET, HTYPE_IEEE802, HTYPE_INFINIBAND, MAGIC_COOKIE, MIN_REPLY_LENGTH, Opt } from './constants.js';

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  /** Bit 15 is the broadcast flag. */
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The 16-octet client hardware address field; the address is its first `hlen` octets. */
  chaddr: Buffer;
  sname: string;
  file: string;
  /** Options by code; a code that appears several times is concatenated (RFC 3396). */
  options: Map<number, Buffer>;
}

/** What is wrong with a packet, in a few words that do not vary with its content (a metric label). */
export type DhcpDecodeFailure = 'truncated' | 'bad-cookie' | 'bad-op' | 'bad-hardware-address' | 'bad-option';

export class DhcpDecodeError extends Error {
  constructor(
    readonly reason: string,
    readonly failure: DhcpDecodeFailure,
  ) {
    // No stack trace: a flood of junk must cost the server little, and the reason says it all.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`malformed dhcp packet: ${reason}`);
    Error.stackTraceLimit = limit;
    this.name = 'DhcpDecodeError';
  }
}

export const BROADCAST_FLAG = 0x8000;
const ZERO = '0.0.0.0';
/** Octets of options one packet may carry (after concatenation), far above anything real. */
const MAX_OPTION_OCTETS = 4096;

export function ipToString(buf: Buffer, offset: number): string {
  const a = buf[offset]!;
  const b = buf[offset + 1]!;
  const c = buf[offset + 2]!;
  const d = buf[offset + 3]!;
  // Most address fields of a request are empty: no new string for those.
  if ((a | b | c | d) === 0) return ZERO;
  return `${a}.${b}.${c}.${d}`;
}

/** Dotted quad to a 32-bit unsigned integer; a hand-written parser, as it runs several times per packet. */
export function ipToUint32(ip: string): number {
  if (ip === ZERO) return 0;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || octet > 255) break;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
    } else {
      dots = -1;
      break;
    }
  }
  if (dots !== 3 || digits === 0 || octet > 255) throw new TypeError(`not an IPv4 address: ${ip}`);
  return value * 256 + octet;
}

export function ipToBuffer(ip: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(ipToUint32(ip));
  return b;
}

/** The NUL-terminated latin1 string of field `buf[start, end)`. */
function cString(buf: Buffer, start: number, end: number): string {
  const nul = buf.indexOf(0, start);
  return buf.toString('latin1', start, nul === -1 || nul > end ? end : nul);
}

/** Reads options from `buf[start, end)` into `into`; returns true when an End option was met. */
function readOptions(buf: Buffer, start: number, end: number, into: Map<number, Buffer>, where: string): boolean {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i += 1;
      continue;
    }
    if (code === Opt.END) return true;
    if (i + 1 >= end) throw new DhcpDecodeError(`option ${code} in ${where} has no length`, 'bad-option');
    const len = buf[i + 1]!;
    if (i + 2 + len > end) throw new DhcpDecodeError(`option ${code} in ${where} runs past the end`, 'bad-option');
    const value = buf.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    if (prev && prev.length + len > MAX_OPTION_OCTETS) throw new DhcpDecodeError(`option ${code} is too long`, 'bad-option');
    // A view, not a copy: the packet owns `buf` (see decodePacket).
    into.set(code, prev ? Buffer.concat([prev, value]) : value);
    i += 2 + len;
  }
  return false;
}

/**
 * Decodes one UDP payload. Throws DhcpDecodeError on anything malformed. The packet's `chaddr` and
 * option values are views into `buf` (no copies per packet): the caller must not reuse `buf` while
 * the packet is in use (node's dgram gives every datagram a buffer of its own).
 */
export function decodePacket(buf: Buffer): DhcpPacket {
  if (buf.length < HEADER_LENGTH + 4) throw new DhcpDecodeError(`truncated (${buf.length} octets)`, 'truncated');
  if (buf.readUInt32BE(HEADER_LENGTH) !== MAGIC_COOKIE) throw new DhcpDecodeError('bad magic cookie', 'bad-cookie');
  const op = buf[0]!;
  if (op !== 1 && op !== 2) throw new DhcpDecodeError(`bad op ${op}`, 'bad-op');
  const htype = buf[1]!;
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError(`hlen ${hlen} > 16`, 'bad-hardware-address');
  if (htype !== HTYPE_ETHERNET && htype !== HTYPE_IEEE802 && htype !== HTYPE_INFINIBAND) throw new DhcpDecodeError(`unknown htype ${htype}`, 'bad-hardware-address');
  if ((htype === HTYPE_ETHERNET || htype === HTYPE_IEEE802) && hlen !== 6) throw new DhcpDecodeError(`hlen ${hlen} for ethernet`, 'bad-hardware-address');
  const options = new Map<number, Buffer>();
  readOptions(buf, HEADER_LENGTH + 4, buf.length, options, 'options');
  const packet: DhcpPacket = {
    op,
    htype,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipToString(buf, 12),
    yiaddr: ipToString(buf, 16),
    siaddr: ipToString(buf, 20),
    giaddr: ipToString(buf, 24),
    chaddr: buf.subarray(28, 44),
    sname: '',
    file: '',
    options,
  };
  // Option overload (52): 1 = file holds options, 2 = sname does, 3 = both.
  const overload = options.get(Opt.OVERLOAD)?.[0] ?? 0;
  if (overload & 1) readOptions(buf, 108, 236, options, 'file');
  else packet.file = cString(buf, 108, 236);
  if (overload & 2) readOptions(buf, 44, 108, options, 'sname');
  else packet.sname = cString(buf, 44, 108);
  return packet;
}

/** A packet with every field zero, to fill in. */
export function emptyPacket(): DhcpPacket {
  return {
    op: 2,
    htype: HTYPE_ETHERNET,
    hlen: 6,
    hops: 0,
    xid: 0,
    secs: 0,
    flags: 0,
    ciaddr: ZERO,
    yiaddr: ZERO,
    siaddr: ZERO,
    giaddr: ZERO,
    chaddr: Buffer.alloc(16),
    sname: '',
    file: '',
    options: new Map(),
  };
}

/** The octets `encodePacket` makes of `p` (at least the 300 of BOOTP). */
export function encodedSize(p: DhcpPacket): number {
  let size = HEADER_LENGTH + 4 + 1;
  for (const [code, value] of p.options) {
    if (code === Opt.PAD || code === Opt.END) continue;
    // Values over 255 octets are split into several instances of the option (RFC 3396).
    size += value.length + 2 * Math.max(1, Math.ceil(value.length / 255));
  }
  return Math.max(size, MIN_REPLY_LENGTH);
}

/**
 * Encodes a packet. Option 53 goes first and 54 second (some PXE ROMs expect it), then the rest in
 * ascending order, then End; the result is padded to the 300-octet BOOTP minimum.
 */
export function encodePacket(p: DhcpPacket): Buffer {
  const size = encodedSize(p);
  const buf = Buffer.allocUnsafe(size);
  encodePacketInto(p, buf, 0, size);
  return buf;
}

/**
 * Encodes `p` as `encodePacket` does into `buf` at `offset` (the DHCP socket's send buffer: no
 * buffer of its own per reply); returns the octets written, `size` (`encodedSize(p)`, passed by a
 * caller that has it already). Throws a RangeError, with nothing written, when they do not fit.
 */
export function encodePacketInto(p: DhcpPacket, buf: Buffer, offset: number, size = encodedSize(p)): number {
  if (offset + size > buf.length) throw new RangeError(`dhcp packet of ${size} octets does not fit in ${buf.length - offset}`);
  if (p.sname.length > 63) throw new TypeError(`sname longer than 63 octets: ${p.sname}`);
  if (p.file.length > 127) throw new TypeError(`boot file name longer than 127 octets: ${p.file}`);
  const codes: number[] = [];
  if (p.options.has(Opt.MESSAGE_TYPE)) codes.push(Opt.MESSAGE_TYPE);
  if (p.options.has(Opt.SERVER_ID)) codes.push(Opt.SERVER_ID);
  const head = codes.length;
  for (const code of p.options.keys()) {
    if (code === Opt.PAD || code === Opt.END || code === Opt.MESSAGE_TYPE || code === Opt.SERVER_ID) continue;
    // Insertion sort: a reply has a dozen options, mostly in order already.
    let i = codes.length;
    codes.push(code);
    while (i > head && codes[i - 1]! > code) {
      codes[i] = codes[i - 1]!;
      i--;
    }
    codes[i] = code;
  }
  // Zeros first: padding and empty fields.
  buf.fill(0, offset, offset + size);
  const o = offset;
  buf[o] = p.op;
  buf[o + 1] = p.htype;
  buf[o + 2] = p.hlen;
  buf[o + 3] = p.hops;
  buf.writeUInt32BE(p.xid >>> 0, o + 4);
  buf.writeUInt16BE(p.secs & 0xffff, o + 8);
  buf.writeUInt16BE(p.flags & 0xffff, o + 10);
  buf.writeUInt32BE(ipToUint32(p.ciaddr), o + 12);
  buf.writeUInt32BE(ipToUint32(p.yiaddr), o + 16);
  buf.writeUInt32BE(ipToUint32(p.siaddr), o + 20);
  buf.writeUInt32BE(ipToUint32(p.giaddr), o + 24);
  p.chaddr.copy(buf, o + 28, 0, Math.min(16, p.chaddr.length));
  // latin1: one octet per character, so the string length is the octet count.
  if (p.sname) buf.write(p.sname, o + 44, 'latin1');
  if (p.file) buf.write(p.file, o + 108, 'latin1');
  buf.writeUInt32BE(MAGIC_COOKIE, o + HEADER_LENGTH);
  let at = o + HEADER_LENGTH + 4;
  for (const code of codes) {
    const value = p.options.get(code)!;
    let off = 0;
    do {
      const n = Math.min(255, value.length - off);
      buf[at] = code;
      buf[at + 1] = n;
      value.copy(buf, at + 2, off, off + n);
      at += 2 + n;
      off += n;
    } while (off < value.length);
  }
  buf[at] = Opt.END;
  return size;
}
