/**
 * Node identity (issue 23): the per-boot credential a node gets with its `init` script and
 * presents on everything it does afterwards (ready check-ins, timeline events, protected files),
 * and the source-address policy (`security.verifySource`). Only the sha256 of a credential is
 * stored; a new `init` replaces the node's credential, which revokes the previous boot's. Every
 * refusal is counted and written into the timeline of the node it claimed to be; an address that
 * keeps presenting bad credentials is answered 429 at once, without touching the registry.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { NodeCredential, NodeRecord, RegistryStore, TimelineEvent } from '../registry/types.js';
import { HttpError } from '../servers/http/errors.js';
import { FailureLimiter } from '../util/failure-limiter.js';
import type { TimelineRecorder } from './timeline.js';

/** The shell variable the init script sets on the node (read by the stage-1 client and the ready agent). */
export const CREDENTIAL_VARIABLE = 'PROVISIOND_CREDENTIAL';

export interface IdentityCounters {
  issued: number;
  /** Credentials replaced by a new `init` (each new boot of a node that had one). */
  revoked: number;
  accepted: number;
  /** Requests refused for a missing, wrong, revoked or other node's credential (401/403). */
  refused: number;
  /** Requests answered 429 because their address was over its limit of bad credentials. */
  limited: number;
  /** Requests refused because they came from another address than the node holds. */
  sourceRefused: number;
  /** Connections closed unread: their address kept going after its 429s. */
  dropped: number;
}

export interface NodeIdentityDeps {
  registry: RegistryStore;
  timeline: TimelineRecorder;
  log: Logger;
  config(): Config;
}

const hashOf = (secret: string): string => createHash('sha256').update(secret).digest('hex');

function sameHash(a: string, b: string | null): boolean {
  return b !== null && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** Whether requests of `node` must come from the address it holds, per `security.verifySource`. */
export function verifiesSource(config: Config, node: Pick<NodeRecord, 'ipaddr'>): boolean {
  const v = config.security.verifySource;
  if (v !== 'auto') return v === 'on';
  // auto: provisiond knows the address when its own DHCP hands it out, or when it is fixed.
  return (config.dhcp.enabled && config.dhcp.mode === 'server') || node.ipaddr !== null;
}

/** Puts `line` after the first line (the `#!`) of a script stream. */
export function insertAfterShebang(line: string): Transform {
  let head: Buffer | null = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (head === null) return cb(null, chunk);
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl === -1 && head.length < 4096) return cb();
      const at = head.subarray(0, 2).toString() === '#!' && nl !== -1 ? nl + 1 : 0;
      const out = Buffer.concat([head.subarray(0, at), Buffer.from(`${line}\n`), head.subarray(at)]);
      head = null;
      cb(null, out);
    },
    flush(cb) {
      if (head !== null) this.push(Buffer.concat([Buffer.from(`${line}\n`), head]));
      cb();
    },
  });
}

export class NodeIdentity {
  readonly counters: IdentityCounters = { issued: 0, revoked: 0, accepted: 0, refused: 0, limited: 0, sourceRefused: 0, dropped: 0 };
  readonly #limiter: FailureLimiter;

  constructor(private readonly deps: NodeIdentityDeps) {
    this.#limiter = new FailureLimiter({ limit: deps.config().security.maxBadCredentialsPerMinute });
  }

  get enabled(): boolean {
    return this.deps.config().security.nodeCredentials;
  }

  /** The address `node` holds: its fixed address, else its lease's. */
  async heldAddress(node: NodeRecord): Promise<string | null> {
    return node.ipaddr ?? (await this.deps.registry.getLease(node.nodeid))?.address ?? null;
  }

  /** Refuses (403, a `refused` step) a request of `node` from another address than it holds, when the policy says so. */
  async verifySource(node: NodeRecord, addr: string, what: string, source: TimelineEvent['source'] = 'http'): Promise<void> {
    if (!verifiesSource(this.deps.config(), node)) return;
    const held = await this.heldAddress(node);
    if (held === addr) return;
    // Found by bench/identity: a flood from the wrong address cost a timeline write per request and
    // slowed real nodes by seconds. It counts against the address as bad credentials do.
    this.#admit(addr);
    this.#limiter.fail(addr);
    this.counters.sourceRefused++;
    this.deps.timeline({ nodeid: node.nodeid, source, stage: 'refused', msg: `${what} from ${addr}, node holds ${held ?? 'no address'}`, ok: false, addr });
    throw new HttpError(403, `forbidden: ${node.name} holds ${held ?? 'no address'}, the request came from ${addr} (security.verifySource)`, { headers: { Connection: 'close' } });
  }

  /**
   * A fresh credential for this boot of `node` (served with its `init` script), stored hashed and
   * bound to `addr`; the previous boot's is revoked, and the timeline says so. Null when credentials are off.
   */
  async issue(node: NodeRecord, addr: string, via: TimelineEvent['source']): Promise<string | null> {
    if (!this.enabled) return null;
    const secret = randomBytes(32).toString('hex');
    const stored = await this.deps.registry.putNodeCredential({ nodeid: node.nodeid, hash: hashOf(secret), address: addr || null, issued: Date.now() });
    this.counters.issued++;
    if (stored.previousHash) this.counters.revoked++;
    const msg = stored.previousHash ? `issued to ${addr} for this boot; the previous boot's credential is revoked` : `issued to ${addr} for this boot`;
    this.deps.timeline({ nodeid: node.nodeid, source: via, stage: 'credential', msg, ok: true, addr });
    return secret;
  }

