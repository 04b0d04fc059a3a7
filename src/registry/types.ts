/**
 * The node registry: which hardware address is which node, in which group, with which VNFS, and
 * what it was last seen doing. One interface, implemented by sqlite/ (embedded default) and later
 * postgres/; one contract suite (test/registry/contract.ts) runs against every implementation.
 *
 * Every method is async so that a networked backend fits the same interface; the SQLite backend
 * answers hot lookups (by nodeid, by address) from memory.
 */
import { ProvisiondError } from '../util/errors.js';

/** A value that may be set on the node, on its group, or come from the config defaults. */
export type Source = 'node' | 'group' | 'default';

/** What is stored for a node. `null` means "not set here, inherit from the group / defaults". */
export interface NodeRecord {
  name: string;
  /** Canonical hardware address, `AA:BB:CC:DD:EE:FF` (or a longer IPoIB identifier). */
  nodeid: string;
  group: string | null;
  vnfs: string | null;
  enabled: boolean | null;
  debug: number | null;
  /** Fixed IPv4 address (DHCP hands it out; nodescripts see it as IPADDR). */
  ipaddr: string | null;
  desc: string | null;
  /** `boot local` makes the iPXE script and DHCP send the node to its local disk. */
  boot: 'pxe' | 'local' | null;
  /** Last provisionary state the node asked for (`init`, `ready`, ...). */
  state: string | null;
  /** Milliseconds since the epoch of the last contact, or null when never seen. */
  lastcontact: number | null;
  /** Address the node was last seen from. */
  lastaddr: string | null;
  /** The VNFS of its last boot, as the node reported it (10-vnfs); null when not reported. */
  bootVnfs: string | null;
  /** The sha256 of the image it booted then: compared with the VNFS's current image ("would a reboot change it?"). */
  bootImage: string | null;
  /** Free-form attributes (`node set rack 12 n0001`); nodescripts see them as ATTR_<KEY>. Keys may be dotted (power.driver). */
  attrs: Record<string, string>;
}

export interface GroupRecord {
  name: string;
  vnfs: string | null;
  enabled: boolean | null;
  debug: number | null;
  boot: 'pxe' | 'local' | null;
  desc: string | null;
  attrs: Record<string, string>;
}

/** A node with inheritance applied: every value resolved, and where it came from. */
export interface ResolvedNode {
  name: string;
  nodeid: string;
  group: string;
  vnfs: string;
  enabled: boolean;
  debug: number;
  ipaddr: string | null;
  desc: string | null;
  boot: 'pxe' | 'local';
  state: string | null;
  lastcontact: number | null;
  lastaddr: string | null;
  bootVnfs: string | null;
  bootImage: string | null;
  attrs: Record<string, string>;
  sources: Record<string, Source>;
}

/** The fields a caller may set on a node or group (attributes through `attrs`). */
export type NodeUpdate = Partial<Omit<NodeRecord, 'name' | 'nodeid' | 'attrs' | 'state' | 'lastcontact' | 'lastaddr' | 'bootVnfs' | 'bootImage'>> & {
  attrs?: Record<string, string | null>;
};
export type GroupUpdate = Partial<Omit<GroupRecord, 'name' | 'attrs'>> & { attrs?: Record<string, string | null> };

/** A new node (import, `node add`). Unset fields inherit. */
export type NewNode = Pick<NodeRecord, 'name' | 'nodeid'> & Partial<Omit<NodeRecord, 'name' | 'nodeid'>>;

/** A DHCP lease, persisted so that a node keeps its address across reboots and daemon restarts. */
export interface Lease {
  /** Canonical hardware address. */
  hwaddr: string;
  address: string;
  /** Milliseconds since the epoch when it expires; a lease past expiry is still preferred for the same hwaddr. */
  expires: number;
  /** `offered`, `bound` or `released` (a declined address is a DeclinedAddress, not a lease). */
  state: 'offered' | 'bound' | 'released';
  hostname?: string | null;
  clientId?: string | null;
  /** Option 97 client UUID, when sent. */
  uuid?: string | null;
}

