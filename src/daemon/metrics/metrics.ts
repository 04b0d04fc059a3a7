/**
 * The daemon's Prometheus metrics: one prom-client registry per daemon, made by the composition root
 * and fed through the servers' hooks (they never see prom-client). Names start with `provisiond_`,
 * are in base units (seconds, bytes), end in `_total` only for counters, and take no label a client
 * chooses (no MAC, node name or address): every label value comes from a short fixed list, a config
 * key (a pool's network) or an HTTP status. The meaning of each is in docs/metrics.md.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MessageType } from '../../protocol/dhcp/constants.js';
import type { DhcpDropReason, DhcpObserver } from '../../servers/dhcp/types.js';
import type { HttpRequestReport } from '../../servers/http/types.js';
import { PERCEUS_OUTCOMES } from '../../servers/perceus/perceus-server.js';
import type { TransferRecord } from '../../servers/tftp/server.js';
import type { ScriptResult } from '../../nodescript/types.js';
import type { RegistryBatch } from '../../registry/sqlite/store.js';
import { BOOT_PHASES, BootTracker } from './boot.js';

const PREFIX = 'provisiond_';

const DHCP_DROP_REASONS: readonly DhcpDropReason[] = [
  'not-request',
  'not-dhcp',
  'no-hardware-address',
  'no-pool',
  'not-for-server',
  'other-server',
  'other-network',
  'bad-request',
  'not-pxe',
  'not-answered',
  'pool-exhausted',
  'uncommitted',
  'error',
];

/** DHCP message types as labels; anything else is `other` (option 53 is a byte a client chooses). */
const DHCP_TYPES = new Map<number, string>(
  Object.entries(MessageType)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k.toLowerCase()]),
);

export function dhcpTypeLabel(type: number | null): string {
  if (type === null) return 'bootp';
  return DHCP_TYPES.get(type) ?? 'other';
}

/** Why a nodescript failed, as a label. */
function scriptFailure(r: ScriptResult): string {
  if (r.timedOut) return 'timeout';
  if (r.truncated) return 'output-limit';
  if (r.kind === 'verbatim') return 'unreadable';
  if (r.signal) return 'signal';
  return 'exit';
}

/** What scrape-time gauges read from the running daemon (set by the composition root). */
export interface MetricSources {
  /** Each DHCP pool's size and addresses in use, or none when DHCP is off. */
  pools(): Array<{ network: string; size: number; inUse: number }>;
  /** Nodescript processes running, and node requests waiting for a process slot. */
  nodescripts(): { running: number; waiting: number };
  /** HTTP transfer slots held and waited for (http.maxTransfers); absent before the HTTP side runs. */
  transfers?(): { active: number; waiting: number } | null;
  /** TFTP transfers running and requests waiting for one; absent without TFTP. */
  tftp?(): { active: number; waiting: number } | null;
  /** Nodes by state and by verdict (a registry scan; cached by the caller). */
  nodes(): Promise<{ states: Map<string, number>; verdicts: Map<string, number> }>;
  /** Node identity's counts since the start (credentials issued, requests accepted or refused...); null before the HTTP side runs. */
  nodeCredentials?(): Readonly<Record<NodeCredentialResult, number>> | null;
}