  /** The line the init script starts with, handing the credential to the node. */
  static scriptLine(secret: string): string {
    return `${CREDENTIAL_VARIABLE}=${secret}; export ${CREDENTIAL_VARIABLE} # this boot's node credential: keep it secret`;
  }

  /**
   * Whether to take a connection from `addr`: not from one that kept presenting bad credentials
   * after its 429s (ten times its limit this minute). Its connections close unread until the minute ends.
   */
  acceptConnection(addr: string): boolean {
    if (!this.#limiter.over(addr, 10)) return true;
    this.counters.dropped++;
    return false;
  }

  /** Throws 429 when `addr` presented too many bad credentials this minute (no registry work, no timeline). */
  #admit(addr: string): void {
    this.#limiter.limit = this.deps.config().security.maxBadCredentialsPerMinute;
    if (!this.#limiter.over(addr)) return;
    this.counters.limited++;
    this.#limiter.fail(addr);
    throw new HttpError(429, `too many bad node credentials from ${addr}: try again later`, { headers: { 'Retry-After': String(this.#limiter.retryAfter()), Connection: 'close' } });
  }

  #refuse(node: NodeRecord, addr: string, what: string, reason: string, status: 401 | 403): never {
    this.counters.refused++;
    this.#limiter.fail(addr);
    this.deps.timeline({ nodeid: node.nodeid, source: 'http', stage: 'refused', msg: `${what} from ${addr}: ${reason}`, ok: false, addr });
    this.deps.log.warn({ node: node.name, addr, what, reason }, 'node credential refused');
    const headers: Record<string, string> = { Connection: 'close' };
    if (status === 401) headers['WWW-Authenticate'] = 'Bearer realm="provisiond node"';
    throw new HttpError(status, `${what} for ${node.name} refused: ${reason}`, { headers });
  }

  /**
   * Checks that `presented` is the current credential of `node` (and, when the source policy
   * applies, that it comes from the address it was issued to). Refuses with 401 (none) or 403
   * (wrong, an earlier boot's, another node's), recorded in `node`'s timeline and counted.
   */
  async check(node: NodeRecord, presented: string | null, addr: string, what: string): Promise<void> {
    if (!this.enabled) return;
    this.#admit(addr);
    if (!presented) this.#refuse(node, addr, what, 'no node credential presented', 401);
    const hash = hashOf(presented);
    const cred = await this.deps.registry.getNodeCredential(node.nodeid);
    if (!cred) this.#refuse(node, addr, what, 'the node has no credential: it gets one with its next init script', 403);
    if (!sameHash(hash, cred.hash)) this.#refuse(node, addr, what, await this.#why(hash, cred), 403);
    if (cred.address && cred.address !== addr && verifiesSource(this.deps.config(), node)) {
      this.#refuse(node, addr, what, `the credential was issued to ${cred.address}`, 403);
    }
    this.counters.accepted++;
  }

  async #why(hash: string, cred: NodeCredential): Promise<string> {
    if (sameHash(hash, cred.previousHash)) return 'the credential of an earlier boot (revoked by the init of this boot)';
    const other = await this.deps.registry.getNodeCredentialByHash(hash);
    if (!other) return 'wrong node credential';
    const owner = await this.deps.registry.getNodeByNodeid(other.nodeid);
    // The other node's secret is out: say so in its own timeline too.
    this.deps.timeline({ nodeid: other.nodeid, source: 'http', stage: 'refused', msg: `its credential was presented as the credential of ${cred.nodeid}: someone else holds it`, ok: false, addr: null });
    return `the credential of another node (${owner?.name ?? other.nodeid})`;
  }

  /** The node whose current credential `presented` is (protected files), or a refusal. */
  async owner(presented: string | null, addr: string, what: string): Promise<NodeRecord> {
    this.#admit(addr);
    const fail = (status: 401 | 403, reason: string): never => {
      this.counters.refused++;
      this.#limiter.fail(addr);
      this.deps.log.warn({ addr, what, reason }, 'node credential refused');
      throw new HttpError(status, `${what} refused: ${reason}`, { headers: { Connection: 'close' } });
    };
    if (!presented) return fail(401, 'a protected file needs the node credential');
    const cred = await this.deps.registry.getNodeCredentialByHash(hashOf(presented));
    const node = cred ? await this.deps.registry.getNodeByNodeid(cred.nodeid) : null;
    if (!cred || !node) return fail(403, 'wrong node credential');
    if (cred.address && cred.address !== addr && verifiesSource(this.deps.config(), node)) this.#refuse(node, addr, what, `the credential was issued to ${cred.address}`, 403);
    this.counters.accepted++;
    return node;
  }
}