/**
 * An address kept from every client until `expires`: a client declined it (DHCPDECLINE: in use
 * elsewhere), or it answered a ping although free. Keyed by address; it belongs to no machine.
 */
export interface DeclinedAddress {
  address: string;
  /** Milliseconds since the epoch; past it the address may be offered again. */
  expires: number;
}

/** A hardware address seen on the network but not registered (autoRegister off, or exhausted). */
export interface UnknownNode {
  nodeid: string;
  lastaddr: string | null;
  /** What saw it: `dhcp`, `http`, `tftp`, `perceus`. */
  via: string;
  firstseen: number;
  lastseen: number;
  count: number;
}

/** One step of a node's boot timeline. */
export interface TimelineEvent {
  /** Milliseconds since the epoch. */
  time: number;
  /** Canonical hardware address (events are recorded by nodeid, so they exist even before a name does). */
  nodeid: string;
  /** Who recorded it: a server (`dhcp`, `tftp`, `http`), the engine (`nodescript`), or the node itself (`node`). */
  source: 'dhcp' | 'tftp' | 'http' | 'nodescript' | 'node' | 'perceus' | 'power' | 'admin';
  /** Short stage name: `discover`, `offer`, `ack`, `tftp undionly.kpxe`, `init-script-start`, `ready`, `failed`... */
  stage: string;
  /** Human message: `sent 65536 bytes in 0.12 s`, `20-foo exit 3`, the failure reason. */
  msg: string | null;
  /** false marks a failure step. */
  ok: boolean;
  /** Address it came from, when known. */
  addr?: string | null;
}

/** Options of auto-registration, taken from config `defaults`. */
export interface AutoRegisterOptions {
  nodeName: string;
  firstNode: number;
  totalNodes: number | null;
  group: string;
  vnfs: string;
  enabled: boolean;
  debug: number;
}

/** What an admin API token may do: `viewer` reads; `operator` also runs power, bootdev, reload, console; `admin` everything. */
export type Role = 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

/** An admin API token. Only the sha256 of the secret is stored; the secret is shown once, at creation. */
/** The credential a node got with its `init` script for this boot (issue 23): only its hash is stored. */
export interface NodeCredential {
  nodeid: string;
  /** Hex sha256 of the secret. */
  hash: string;
  /** The address its lease held (or the request came from) when it was issued. */
  address: string | null;
  /** Milliseconds since the epoch. */
  issued: number;
  /** The hash of the credential this one replaced (an earlier boot's), so a replay of it can be named. */
  previousHash: string | null;
}

export interface ApiToken {
  name: string;
  role: Role;
  /** Hex sha256 of the secret. */
  hash: string;
  created: number;
  /** Milliseconds since the epoch, or null: never expires. */
  expires: number | null;
  lastUsed: number | null;
  /** When it was revoked; a revoked token is refused (401) and kept for the audit trail. */
  revoked: number | null;
}

/** One change made through the admin API: who, what, when, and how it ended. */
export interface AuditEntry {
  id: number;
  time: number;
  /** The token's name (or `cli:USER` for the master's shell). */
  who: string;
  role: Role;
  /** The API operation (`nodes.patch`, `tokens.create`...). */
  action: string;
  method: string;
  path: string;
  /** The node, group, VNFS, token or task acted on, when there is one. */
  target: string | null;
  status: number;
  /** A short description of the request (the body's field names and values, secrets left out). */
  detail: string | null;
}

/** Drydock's task states, which its users know. */
export type TaskStatus = 'requested' | 'queued' | 'running' | 'terminating' | 'terminated' | 'complete';
export type TaskResult = 'incomplete' | 'success' | 'partial_success' | 'failure';
export const TASK_STATUSES: readonly TaskStatus[] = ['requested', 'queued', 'running', 'terminating', 'terminated', 'complete'];
export const TASK_RESULTS: readonly TaskResult[] = ['incomplete', 'success', 'partial_success', 'failure'];

