/** Client-side packets for the tests: what a PXE ROM, iPXE or a relay would send. */
import { BOOTREQUEST, MessageType, Opt } from '../../src/protocol/dhcp/constants.js';
import { BROADCAST_FLAG, emptyPacket, type DhcpPacket } from '../../src/protocol/dhcp/packet.js';
import { ip, str, u16, u8 } from '../../src/protocol/dhcp/options.js';
import { macToBytes } from '../../src/util/mac.js';

export interface ClientSpec {
  mac: string;
  type: MessageType;
  xid?: number;
  arch?: number;
  userClass?: string;
  vendorClass?: string;
  requested?: string;
  serverId?: string;
  ciaddr?: string;
  giaddr?: string;
  uuid?: string;
  broadcast?: boolean;
}

export function clientPacket(s: ClientSpec): DhcpPacket {
  const p = emptyPacket();
  p.op = BOOTREQUEST;
  p.xid = s.xid ?? Math.floor(Math.random() * 0xffffffff);
  p.flags = s.broadcast === false ? 0 : BROADCAST_FLAG;
  const mac = macToBytes(s.mac);
  mac.copy(p.chaddr);
  if (s.ciaddr) p.ciaddr = s.ciaddr;
  if (s.giaddr) {
    p.giaddr = s.giaddr;
    p.hops = 1;
  }
  p.options.set(Opt.MESSAGE_TYPE, u8(s.type));
  p.options.set(Opt.PARAMETER_LIST, Buffer.from([1, 3, 6, 12, 15, 28, 43, 60, 66, 67, 175]));
  if (s.arch !== undefined) p.options.set(Opt.CLIENT_ARCH, u16(s.arch));
  if (s.userClass) p.options.set(Opt.USER_CLASS, str(s.userClass));
  if (s.vendorClass) p.options.set(Opt.VENDOR_CLASS, str(s.vendorClass));
  if (s.requested) p.options.set(Opt.REQUESTED_ADDRESS, ip(s.requested));
  if (s.serverId) p.options.set(Opt.SERVER_ID, ip(s.serverId));
  if (s.uuid) p.options.set(Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), Buffer.from(s.uuid.replaceAll('-', ''), 'hex')]));
  return p;
}
