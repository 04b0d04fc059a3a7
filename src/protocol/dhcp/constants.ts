/**
 * DHCP numbers (RFC 2131, RFC 2132, RFC 4578, iPXE's encapsulated option 175), named in the field's
 * own words so that the server and the boot policy read like the RFCs.
 */

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

/** The four octets that start the options area (99.130.83.99). */
export const MAGIC_COOKIE = 0x63825363;

/** Fixed BOOTP header length, before the magic cookie. */
export const HEADER_LENGTH = 236;

/** Smallest reply clients must accept (RFC 2131: 576-octet IP datagrams, minus IP and UDP headers). */
export const MIN_REPLY_LENGTH = 300;

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;
/** PXE boot server port (proxyDHCP REQUESTs). */
export const PXE_PORT = 4011;

/** Hardware types of the `htype` field (IANA ARP parameters). */
export const HTYPE_ETHERNET = 1;
export const HTYPE_IEEE802 = 6;
export const HTYPE_INFINIBAND = 32;

/** Option 53 values. */
export enum MessageType {
  DISCOVER = 1,
  OFFER = 2,
  REQUEST = 3,
  DECLINE = 4,
  ACK = 5,
  NAK = 6,
  RELEASE = 7,
  INFORM = 8,
}

/** Option codes this server reads or writes. */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN: 15,
  BROADCAST: 28,
  VENDOR_SPECIFIC: 43,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

/** Sub-options of iPXE's encapsulated option 175. */
export const IpxeOpt = {
  /** 175.176: skip the wait for a ProxyDHCP offer (iPXE otherwise pauses for it). */
  NO_PXEDHCP: 176,
} as const;

/** Sub-options of PXE vendor option 43 (PXE spec 2.1). */
export const PxeOpt = {
  DISCOVERY_CONTROL: 6,
} as const;

/** Client system architectures of option 93 (RFC 4578, IANA registry). */
export const Arch = {
  BIOS: 0,
  EFI_IA32: 6,
  EFI_BC: 7,
  EFI_X64: 9,
  EFI_ARM32: 10,
  EFI_ARM64: 11,
  EFI_X64_HTTP: 16,
  EFI_ARM64_HTTP: 19,
} as const;

/** Names of message types, for logs and the timeline. */
export function messageTypeName(type: number): string {
  return MessageType[type]?.toLowerCase() ?? `type-${type}`;
}