/** The outcomes node identity counts (src/daemon/node-identity.ts), as the `result` label. */
export const NODE_CREDENTIAL_RESULTS = ['issued', 'revoked', 'accepted', 'refused', 'limited', 'sourceRefused', 'dropped'] as const;
export type NodeCredentialResult = (typeof NODE_CREDENTIAL_RESULTS)[number];
const CREDENTIAL_LABEL: Record<NodeCredentialResult, string> = {
  issued: 'issued',
  revoked: 'revoked',
  accepted: 'accepted',
  refused: 'refused',
  limited: 'rate-limited',
  sourceRefused: 'wrong-source',
  dropped: 'connection-dropped',
};

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const TRANSFER_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const PHASE_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];
const BOOT_BUCKETS = [5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600];

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly boot: BootTracker;
  #sources: MetricSources | null = null;

  readonly dhcpReceived = this.#counter('dhcp_packets_received_total', 'DHCP requests received and decoded, by message type (bootp: no option 53).', ['type']);
  readonly dhcpReplies = this.#counter('dhcp_replies_sent_total', 'DHCP replies sent, by message type (offer, ack, nak).', ['type']);
  readonly dhcpDropped = this.#counter('dhcp_packets_dropped_total', 'DHCP requests answered with nothing, by reason.', ['reason']);
  readonly dhcpParseFailures = this.#counter('dhcp_parse_failures_total', 'Datagrams on the DHCP port that are not a DHCP packet, by what is wrong.', ['reason']);
  readonly dhcpAllocationFailures = this.#counter('dhcp_allocation_failures_total', 'DISCOVERs left unanswered because the pool had no address to offer, by pool.', ['pool']);
  readonly dhcpLatency = new Histogram({ name: `${PREFIX}dhcp_reply_latency_seconds`, help: 'Time from a DHCP request arriving to its reply being sent (lease commit included for an ACK).', buckets: LATENCY_BUCKETS, registers: [this.registry] });

  readonly tftpStarted = this.#counter('tftp_transfers_started_total', 'TFTP transfers whose data phase began (the file was found and options negotiated).');
  readonly tftpCompleted = this.#counter('tftp_transfers_completed_total', 'TFTP transfers completed: every block acknowledged.');
  readonly tftpFailed = this.#counter('tftp_transfers_failed_total', 'TFTP transfers that started and did not complete, by reason (timeout, aborted by the client or the server, error).', ['reason']);
  readonly tftpProbes = this.#counter('tftp_size_probes_total', 'TFTP requests ended by the client after the option answer: size probes (UEFI) and option fallbacks; they started and are neither completed nor failed.');
  readonly tftpRefused = this.#counter('tftp_requests_refused_total', 'TFTP requests answered with an error before any data, by reason (not-found, refused).', ['reason']);
  readonly tftpBytes = this.#counter('tftp_sent_bytes_total', 'Bytes of file data TFTP clients acknowledged.');
  readonly tftpRetransmits = this.#counter('tftp_retransmitted_blocks_total', 'TFTP data blocks sent again after a timeout or a gap the client reported.');
  readonly tftpIgnored = this.#counter('tftp_packets_ignored_total', 'TFTP datagrams ignored, by reason: malformed (not a TFTP packet), unexpected (not a request), duplicate (a request already being served or waiting), superseded (replaced by a newer request of the same client port before its transfer began), busy (no room to wait: the client resends) and expired (waited 20 s for a slot) on the request port; stray on a transfer\'s port (from another port, a runt, another opcode, a duplicate or impossible ACK).', ['reason']);
  readonly tftpDuration = new Histogram({ name: `${PREFIX}tftp_transfer_duration_seconds`, help: 'Duration of completed TFTP transfers.', buckets: TRANSFER_BUCKETS, registers: [this.registry] });

  readonly httpRequests = this.#counter('http_requests_total', 'Requests to the node-facing HTTP server, by route and status.', ['route', 'status']);
  readonly httpBytes = this.#counter('http_response_bytes_total', 'Bytes sent by the node-facing HTTP server, by route (file bodies for boot and files; whole responses for the others).', ['route']);
  readonly httpMalformed = this.#counter('http_malformed_requests_total', 'Requests to the node-facing HTTP server its parser could not read (no route), by the status answered: 400, 408 (not sent in time), 431 (headers too large).', ['status']);
  readonly httpGetfile = new Histogram({ name: `${PREFIX}http_getfile_duration_seconds`, help: 'Duration of complete getfile transfers (GET /files/..., the VNFS image).', buckets: TRANSFER_BUCKETS, registers: [this.registry] });

  readonly perceusRequests = this.#counter('perceus_connections_total', 'Connections to the Perceus TCP protocol (config perceus), by outcome: the request they carried (script, ping, log), or why none was served (bad-request, too-long, timeout, closed before a line).', ['outcome']);

  readonly scriptRuns = this.#counter('nodescript_runs_total', 'Nodescripts run on the master (one process each).');
  readonly scriptFailures = this.#counter('nodescript_failures_total', 'Nodescripts that failed, by reason (exit, signal, timeout, output-limit, unreadable).', ['reason']);
  readonly scriptDuration = new Histogram({ name: `${PREFIX}nodescript_run_duration_seconds`, help: 'Duration of nodescripts run on the master.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });

  readonly admissionWaits = this.#counter('admission_waits_total', 'Admission control: requests that waited for a slot before being served, by resource (transfer: http.maxTransfers; tftp: TFTP transfers).', ['resource']);
  readonly admissionWait = new Histogram({ name: `${PREFIX}admission_wait_seconds`, help: 'Admission control: time requests that waited spent waiting for their slot, by resource.', labelNames: ['resource'], buckets: TRANSFER_BUCKETS, registers: [this.registry] });

  readonly vnfsPublishes = this.#counter('vnfs_image_publishes_total', 'VNFS images this server built and published as the current one of the servers sharing the database.');
  readonly vnfsFetches = this.#counter('vnfs_image_fetches_total', 'VNFS images fetched from another server (fetched), or rounds of tries that got none (failed: no holder, refused, checksum mismatch).', ['result']);
  readonly vnfsFetchedBytes = this.#counter('vnfs_image_fetched_bytes_total', 'Bytes of VNFS images (and skeletons) fetched from other servers, checked and installed.');

  readonly registryBatches = this.#counter('registry_write_batches_total', 'Batches of the servers\' registry writes (leases, contacts, timeline events) committed, by result.', ['result']);
  readonly registryCommit = new Histogram({ name: `${PREFIX}registry_commit_duration_seconds`, help: 'Time to commit one batch of registry writes (fsync included).', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [this.registry] });

  readonly bootDuration = new Histogram({ name: `${PREFIX}boot_duration_seconds`, help: 'Time from a node\'s first DHCP offer to its first ready check-in.', buckets: BOOT_BUCKETS, registers: [this.registry] });
  readonly bootPhase = new Histogram({ name: `${PREFIX}boot_phase_duration_seconds`, help: 'Duration of each phase of a boot (dhcp, loader, stage1, nodescripts, image), from the end of the phase before.', labelNames: ['phase'], buckets: PHASE_BUCKETS, registers: [this.registry] });

  constructor({ defaultMetrics = true }: { defaultMetrics?: boolean } = {}) {
    this.boot = new BootTracker({
      boot: (s) => this.bootDuration.observe(s),
      phase: (phase, s) => this.bootPhase.observe({ phase }, s),
    });
    // The gauges' collect() has the gauge as `this`: the sources are reached through this arrow.
    const sources = () => this.#sources;
    new Gauge({
      name: `${PREFIX}dhcp_pool_addresses_in_use`,
      help: 'Addresses of a DHCP pool\'s range held now (offered or bound and not expired, or declined), by pool.',
      labelNames: ['pool'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of sources()?.pools() ?? []) this.set({ pool: p.network }, p.inUse);
      },
    });
    new Gauge({
      name: `${PREFIX}dhcp_pool_addresses_free`,
      help: 'Addresses of a DHCP pool\'s range free now, by pool.',
      labelNames: ['pool'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of sources()?.pools() ?? []) this.set({ pool: p.network }, p.size - p.inUse);
      },
    });
    new Gauge({
      name: `${PREFIX}nodescript_processes_running`,
      help: 'Nodescript processes running now.',
      registers: [this.registry],
      collect() {
        this.set(sources()?.nodescripts().running ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}nodescript_processes_waiting`,
      help: 'Node requests waiting for a nodescript process slot (nodescripts.concurrency reached).',
      registers: [this.registry],
      collect() {
        this.set(sources()?.nodescripts().waiting ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}admission_slots_in_use`,
      help: 'Admission control: slots held now, by resource (transfer: large HTTP transfers, http.maxTransfers; tftp: TFTP transfers, 1,024 at most).',
      labelNames: ['resource'],
      registers: [this.registry],
      collect() {
        this.set({ resource: 'transfer' }, sources()?.transfers?.()?.active ?? 0);
        this.set({ resource: 'tftp' }, sources()?.tftp?.()?.active ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}admission_waiting`,
      help: 'Admission control: requests waiting for a slot now, by resource.',
      labelNames: ['resource'],
      registers: [this.registry],
      collect() {
        this.set({ resource: 'transfer' }, sources()?.transfers?.()?.waiting ?? 0);
        this.set({ resource: 'tftp' }, sources()?.tftp?.()?.waiting ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}nodes`,
      help: 'Registered nodes, by the provisionary state they last asked for (none: never; other: a state with no nodescripts folder).',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const n = await sources()?.nodes();
        for (const state of ['none', 'init', 'ready']) this.set({ state }, 0);
        for (const [state, count] of n?.states ?? []) this.set({ state }, count);
      },
    });
    new Counter({
      name: `${PREFIX}node_credential_checks_total`,
      help: 'Node identity: per-boot credentials issued and revoked (a new init), node requests accepted with one, refused (missing, wrong, an earlier boot\'s, another node\'s), rate-limited (429), refused for coming from another address than the lease, and connections dropped unread from a flooding address.',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        const counts = sources()?.nodeCredentials?.() ?? null;
        this.reset();
        for (const r of NODE_CREDENTIAL_RESULTS) this.inc({ result: CREDENTIAL_LABEL[r] }, counts?.[r] ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}nodes_by_verdict`,
      help: 'Registered nodes by verdict (READY, RELOAD) and, for RELOAD, the reason.',
      labelNames: ['verdict', 'reason'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const n = await sources()?.nodes();
        for (const [key, count] of n?.verdicts ?? []) {
          const [verdict, reason] = key.split(' ') as [string, string];
          this.set({ verdict, reason }, count);
        }
      },
    });
    // Every series a label takes from a fixed list exists from the start, at 0: rate() and the
    // dashboard see a counter that never moved rather than no data.
    for (const type of ['discover', 'request', 'decline', 'release', 'inform']) this.dhcpReceived.inc({ type }, 0);
    for (const result of ['fetched', 'failed']) this.vnfsFetches.inc({ result }, 0);
    for (const type of ['offer', 'ack', 'nak']) this.dhcpReplies.inc({ type }, 0);
    for (const reason of DHCP_DROP_REASONS) this.dhcpDropped.inc({ reason }, 0);
    for (const reason of ['truncated', 'bad-cookie', 'bad-op', 'bad-hardware-address', 'bad-option']) this.dhcpParseFailures.inc({ reason }, 0);
    for (const reason of ['aborted', 'timeout', 'error']) this.tftpFailed.inc({ reason }, 0);
    for (const reason of ['not-found', 'refused']) this.tftpRefused.inc({ reason }, 0);
    for (const reason of ['malformed', 'unexpected', 'duplicate', 'superseded', 'busy', 'expired', 'stray']) this.tftpIgnored.inc({ reason }, 0);
    for (const resource of ['transfer', 'tftp']) {
      this.admissionWaits.inc({ resource }, 0);
      this.admissionWait.zero({ resource });
    }
    for (const status of ['400', '408', '431']) this.httpMalformed.inc({ status }, 0);
    for (const outcome of PERCEUS_OUTCOMES) this.perceusRequests.inc({ outcome }, 0);
    for (const reason of ['exit', 'signal', 'timeout', 'output-limit', 'unreadable']) this.scriptFailures.inc({ reason }, 0);
    for (const result of ['ok', 'failed']) this.registryBatches.inc({ result }, 0);
    for (const phase of BOOT_PHASES) this.bootPhase.zero({ phase });
    if (defaultMetrics) {
      collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
      // prom-client names three gauges `..._total`; their per-type breakdowns stay (`_total` is for counters only).
      for (const n of ['nodejs_active_resources_total', 'nodejs_active_handles_total', 'nodejs_active_requests_total']) this.registry.removeSingleMetric(`${PREFIX}${n}`);
    }
  }

  #counter(name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter({ name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }

  /** The DHCP pools served (their networks): their allocation-failure counters start at 0. */
  knownPools(networks: readonly string[]): void {
    for (const pool of networks) this.dhcpAllocationFailures.inc({ pool }, 0);
  }

  /** Where the scrape-time gauges read from. */
  setSources(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** The text a scrape gets, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  readonly dhcp: DhcpObserver = {
    received: (type) => this.dhcpReceived.inc({ type: dhcpTypeLabel(type) }),
    malformed: (failure) => this.dhcpParseFailures.inc({ reason: failure }),
    dropped: (reason) => this.dhcpDropped.inc({ reason }),
    replied: (type, seconds) => {
      this.dhcpReplies.inc({ type: dhcpTypeLabel(type) });
      this.dhcpLatency.observe(seconds);
    },
    exhausted: (pool) => this.dhcpAllocationFailures.inc({ pool }),
  };

  tftpStart(): void {
    this.tftpStarted.inc();
  }

  tftpEnd(r: TransferRecord): void {
    this.tftpBytes.inc(r.bytes ?? 0);
    this.tftpRetransmits.inc(r.retransmits ?? 0);
    this.tftpIgnored.inc({ reason: 'stray' }, r.strays ?? 0);
    switch (r.outcome) {
      case 'ok':
        this.tftpCompleted.inc();
        this.tftpDuration.observe((r.durationMs ?? 0) / 1000);
        break;
      case 'probe':
      case 'options-refused':
        this.tftpProbes.inc();
        break;
      case 'not-found':
      case 'refused':
        this.tftpRefused.inc({ reason: r.outcome });
        break;
      default:
        this.tftpFailed.inc({ reason: r.outcome });
    }
  }

  /** A request that waited `seconds` for a slot of `resource` (admission control). */
  admissionWaited(resource: 'transfer' | 'tftp', seconds: number): void {
    this.admissionWaits.inc({ resource });
    this.admissionWait.observe({ resource }, seconds);
  }

  httpRequest(r: HttpRequestReport): void {
    this.httpRequests.inc({ route: r.route, status: r.complete ? String(r.status) : 'cut' });
    this.httpBytes.inc({ route: r.route }, r.bytes);
    if (r.route === 'files' && r.complete && r.status < 300) this.httpGetfile.observe(r.durationMs / 1000);
  }

  nodescript(r: ScriptResult): void {
    if (r.kind === 'master') {
      this.scriptRuns.inc();
      this.scriptDuration.observe(r.durationMs / 1000);
    }
    if (!r.ok && r.kind !== 'skipped') this.scriptFailures.inc({ reason: scriptFailure(r) });
  }

  registryBatch(b: RegistryBatch): void {
    this.registryBatches.inc({ result: b.ok ? 'ok' : 'failed' });
    if (b.ok) this.registryCommit.observe(b.seconds);
  }
}