/** One status message of a task or of one of its nodes. */
export interface TaskMessage {
  ts: number;
  message: string;
  error: boolean;
  node: string | null;
}

/** One node's part of a task. */
export interface TaskNode {
  node: string;
  status: TaskStatus;
  result: TaskResult;
  /** Where a reload is: `power`, `dhcp`, `kernel`, `init`, `getfile`, `ready` (from the timeline); null for one-shot actions. */
  phase: string | null;
  /** The last time this node made progress (an orchestrator resets its "no progress" timer on it). */
  progressAt: number | null;
  messages: TaskMessage[];
}

/** A long or fanned-out action (power on many nodes, reload until ready, an image build), kept in the registry. */
export interface TaskRecord {
  /** Unguessable, URL-safe. */
  id: string;
  /** `power`, `bootdev`, `reload`, `vnfs-image`, later `deploy`, `capture`. */
  action: string;
  /** What was asked: the action's parameters (patterns, power verb, VNFS name...). */
  params: Record<string, unknown>;
  status: TaskStatus;
  result: TaskResult;
  /** Who asked: the token name, or `cli:USER`. */
  createdBy: string;
  created: number;
  started: number | null;
  finished: number | null;
  /** Latest progress of any node (or of the task itself). */
  progressAt: number | null;
  idempotencyKey: string | null;
  /** Which process runs it (`HOST:PID`): a restarted daemon takes over only tasks whose runner is gone. */
  runner: string | null;
  /** Set when a cancel was asked (by whom, when). */
  cancelRequested: { by: string; at: number } | null;
  messages: TaskMessage[];
  nodes: TaskNode[];
}

/** Thrown when the name pattern has no free name left (a ProvisiondError: the CLI prints it as one line). */
export class NamePatternExhaustedError extends ProvisiondError {}

export interface RegistryStore {
  // ---- nodes ----
  getNode(name: string): Promise<NodeRecord | null>;
  getNodeByNodeid(nodeid: string): Promise<NodeRecord | null>;
  /** The node holding this address as fixed ipaddr, or as its current lease. */
  getNodeByAddress(addr: string): Promise<NodeRecord | null>;
  listNodes(): Promise<NodeRecord[]>;
  addNode(node: NewNode): Promise<NodeRecord>;
  /** Adds all or none, in one transaction. Errors name the offending entry. */
  importNodes(nodes: NewNode[]): Promise<number>;
  updateNode(name: string, update: NodeUpdate): Promise<NodeRecord>;
  /**
   * The same update on many nodes, all or none, in one transaction (`node set` on a whole rack: one
   * commit, so a running daemon reloads its index once, not once per node). Optional: callers fall
   * back to updateNode per node.
   */
  updateNodes?(names: string[], update: NodeUpdate): Promise<NodeRecord[]>;
  /**
   * Atomically: the first of `candidates` (names, in order) that is registered and has no attribute
   * `key` of its own gets `update` (which sets `key`), committed; null when none is left. Two callers,
   * in one process or several (or on several servers), never claim the same node. Node allocation
   * (`alloc.owner`) is built on it.
   */
  claimNode(candidates: readonly string[], key: string, update: NodeUpdate): Promise<NodeRecord | null>;
  deleteNode(name: string): Promise<void>;
  /** Deletes many nodes, all or none, in one transaction. Optional, as updateNodes. */
  deleteNodes?(names: string[]): Promise<void>;
  renameNode(oldName: string, newName: string): Promise<NodeRecord>;
  /** Motherboard swap: the node keeps its name, history and settings under a new hardware address. */
  replaceNodeid(name: string, nodeid: string): Promise<NodeRecord>;
  /**
   * Returns the node for `nodeid`, registering it with the next free name of the pattern if unknown.
   * Safe under concurrency: simultaneous calls never get the same name. Throws NamePatternExhaustedError.
   */
  autoRegister(nodeid: string, options: AutoRegisterOptions): Promise<{ node: NodeRecord; created: boolean }>;
  /** Records a contact: the state asked for, the address, the time. Batched; a change of state resolves once committed. */
  recordContact(nodeid: string, state: string | null, addr: string | null, time?: number): Promise<void>;
  /** Records what the node booted: its VNFS and the sha256 of that image (reported by the node). Resolves once committed. */
  recordBootImage(nodeid: string, vnfs: string, sha256: string): Promise<void>;
  /** Applies group and default inheritance. */
  resolve(node: NodeRecord, defaults: Pick<AutoRegisterOptions, 'group' | 'vnfs' | 'enabled' | 'debug'>): Promise<ResolvedNode>;

