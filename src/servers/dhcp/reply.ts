/**
 * Building replies (RFC 2131 table 3) and choosing where they go (RFC 2131 section 4.1).
 */
import { BOOTREPLY, CLIENT_PORT, IpxeOpt, MessageType, Opt, PxeOpt, SERVER_PORT } from '../../protocol/dhcp/constants.js';
import { BROADCAST_FLAG, type DhcpPacket } from '../../protocol/dhcp/packet.js';
import { encapsulate, ip, ips, str, u32, u8 } from '../../protocol/dhcp/options.js';
import type { Pool } from './pool.js';
import type { DhcpBoot } from './types.js';

export interface ReplySpec {
  type: MessageType;
  serverId: string;
  yiaddr?: string;
  pool?: Pool | null;
  leaseTime?: number | null;
  hostname?: string | null;
  boot?: DhcpBoot | null;
  /** proxyDHCP: option 60 PXEClient and option 43 discovery control. */
  proxy?: boolean;
  message?: string;
}

/**
 * Option values that are the same for every reply of a pool, server address or lease time, encoded
 * once: a boot storm builds thousands of replies a second from the same dozen values. Shared, so
 * never modified (encodePacket only copies from them).
 */
const poolOptions = new WeakMap<Pool, Array<[number, Buffer]>>();
const MAX_CACHED = 256;

/** `make(key)` once per key; bounded (a config with many boot files or servers), starting over when full. */
function memo<K>(cache: Map<K, Buffer>, make: (key: K) => Buffer): (key: K) => Buffer {
  return (key) => {
    let b = cache.get(key);
    if (!b) {
      if (cache.size >= MAX_CACHED) cache.clear();
      b = make(key);
      cache.set(key, b);
    }
    return b;
  };
}

function optionsOf(pool: Pool): Array<[number, Buffer]> {
  let list = poolOptions.get(pool);
  if (!list) {
    list = [
      [Opt.SUBNET_MASK, ip(pool.netmask)],
      [Opt.BROADCAST, ip(pool.broadcast)],
    ];
    if (pool.options.router) list.push([Opt.ROUTER, ip(pool.options.router)]);
    if (pool.options.dns.length) list.push([Opt.DNS, ips(pool.options.dns)]);
    if (pool.options.domain) list.push([Opt.DOMAIN, str(pool.options.domain)]);
    poolOptions.set(pool, list);
  }
  return list;
}

const TYPE = Array.from({ length: 9 }, (_, i) => u8(i));
const memoIp = memo(new Map<string, Buffer>(), ip);
const memoStr = memo(new Map<string, Buffer>(), str);
const memoU32 = memo(new Map<number, Buffer>(), u32);
const IPXE_NO_PROXY_WAIT = encapsulate([[IpxeOpt.NO_PXEDHCP, u8(1)]]);
// Discovery control 8: no boot server discovery, download the boot file named here.
const PXE_DISCOVERY_CONTROL = encapsulate([[PxeOpt.DISCOVERY_CONTROL, u8(8)]]);
const PXECLIENT = str('PXEClient');

/** A reply to `req` with the header fields copied as RFC 2131 asks. */
export function buildReply(req: DhcpPacket, spec: ReplySpec): DhcpPacket {
  const o = new Map<number, Buffer>();
  const p: DhcpPacket = {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: spec.type === MessageType.ACK ? req.ciaddr : '0.0.0.0',
    yiaddr: spec.yiaddr || '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: req.giaddr,
    // encodePacket copies it: the request's octets can be shared.
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options: o,
  };
  o.set(Opt.MESSAGE_TYPE, TYPE[spec.type] ?? u8(spec.type));
  o.set(Opt.SERVER_ID, memoIp(spec.serverId));
  if (spec.message) o.set(Opt.MESSAGE, str(spec.message));
  if (spec.type === MessageType.NAK) {
    // A NAK carries nothing else (RFC 2131 table 3) and is broadcast when not relayed.
    p.ciaddr = '0.0.0.0';
    if (req.giaddr !== '0.0.0.0') p.flags |= BROADCAST_FLAG;
    return p;
  }
  const pool = spec.pool;
  if (pool) for (const [code, value] of optionsOf(pool)) o.set(code, value);
  if (spec.leaseTime) {
    o.set(Opt.LEASE_TIME, memoU32(spec.leaseTime));
    o.set(Opt.RENEWAL_TIME, memoU32(Math.floor(spec.leaseTime / 2)));
    o.set(Opt.REBINDING_TIME, memoU32(Math.floor((spec.leaseTime * 7) / 8)));
  }
  if (spec.hostname) o.set(Opt.HOSTNAME, str(spec.hostname));
  const boot = spec.boot;
  if (boot) {
    p.siaddr = boot.nextServer;
    p.sname = boot.sname ?? boot.nextServer;
    if (boot.file.length <= 127) p.file = boot.file;
    o.set(Opt.TFTP_SERVER, memoStr(p.sname));
    o.set(Opt.BOOTFILE, memoStr(boot.file));
    if (boot.vendorClass) o.set(Opt.VENDOR_CLASS, memoStr(boot.vendorClass));
    if (boot.ipxeNoProxyWait) o.set(Opt.IPXE_ENCAP, IPXE_NO_PROXY_WAIT);
  }
  if (spec.proxy) {
    o.set(Opt.VENDOR_CLASS, PXECLIENT);
    o.set(Opt.VENDOR_SPECIFIC, PXE_DISCOVERY_CONTROL);
  }
  // PXE ROMs want their UUID echoed.
  const uuid = req.options.get(Opt.CLIENT_UUID);
  if (uuid && req.options.get(Opt.VENDOR_CLASS)?.toString('latin1').startsWith('PXEClient')) o.set(Opt.CLIENT_UUID, uuid);
  return p;
}

/** Where a reply to `req` goes (RFC 2131 4.1); `srcPort` is where the request came from. */
export function replyDestination(req: DhcpPacket, reply: DhcpPacket, clientPort = CLIENT_PORT, serverPort = SERVER_PORT): { address: string; port: number } {
  if (req.giaddr !== '0.0.0.0') return { address: req.giaddr, port: serverPort };
  const type = reply.options.get(Opt.MESSAGE_TYPE)?.[0];
  if (type !== MessageType.NAK && req.ciaddr !== '0.0.0.0') return { address: req.ciaddr, port: clientPort };
  // Without a raw socket the kernel cannot deliver to an address the client does not hold yet, so
  // a client without one is answered by broadcast on the (device-bound) interface.
  return { address: '255.255.255.255', port: clientPort };
}
