/**
 * What the DHCP server asks of its owner. The server knows packets, pools and leases; which boot
 * file a machine gets, whether it is answered at all and what it is called are the handler's
 * decisions (the daemon adapts the registry and the boot policy into it).
 */
import type { Logger } from '../../log/logger.js';
import type { DhcpDecodeFailure } from '../../protocol/dhcp/packet.js';
import type { DhcpDeclined, DhcpLease, PoolOptions } from './pool.js';

/** What the server knows of a client when it asks for a decision. */
export interface DhcpClientInfo {
  /** Canonical hardware address (the nodeid). */
  hwaddr: string;
  /** `discover`, `request`, `inform`; proxy-mode requests too. */
  messageType: string;
  /** Option 93, or null when the client sent none (plain DHCP clients). */
  arch: number | null;
  /** Option 77 user classes; `iPXE` marks iPXE. */
  userClasses: string[];
  /** Option 60 as sent (`PXEClient:Arch:00000:UNDI:002001`, `HTTPClient:...`), or null. */
  vendorClass: string | null;
  /** Option 97 client UUID, or null. */
  uuid: string | null;
  /** Option 12 sent by the client, or null. */
  hostname: string | null;
  /** The relay's address (giaddr), or null when the request was not relayed. */
  relay: string | null;
  /** Interface the request came in on, when known. */
  interface: string | null;
  /** True for proxyDHCP requests: only boot information will be sent. */
  proxy: boolean;
}

/** Boot information for a reply. */
export interface DhcpBoot {
  /** siaddr / next-server, also option 66 unless `sname` says otherwise. */
  nextServer: string;
  /** BOOTP file field and option 67: a TFTP file name or an http:// URL. */
  file: string;
  sname?: string | null;
  /** Option 60 of the reply (`HTTPClient` for UEFI HTTP boot); null: none. */
  vendorClass?: string | null;
  /** Sends iPXE option 175.176 = 1 so iPXE does not wait for ProxyDHCP offers. */
  ipxeNoProxyWait?: boolean;
}

export type DhcpDecision =
  | { answer: false; reason: string }
  | {
      answer: true;
      /** A fixed address for this client (the node's ipaddr); null: one from the pool. */
      address?: string | null;
      /** Option 12: the node's name, so nodes come up named. */
      hostname?: string | null;
      /** Null: an address only, no boot information. */
      boot: DhcpBoot | null;
    };

/** One step worth recording on a node's boot timeline. */
export interface DhcpEvent {
  hwaddr: string;
  stage: 'offer' | 'ack' | 'ack-committed' | 'uncommitted' | 'nak' | 'release' | 'decline' | 'inform' | 'exhausted' | 'proxy-offer' | 'proxy-ack';
  address: string | null;
  msg: string;
  ok: boolean;
}

export interface DhcpHandler {
  decide(client: DhcpClientInfo): Promise<DhcpDecision>;
  /** True when `address` belongs to someone other than `hwaddr` (a node's fixed ipaddr): never offered. */
  addressReserved?(address: string, hwaddr: string): boolean | Promise<boolean>;
  event?(event: DhcpEvent): void;
}

/**
 * Where leases and declined addresses are persisted (the registry). putLease, deleteLease and
 * putDeclined resolve once the change is committed (the server sends an ACK only then) and reject
 * when it could not be; the store may group many writes into one commit. A lease put for a declined
 * address lifts the decline. flush() makes every accepted write durable.
 */
export interface DhcpLeaseStore {
  listLeases(): Promise<DhcpLease[]>;
  /**
   * Claims the lease's address. With several servers on one store, a claim of an address another
   * machine holds (a live lease) rejects with an error whose `claimLost` is true and whose `lease`
   * is the holder's lease when known; nothing is written. `exclusive`: fail the same way when the
   * machine holds another address with a live bound lease (bound meanwhile by another server).
   */
  putLease(lease: DhcpLease, opts?: { exclusive?: boolean }): Promise<void>;
  deleteLease(hwaddr: string): Promise<void>;
  listDeclined(): Promise<DhcpDeclined[]>;
  putDeclined(declined: DhcpDeclined): Promise<void>;
  flush(): Promise<void>;
  /**
   * Tells `fn` of every lease and declined-address change of the store, whoever made it (another
   * server on a shared database); returns the unsubscribe. Optional: a store only this server
   * writes has nothing to tell.
   */
  onLeaseChange?(fn: (change: DhcpLeaseChange) => void): () => void;
}