  // ---- groups ----
  getGroup(name: string): Promise<GroupRecord | null>;
  listGroups(): Promise<GroupRecord[]>;
  /** Creates the group if needed. */
  updateGroup(name: string, update: GroupUpdate): Promise<GroupRecord>;
  deleteGroup(name: string): Promise<void>;

  // ---- unknown machines ----
  recordUnknown(nodeid: string, addr: string | null, via: string): Promise<void>;
  listUnknown(): Promise<UnknownNode[]>;

  // ---- DHCP leases ----
  getLease(hwaddr: string): Promise<Lease | null>;
  getLeaseByAddress(address: string): Promise<Lease | null>;
  listLeases(): Promise<Lease[]>;
  /**
   * Writes a lease. Readers see it at once; the promise resolves only once it is committed (a
   * DHCPACK waits for it), and rejects when the commit failed. Implementations group the writes of
   * many callers into one commit.
   */
  putLease(lease: Lease, opts?: LeasePutOptions): Promise<void>;
  /** Removes a lease; resolves once committed, as putLease. */
  deleteLease(hwaddr: string): Promise<void>;
  /** Declined (quarantined) addresses, expired ones included. */
  listDeclined(): Promise<DeclinedAddress[]>;
  /**
   * Quarantines an address until `expires`; resolves once committed, as putLease. A lease written
   * later for the same address lifts it.
   */
  putDeclined(declined: DeclinedAddress): Promise<void>;

  // ---- timeline ----
  addEvent(event: TimelineEvent): Promise<void>;
  /** Events of one node, oldest first; `since` in ms. */
  listEvents(nodeid: string, options?: { since?: number; limit?: number }): Promise<TimelineEvent[]>;

  // ---- node credentials (one per node, each write committed before it resolves) ----
  /**
   * Stores the node's credential for a new boot, replacing (revoking) the one it had, whose hash
   * becomes `previousHash`. Returns the credential stored.
   */
  putNodeCredential(cred: Omit<NodeCredential, 'previousHash'>): Promise<NodeCredential>;
  getNodeCredential(nodeid: string): Promise<NodeCredential | null>;
  /** The node whose current credential has this hash, or null. */
  getNodeCredentialByHash(hash: string): Promise<NodeCredential | null>;

