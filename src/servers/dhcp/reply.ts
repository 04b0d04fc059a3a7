/**
 * Building replies (RFC 2131 table 3) and choosing where they go (RFC 2131 section 4.1).
 */
import { BOOTREPLY, CLIENT_PORT, IpxeOpt, MessageType, Opt, PxeOpt, SERVER_PORT } from '../../protocol/dhcp/constants.js';
import { BROADCAST_FLAG, emptyPacket, type DhcpPacket } from '../../protocol/dhcp/packet.js';
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

/** A reply to `req` with the header fields copied as RFC 2131 asks. */
export function buildReply(req: DhcpPacket, spec: ReplySpec): DhcpPacket {
  const p = emptyPacket();
  p.op = BOOTREPLY;
  p.htype = req.htype;
  p.hlen = req.hlen;
  p.xid = req.xid;
  p.flags = req.flags;
  p.giaddr = req.giaddr;
  p.chaddr = Buffer.from(req.chaddr);
  if (spec.type === MessageType.ACK || spec.type === MessageType.OFFER) p.ciaddr = spec.type === MessageType.ACK ? req.ciaddr : '0.0.0.0';
  if (spec.yiaddr) p.yiaddr = spec.yiaddr;
  const o = p.options;
  o.set(Opt.MESSAGE_TYPE, u8(spec.type));
  o.set(Opt.SERVER_ID, ip(spec.serverId));
  if (spec.message) o.set(Opt.MESSAGE, str(spec.message));
  if (spec.type === MessageType.NAK) {
    // A NAK carries nothing else (RFC 2131 table 3) and is broadcast when not relayed.
    p.ciaddr = '0.0.0.0';
    if (req.giaddr !== '0.0.0.0') p.flags |= BROADCAST_FLAG;
    return p;
  }
  const pool = spec.pool;
  if (pool) {
    o.set(Opt.SUBNET_MASK, ip(pool.netmask));
    o.set(Opt.BROADCAST, ip(pool.broadcast));
    if (pool.options.router) o.set(Opt.ROUTER, ip(pool.options.router));
    if (pool.options.dns.length) o.set(Opt.DNS, ips(pool.options.dns));
    if (pool.options.domain) o.set(Opt.DOMAIN, str(pool.options.domain));
  }
  if (spec.leaseTime) {
    o.set(Opt.LEASE_TIME, u32(spec.leaseTime));
    o.set(Opt.RENEWAL_TIME, u32(Math.floor(spec.leaseTime / 2)));
    o.set(Opt.REBINDING_TIME, u32(Math.floor((spec.leaseTime * 7) / 8)));
  }
  if (spec.hostname) o.set(Opt.HOSTNAME, str(spec.hostname));
  const boot = spec.boot;
  if (boot) {
    p.siaddr = boot.nextServer;
    p.sname = boot.sname ?? boot.nextServer;
    if (Buffer.byteLength(boot.file, 'latin1') <= 127) p.file = boot.file;
    o.set(Opt.TFTP_SERVER, str(p.sname));
    o.set(Opt.BOOTFILE, str(boot.file));
    if (boot.vendorClass) o.set(Opt.VENDOR_CLASS, str(boot.vendorClass));
    if (boot.ipxeNoProxyWait) o.set(Opt.IPXE_ENCAP, encapsulate([[IpxeOpt.NO_PXEDHCP, u8(1)]]));
  }
  if (spec.proxy) {
    o.set(Opt.VENDOR_CLASS, str('PXEClient'));
    // Discovery control 8: no boot server discovery, download the boot file named here.
    o.set(Opt.VENDOR_SPECIFIC, encapsulate([[PxeOpt.DISCOVERY_CONTROL, u8(8)]]));
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