/** A lease or declined address as the store has it now (null: gone), or `reload`: read them all again. */
export type DhcpLeaseChange =
  | { kind: 'lease'; hwaddr: string; lease: DhcpLease | null }
  | { kind: 'declined'; address: string; declined: DhcpDeclined | null }
  | { kind: 'reload' };

/** What a lost claim rejects with (see DhcpLeaseStore.putLease). */
export interface DhcpClaimLost {
  claimLost: true;
  lease: DhcpLease | null;
}

export function isClaimLost(err: unknown): err is DhcpClaimLost {
  return typeof err === 'object' && err !== null && (err as { claimLost?: unknown }).claimLost === true;
}

/** Why a request got no answer, in words that do not vary with the packet (counters, metrics). */
export type DhcpDropReason =
  | 'not-request'
  | 'not-dhcp'
  | 'no-hardware-address'
  | 'no-pool'
  | 'not-for-server'
  | 'other-server'
  | 'other-network'
  | 'bad-request'
  | 'not-pxe'
  | 'not-answered'
  | 'pool-exhausted'
  | 'uncommitted'
  | 'error';

/**
 * Told of what the server does, for its owner's counters (the daemon's metrics). Every method is
 * optional and called synchronously on the packet path: keep it cheap, never throw.
 */
export interface DhcpObserver {
  /** A decoded request, by its message type (option 53; null for a BOOTP request without one). */
  received?(type: number | null): void;
  /** A datagram that is not a DHCP packet at all. */
  malformed?(failure: DhcpDecodeFailure): void;
  /** A request answered with nothing, and why. */
  dropped?(reason: DhcpDropReason): void;
  /** A reply handed to the kernel: its message type and the seconds since its request arrived. */
  replied?(type: number, seconds: number): void;
  /** No address left to offer in this pool (its network in CIDR form). */
  exhausted?(pool: string): void;
}

export interface DhcpServerOptions {
  mode: 'server' | 'proxy';
  /** Interface the server is tied to (SO_BINDTOIFINDEX); null: all interfaces. */
  interface: string | null;
  /** Address to bind (0.0.0.0 to receive broadcasts). */
  listen?: string;
  /** Server port (67); tests and benchmarks in namespaces keep it. */
  port?: number;
  /** Port replies to clients go to (68). */
  clientPort?: number;
  /** PXE boot server port of proxy mode (4011). */
  proxyPort?: number;
  /** Server identifier when the interface has no address of its own (config master). */
  serverAddress: string | null;
  /** The first pool serves `interface`; others their own interface or relays. */
  pools: PoolOptions[];
  /** Seconds. */
  leaseTime: number;
  /** Ping an address before offering it to a new client. */
  pingCheck?: boolean;
  /**
   * How a new client's address is chosen: `iterative` (the next never-used one; stable, compact)
   * or `random` among the free ones, so that several servers sharing one lease store seldom
   * offer the same address (an iterative allocator on each of them collides). Default iterative.
   */
  allocator?: 'iterative' | 'random';
  handler: DhcpHandler;
  /** Told of every request, drop and reply (the daemon's metrics); none by default. */
  observer?: DhcpObserver;
  leases: DhcpLeaseStore;
  logger: Logger;
}

/** Counters, for logs, the API and tests. */
export interface DhcpStats {
  received: number;
  malformed: number;
  ignored: number;
  offers: number;
  acks: number;
  naks: number;
  exhausted: number;
  errors: number;
  /** Replies broadcast instead of unicast to a ciaddr the kernel had no ARP entry for (neighbours.ts). */
  broadcastInstead: number;
  /** ACKs (and RELEASEs, DECLINEs) not answered because their lease change could not be committed. */
  uncommitted: number;
  /** REQUESTs NAKed because another server's client claimed the address first (a shared lease store). */
  claimsLost: number;
  /**
   * Renewals and INIT-REBOOTs ACKed while their write could not be committed (the database out of
   * reach), for the time their committed lease had left and no longer.
   */
  ackedCommittedOnly: number;
}