  // ---- admin API: tokens, audit, tasks (each write committed before it resolves) ----
  /** Stores a new token. Throws RegistryConflictError when an unrevoked token has this name. */
  createToken(token: Omit<ApiToken, 'lastUsed' | 'revoked'>): Promise<ApiToken>;
  /** Every token, revoked ones included, by name. */
  listTokens(): Promise<ApiToken[]>;
  getTokenByHash(hash: string): Promise<ApiToken | null>;
  /** Revokes the token (it stays listed, refused). Throws NodeNotFoundError when there is none by that name. */
  revokeToken(name: string, time?: number): Promise<ApiToken>;
  /** Records a use; cheap, may be batched and coarse (a minute). */
  touchToken(name: string, time: number): Promise<void>;
  /** Appends an audit entry; returns it with its id. */
  addAudit(entry: Omit<AuditEntry, 'id'>): Promise<AuditEntry>;
  /** Audit entries, newest first: `before` an id (paging), at most `limit`, optionally of one `who`. */
  listAudit(options?: { before?: number; limit?: number; who?: string }): Promise<AuditEntry[]>;
  /**
   * Creates or replaces a task. A new task with an idempotency key already used by the same caller
   * is not stored: the existing task is returned instead. Otherwise returns the task stored.
   */
  putTask(task: TaskRecord, options?: TaskPutOptions): Promise<TaskRecord>;
  getTask(id: string): Promise<TaskRecord | null>;
  /** Tasks, newest first; `before` a task id (paging); `status` filters; `unfinished` = neither terminated nor complete. */
  listTasks(options?: { status?: TaskStatus[]; unfinished?: boolean; before?: string; limit?: number }): Promise<TaskRecord[]>;
  /**
   * Claims unfinished tasks for `runner`, atomically: two runners (two servers on one database)
   * never claim the same task (PostgreSQL: `FOR UPDATE SKIP LOCKED`). What may be claimed is in
   * `claim`; each task claimed is returned with `runner` set to the claimer (committed), the runner
   * it had, and why it could be taken.
   */
  claimTasks(runner: string, claim: TaskClaim): Promise<ClaimedTask[]>;

  /**
   * Tells `fn` of every lease and declined-address change, made by this process or another (several
   * servers on one database); returns the unsubscribe. Optional: only stores that hear of other
   * writers (PostgreSQL with its cache) have it.
   */
  onLeaseChange?(fn: (change: LeaseChange) => void): () => void;

  /**
   * Several servers on one database: registers this server (heartbeats) and takes part in the
   * election of the leader of singleton work. Optional: a store only one server uses has none.
   */
  joinCluster?(me: { id: string; address: string; version: string }): Promise<ClusterMembership>;
  /** The servers sharing the database and the leader, from their heartbeats (PostgreSQL only). */
  clusterStatus?(): Promise<ClusterStatus>;
  /**
   * Whether a network database answered the last round trip; when not, since when (ms) and why.
   * Optional: an embedded database (SQLite) is never out of reach.
   */
  databaseState?(): { reachable: boolean; since: number | null; reason: string | null };

  /**
   * VNFS images across servers (docs/postgresql.md, "VNFS images"): the current image of each VNFS
   * as the last server to build (or import) it published it, and which image each server holds.
   * PostgreSQL: durable once resolved; the last publish wins, by the database's clock. SQLite (one
   * server): the same answers, kept for the process's life, since no other server can need them.
   */
  publishImage(image: VnfsImagePublication): Promise<VnfsImageRecord>;
  /** The current image of `vnfs`, or null when none was published. */
  getImage(vnfs: string): Promise<VnfsImageRecord | null>;
  /** Every published image, by VNFS name. */
  listImages(): Promise<VnfsImageRecord[]>;
  /**
   * Forgets the image of `vnfs` and its holders (the VNFS was deleted): no server fetches it any
   * more, and subscribers are told. True when there was one.
   */
  forgetImage(vnfs: string): Promise<boolean>;
  /** Records that `server` (its address) now holds image `sha256` of `vnfs`. */
  holdImage(vnfs: string, sha256: string, server: string): Promise<void>;
  /** The servers holding an image of `vnfs` (each its latest), with whether their heartbeat is live. */
  imageHolders(vnfs: string): Promise<VnfsImageHolder[]>;
  /**
   * The secret servers sharing the database present to each other (peer image fetches): made once,
   * by the first server to ask, and readable only through the database.
   */
  clusterSecret(): Promise<string>;
  /**
   * Tells `fn` the VNFS name of every image published, here or by another server; returns the
   * unsubscribe. `fn(null)` says the subscription is listening, at first and again after a lost
   * connection: a publish before it may not have been told, so the subscriber reads them all then.
   */
  onImagePublished?(fn: (vnfs: string | null) => void): () => void;

