/**
 * Typed views of the options of a decoded packet (RFC 2132, RFC 4578 PXE options, RFC 3004 user
 * class) and the encoders the server uses to build replies. A malformed option reads as absent
 * (null) rather than failing the whole packet: a client with one odd option still boots.
 */
import { macFromBytes } from '../../util/mac.js';
import { HTYPE_INFINIBAND, Opt } from './constants.js';
import { ipToBuffer, ipToString, type DhcpPacket } from './packet.js';

export function getMessageType(p: DhcpPacket): number | null {
  const v = p.options.get(Opt.MESSAGE_TYPE);
  return v && v.length === 1 ? v[0]! : null;
}

export function getIpOption(p: DhcpPacket, code: number): string | null {
  const v = p.options.get(code);
  return v && v.length === 4 ? ipToString(v, 0) : null;
}

export function getStringOption(p: DhcpPacket, code: number): string | null {
  const v = p.options.get(code);
  if (!v || v.length === 0) return null;
  const end = v.indexOf(0);
  return v.subarray(0, end === -1 ? v.length : end).toString('latin1');
}

/** Option 93: the first architecture listed (clients send one), or null. */
export function getClientArch(p: DhcpPacket): number | null {
  const v = p.options.get(Opt.CLIENT_ARCH);
  return v && v.length >= 2 ? v.readUInt16BE(0) : null;
}

/**
 * Option 77. RFC 3004 encodes length-prefixed instances, but iPXE and most clients send one bare
 * string ("iPXE"); both readings are returned so `includes('iPXE')` works for either.
 */
export function getUserClasses(p: DhcpPacket): string[] {
  const v = p.options.get(Opt.USER_CLASS);
  if (!v || v.length === 0) return [];
  const out = [v.toString('latin1')];
  const parsed: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return out;
    parsed.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return [...out, ...parsed];
}

/** Option 97 as a UUID string (type octet 0 followed by 16 octets), or null. */
export function getClientUuid(p: DhcpPacket): string | null {
  const v = p.options.get(Opt.CLIENT_UUID);
  if (!v || v.length !== 17 || v[0] !== 0) return null;
  const h = v.subarray(1).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Option 55, deduplicated, in the client's order. */
export function getParameterList(p: DhcpPacket): number[] {
  const v = p.options.get(Opt.PARAMETER_LIST);
  return v ? [...new Set(v)] : [];
}

/**
 * The client's hardware address in canonical form. Ethernet: chaddr. IPoIB (htype 32, hlen 0,
 * RFC 4390): chaddr is empty, so the last 20 octets of the client identifier (61) stand for it.
 * Null when neither gives one.
 */
export function getHwaddr(p: DhcpPacket): string | null {
  if (p.htype === HTYPE_INFINIBAND) {
    const cid = p.options.get(Opt.CLIENT_ID);
    if (!cid || cid.length < 7) return null;
    return macFromBytes(cid.subarray(Math.max(1, cid.length - 20)));
  }
  if (p.hlen !== 6) return null;
  const c = p.chaddr;
  // By hand: this runs for every packet, and is the canonical form of util/mac.ts.
  return `${HEX[c[0]!]}:${HEX[c[1]!]}:${HEX[c[2]!]}:${HEX[c[3]!]}:${HEX[c[4]!]}:${HEX[c[5]!]}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, '0'));

// ---- encoders ----

export const u8 = (n: number): Buffer => Buffer.from([n]);
export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
export const ip = (addr: string): Buffer => ipToBuffer(addr);
export const ips = (addrs: readonly string[]): Buffer => Buffer.concat(addrs.map(ipToBuffer));
export const str = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Encapsulated sub-options (options 43 and 175): code, length, value ..., End. */
export function encapsulate(sub: Array<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of sub) parts.push(Buffer.from([code, value.length]), value);
  parts.push(Buffer.from([Opt.END]));
  return Buffer.concat(parts);
}

/** Reads encapsulated sub-options; stops quietly at malformed data. */
export function decapsulate(v: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < v.length) {
    const code = v[i]!;
    if (code === Opt.PAD) {
      i += 1;
      continue;
    }
    if (code === Opt.END || i + 1 >= v.length) break;
    const len = v[i + 1]!;
    if (i + 2 + len > v.length) break;
    out.set(code, v.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}
