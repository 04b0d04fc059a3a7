/**
 * How the composition root starts the servers. Each server (http, dhcp, tftp, perceus) has a factory
 * under src/daemon/ that wires the boot policy (the Booter), the registry and the nodescript engine
 * into the callbacks its server takes, and returns a Service. The factories are listed in services.ts.
 */
import { Booter } from '../boot/booter.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { NodescriptEngine } from '../nodescript/types.js';
import type { RegistryStore, TimelineEvent } from '../registry/types.js';
import type { NodeRequests } from './node-requests.js';
import type { EventHub } from '../api/events.js';
import type { TaskService } from '../api/context.js';
import type { DaemonMetrics } from './metrics/metrics.js';
import type { NodeActionBoard } from '../tasks/node-actions.js';
import type { ImageSync } from './image-sync.js';

/** What every service factory receives from the daemon. */
export interface DaemonContext {
  config: Config;
  log: Logger;
  registry: RegistryStore;
  /** Records one step of a node's boot timeline (never throws; failures are logged). */
  timeline(event: Omit<TimelineEvent, 'time'> & { time?: number }): void;
  /** Other services started before this one, by name (e.g. the dhcp service for lease lookups). */
  services: ReadonlyMap<string, Service>;
  /** The config in force now: `config` is the one at start, this one follows reloads. */
  current?(): Config;
  /** The daemon's nodescript engine (one per daemon, shared by every service). */
  nodescripts?: NodescriptEngine;
  /**
   * The boot policy: who a machine is (auto-registration), its boot file, TFTP files, iPXE script.
   * The daemon shares one; a service started alone (tests) gets one made from the context (booterOf).
   */
  booter?: Booter;
  /** Nodescript serving shared by the HTTP and Perceus services. */
  nodes?: NodeRequests;
  /** The live event stream's hub (the admin API's /events). */
  events?: EventHub;
  /** The task runner (the admin API's tasks). */
  tasks?: TaskService;
  /** When the daemon started (ms). */
  startedAt?: number;
  /** Actions the tasks offer to nodes' ready agents (captures), taken through the HTTP service. */
  actions?: NodeActionBoard;
  /** VNFS images across servers sharing the database (image-sync.ts), once started; absent: none. */
  images?(): ImageSync | null;
  /** The daemon's Prometheus metrics, fed through the servers' hooks; absent: nothing is counted. */
  metrics?: DaemonMetrics;
}

/** A started server. */
export interface Service {
  readonly name: string;
  /** Human description of where it listens, logged at start: `http 0.0.0.0:8080`. */
  readonly address: string;
  /** Applies a new config (rebinding if its address changed). Absent: the daemon restarts the service. */
  reload?(config: Config): Promise<void>;
  /** Stops accepting, lets work in flight finish (bounded), frees everything. */
  close(): Promise<void>;
}

/** Starts one service, or returns null when the config disables it. */
export type ServiceFactory = (ctx: DaemonContext) => Promise<Service | null>;

/** `host:port` nodes reach the HTTP service at: the running service's, else config.master and http.port. */
export function httpNodeAddress(services: ReadonlyMap<string, Service>, config: Config): string {
  const http = services.get('http') as (Service & { nodeAddress?: string }) | undefined;
  return http?.nodeAddress ?? `${config.master}:${config.http.port}`;
}

/** The context's Booter, or one made from its parts (a service started on its own). */
export function booterOf(ctx: DaemonContext): Booter {
  if (ctx.booter) return ctx.booter;
  const config = ctx.current ?? (() => ctx.config);
  return new Booter({ registry: ctx.registry, config, timeline: ctx.timeline, log: ctx.log, httpBase: () => `http://${httpNodeAddress(ctx.services, config())}` });
}