  /** Writes anything batched. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** What a server publishes when it built or imported the image of a VNFS. */
export interface VnfsImagePublication {
  vnfs: string;
  sha256: string;
  bytes: number;
  /** The address (`HOST:PORT` of its HTTP service) of the server that has it. */
  builder: string;
  /** The sha256 of its skeleton (a VNFS that boots its own kernel), or null. */
  skeletonSha256: string | null;
  /** The capsule's `config` text, so that every server boots it alike; null when it has none. */
  config: string | null;
}

/** The current image of a VNFS; `builtAt` is when it was published, by the database's clock (ms). */
export interface VnfsImageRecord extends VnfsImagePublication {
  builtAt: number;
}

export interface VnfsImageHolder {
  server: string;
  sha256: string;
  since: number;
  /** Whether the server's heartbeat is live (SQLite: always). */
  live: boolean;
}

/** The servers sharing one database, by the database's clock. */
export interface ClusterStatus {
  servers: Array<{ id: string; address: string; version: string; started: Date; heartbeat: Date; lagMs: number; leader: boolean }>;
  leader: { server: string; generation: number; heartbeat: Date; lagMs: number } | null;
}

/** What a runner may claim (registry.claimTasks). */
export interface TaskClaim {
  /**
   * Tasks the caller knows were left by a runner that is gone (no runner, or a process of this host
   * that no longer exists): each is claimed if its runner is still the one given. A task a server
   * of a cluster claimed is not taken this way, only by `leaseMs`.
   */
  left?: Array<{ id: string; runner: string | null }>;
  /** Also queued tasks that no runner has claimed yet, oldest first (servers sharing a queue). */
  unclaimed?: boolean;
  /**
   * Also tasks claimed by a server whose heartbeat is older than this (ms), or which left the
   * cluster: a server killed or cut off. Stores without heartbeats (SQLite) have no such tasks.
   */
  leaseMs?: number;
  /** Actions this runner cannot run: left for another. */
  skipActions?: readonly string[];
  /** At most this many (default 100). */
  limit?: number;
}

/** A task just claimed: `from` is the runner it had; `why` which rule of the claim took it. */
export interface ClaimedTask {
  task: TaskRecord;
  from: string | null;
  why: 'left' | 'unclaimed' | 'server-stopped';
}

export interface TaskPutOptions {
  /**
   * Write only while the stored task is still run by this runner (null: still unclaimed):
   * TaskClaimLostError (nothing written) once another runner claimed it. A new task is stored.
   */
  ifRunner?: string | null;
}

/** This server's part in a cluster of servers on one database. */
export interface ClusterMembership {
  /** True while this server leads (singleton work runs here). */
  readonly isLeader: boolean;
  /** This server's id among the servers (`HOST:PID`): its task runner's id. */
  readonly id: string;
  /** How long a heartbeat holds (ms): a server silent for longer is taken to have stopped. */
  readonly leaseMs: number;
  /** Records this server's address (`HOST:PORT` of its HTTP service) once its port is bound. */
  setAddress?(address: string): Promise<void>;
  /** Leaves: the leadership passes at once; called by close(). */
  stop(): Promise<void>;
}

export interface LeasePutOptions {
  /**
   * Fail (LeaseConflictError, nothing written) when the machine holds another address with a live
   * bound lease: a server's late answer must not move a client another server bound meanwhile.
   * Stores written by one server only may ignore it (their caller checked already).
   */
  exclusive?: boolean;
}

/** A lease or declined address as the database has it now (null: gone); `reload`: everything may have changed. */
export type LeaseChange =
  | { kind: 'lease'; hwaddr: string; lease: Lease | null }
  | { kind: 'declined'; address: string; declined: DeclinedAddress | null }
  | { kind: 'reload' };
