/**
 * The composition root: config -> logger -> registry -> nodescript engine -> boot policy (Booter)
 * -> services (services.ts), then live reload (config file watch and SIGHUP) and an orderly stop on
 * SIGTERM/SIGINT.
 */
import { hostname } from 'node:os';
import { basename, isAbsolute } from 'node:path';
import { Booter } from '../boot/booter.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../log/logger.js';
import { createNodescriptEngine, engineOptionsFromConfig } from '../nodescript/index.js';
import type { NodescriptEngine } from '../nodescript/types.js';
import { openRegistry } from '../registry/open.js';
import type { ClusterMembership, RegistryStore } from '../registry/types.js';
import { PROVISIOND_VERSION } from '../util/version.js';
import { errorMessage } from '../util/errors.js';
import { forgetImageChecks } from '../vnfs/index.js';
import type { HttpService } from './http-service.js';
import type { TftpService } from './tftp.js';
import { NodeRequests } from './node-requests.js';
import { httpNodeAddress, type DaemonContext, type Service } from './service.js';
import { serviceFactories } from './services.js';
import { createTimelineRecorder, type TimelineRecorder } from './timeline.js';
import { EventHub } from '../api/events.js';
import { EventFeed } from './events.js';
import { startWatchers } from './watch.js';
import { TaskRunner } from '../tasks/index.js';
import { NodeActionBoard } from '../tasks/node-actions.js';
import { DaemonMetrics } from './metrics/metrics.js';
import { cachedNodeCounts } from './metrics/nodes.js';
import type { DhcpService } from './dhcp.js';
import { ImageSync } from './image-sync.js';

export interface DaemonOptions {
  config: Config;
  /** A logger to use (tests); otherwise one is made from the config and the two options below. */
  log?: Logger;
  logFormat?: 'auto' | 'pretty' | 'json';
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Watch the config file, nodescripts and vnfs trees (default true). */
  watch?: boolean;
}

/** A running daemon: its services, and reload/close. */
export class Daemon {
  readonly services = new Map<string, Service>();
  #config: Config;
  #engine: NodescriptEngine;
  #stopWatching: (() => Promise<void>) | null = null;
  #closing: Promise<void> | null = null;
  /** The live event stream's hub (the API's /events) and what feeds it. */
  readonly events = new EventHub();
  readonly feed: EventFeed;
  /** Records one step of a node's boot timeline (and tells the event stream). */
  readonly timeline: TimelineRecorder;
  readonly startedAt = Date.now();
  /** Runs the admin API's tasks; takes over those of a runner process that is gone. */
  readonly tasks: TaskRunner;
  /** Actions offered to nodes' ready agents (captures): the tasks offer, the HTTP service hands them out. */
  readonly actions = new NodeActionBoard();
  /** The Prometheus metrics every service feeds (GET /metrics of the admin API). */
  readonly metrics: DaemonMetrics;
  #sweep: NodeJS.Timeout | null = null;
  /** The node requests of each service's context (their node identity counts feed the metrics). */
  readonly #nodeRequests: NodeRequests[] = [];
  /** VNFS images across the servers of the database (started once the HTTP port is bound). */
  #images: ImageSync | null = null;

  private constructor(
    config: Config,
    readonly log: Logger,
    readonly registry: RegistryStore,
    engine: NodescriptEngine,
    metrics: DaemonMetrics,
    member?: ClusterMembership,
  ) {
    this.#config = config;
    this.#engine = engine;
    this.metrics = metrics;
    this.feed = new EventFeed(this.events, registry);
    this.timeline = createTimelineRecorder(registry, log.child({ component: 'timeline' }), (e) => {
      this.feed.timeline(e);
      metrics.boot.event(e);
    });
    const nodeCounts = cachedNodeCounts(registry, () => this.#config);
    metrics.setSources({
      pools: () => (this.services.get('dhcp') as DhcpService | undefined)?.server.poolUsage() ?? [],
      nodescripts: () => ({ running: this.#engine.running, waiting: this.#engine.waiting ?? 0 }),
      transfers: () => (this.services.get('http') as HttpService | undefined)?.server.transfers ?? null,
      tftp: () => (this.services.get('tftp') as TftpService | undefined)?.server.load ?? null,
      nodes: nodeCounts,
      nodeCredentials: () => {
        const sum = { issued: 0, revoked: 0, accepted: 0, refused: 0, limited: 0, sourceRefused: 0, dropped: 0 };
        for (const r of this.#nodeRequests) for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += r.identity.counters[k];
        return sum;
      },
    });
    // Servers sharing a database share the task queue: any of them claims a task, and takes over
    // those of a server whose heartbeat stopped.
    const shared = member ? { runnerId: member.id, shared: { leaseMs: member.leaseMs } } : {};
    const imageBuilt = (vnfs: string): Promise<string> => (this.#images ? this.#images.publishLocal(vnfs) : Promise.resolve('not published: the daemon is starting'));
    this.tasks = new TaskRunner({ registry, config: () => this.#config, log: log.child({ component: 'tasks' }), timeline: this.timeline, actions: this.actions, imageBuilt, ...shared });
    this.tasks.on('change', (t) => this.feed.task(t));
  }

  get config(): Config {
    return this.#config;
  }

  /** The HTTP service, when running. */
  get http(): HttpService | undefined {
    return this.services.get('http') as HttpService | undefined;
  }

  static async start({ config, log: given, logFormat, logLevel, watch = true }: DaemonOptions): Promise<Daemon> {
    const log = given ?? createLogger({ level: logLevel ?? config.log.level, format: logFormat ?? config.log.format });
    log.info({ config: config.source, statedir: config.statedir }, 'configuration loaded');
    const metrics = new DaemonMetrics();
    const registry = await openRegistry(config, log, { onBatch: (b) => metrics.registryBatch(b), cache: true, leaseJournal: true });
    // Several servers on one database: this one heartbeats and may lead the singleton work.
    let member: ClusterMembership | undefined;
    try {
      member = await registry.joinCluster?.({ id: `${hostname()}:${process.pid}`, address: `${config.master ?? hostname()}:${config.http.port}`, version: PROVISIOND_VERSION });
    } catch (err) {
      await registry.close();
      throw err;
    }
    const engine = createNodescriptEngine({ ...engineOptionsFromConfig(config), logger: log });
    const daemon = new Daemon(config, log, registry, engine, metrics, member);
    try {
      for (const { name, start } of serviceFactories) await daemon.#startService(name, start);
    } catch (err) {
      await daemon.close();
      throw err;
    }
    // Where the other servers reach this one (the bound HTTP port), then its images in step with theirs.
    const self = (): string => httpNodeAddress(daemon.services, daemon.#config);
    // One server alone (SQLite) has nobody to tell or fetch from: its images are what it builds.
    if (member) {
      try {
        if (daemon.http) await member.setAddress?.(self());
        const images = new ImageSync({
          registry,
          statedir: config.statedir,
          self,
          log: log.child({ component: 'vnfs-images' }),
          observe: {
            published: () => metrics.vnfsPublishes.inc(),
            fetched: (bytes) => {
              metrics.vnfsFetches.inc({ result: 'fetched' });
              metrics.vnfsFetchedBytes.inc(bytes);
            },
            failed: () => metrics.vnfsFetches.inc({ result: 'failed' }),
          },
          installed: (dir) => {
            daemon.http?.server.checksums.invalidate(dir);
            forgetImageChecks();
          },
        });
        await images.start();
        daemon.#images = images;
      } catch (err) {
        await daemon.close();
        throw err;
      }
    }
    // Tasks left by a daemon that stopped, or by a CLI that did not wait (reload without --wait), go on here.
    await daemon.tasks.resume().catch((err: unknown) => log.error({ err: errorMessage(err) }, `tasks: resume failed: ${errorMessage(err)}`));
    // Every few seconds: a capture the CLI stores (it cannot run one) starts without a long wait.
    // Several servers: every second, each claims what is queued or held by a server that stopped
    // (claims are atomic, so any server may do it; a stopped one is taken over within its lease plus a second).
    daemon.#sweep = setInterval(() => void daemon.tasks.resume().catch(() => {}), member ? 1_000 : 3_000).unref();
    if (daemon.services.size === 0) log.warn({}, 'every server is disabled in the config: nothing is being served');
    if (watch) {
      daemon.#stopWatching = await startWatchers({
        configFile: isAbsolute(config.source) ? config.source : null,
        statedir: config.statedir,
        log,
        onConfigChange: () => void daemon.reload('config file changed'),
        onVnfsChange: (dir) => {
          daemon.http?.server.checksums.invalidate(dir);
          forgetImageChecks();
          daemon.#vnfsChanged(basename(dir));
        },
      });
    }
    return daemon;
  }

  #vnfsTimers = new Map<string, NodeJS.Timeout>();

  /** A capsule changed on disk (a build by the CLI, an import): published once the writes settle. */
  #vnfsChanged(vnfs: string): void {
    clearTimeout(this.#vnfsTimers.get(vnfs));
    const timer = setTimeout(() => {
      this.#vnfsTimers.delete(vnfs);
      void this.#images?.reconcile(vnfs).catch((err: unknown) => this.log.warn({ vnfs, err: errorMessage(err) }, `vnfs ${vnfs}: ${errorMessage(err)}`));
    }, 300);
    timer.unref();
    this.#vnfsTimers.set(vnfs, timer);
  }

  #context(): DaemonContext {
    const booter = new Booter({
      registry: this.registry,
      config: () => this.#config,
      timeline: this.timeline,
      log: this.log,
      httpBase: () => `http://${httpNodeAddress(this.services, this.#config)}`,
    });
    const nodes = new NodeRequests({
      registry: this.registry,
      booter,
      engine: this.#engineProxy(),
      timeline: this.timeline,
      log: this.log,
      config: () => this.#config,
      httpAddress: () => httpNodeAddress(this.services, this.#config),
      onContact: (c) => {
        this.feed.contact(c);
        this.metrics.boot.contact(c.node.nodeid, c.state);
      },
      onScript: (r) => this.metrics.nodescript(r),
    });
    this.#nodeRequests.push(nodes);
    return {
      config: this.#config,
      log: this.log,
      registry: this.registry,
      timeline: this.timeline,
      services: this.services,
      current: () => this.#config,
      nodescripts: this.#engine,
      booter,
      nodes,
      events: this.events,
      tasks: this.tasks,
      actions: this.actions,
      startedAt: this.startedAt,
      metrics: this.metrics,
      images: () => this.#images,
    };
  }

  /** The engine in force, even after a reload replaced it. */
  #engineProxy(): NodescriptEngine {
    const self = () => this.#engine;
    return {
      render: (...a) => self().render(...a),
      plan: (...a) => self().plan(...a),
      get running() {
        return self().running;
      },
      get renders() {
        return self().renders;
      },
      get waiting() {
        return self().waiting;
      },
      close: (opts) => self().close(opts),
    };
  }

  async #startService(name: string, start: (ctx: DaemonContext) => Promise<Service | null>): Promise<void> {
    const service = await start(this.#context());
    if (!service) {
      this.log.info({ service: name }, `${name}: disabled`);
      return;
    }
    this.services.set(name, service);
    this.log.info({ service: name, address: service.address }, `listening: ${service.address}`);
  }

  /**
   * Re-reads the config file and applies it. An invalid file is refused with the reason and the
   * running config stays in force. Returns the error message when refused.
   */
  async reload(why = 'reload requested'): Promise<string | null> {
    if (this.#closing) return 'the daemon is stopping';
    let next: Config;
    try {
      next = loadConfig(this.#config.source);
    } catch (err) {
      this.log.error({ why, err: errorMessage(err) }, `config refused, the running one stays in force: ${errorMessage(err)}`);
      return errorMessage(err);
    }
    return this.apply(next, why);
  }

  /** Applies a validated config: services rebind, start or stop as it asks. */
  async apply(next: Config, why = 'new config'): Promise<string | null> {
    const prev = this.#config;
    if (next.statedir !== prev.statedir || next.database !== prev.database || next.databasePasswordFile !== prev.databasePasswordFile) {
      const msg = 'statedir, database and databasePasswordFile cannot change while running: restart the daemon to apply';
      this.log.error({ why }, `config refused, the running one stays in force: ${msg}`);
      return msg;
    }
    this.#config = next;
    if (JSON.stringify(next.nodescripts) !== JSON.stringify(prev.nodescripts)) {
      const old = this.#engine;
      this.#engine = createNodescriptEngine({ ...engineOptionsFromConfig(next), logger: this.log });
      void this.#retire(old);
    }
    for (const { name, start } of serviceFactories) {
      const running = this.services.get(name);
      const section = (next as unknown as Record<string, { enabled?: boolean } | undefined>)[name];
      const enabled = section?.enabled !== false;
      try {
        if (running && !enabled) {
          this.services.delete(name);
          await running.close();
          this.log.info({ service: name }, `${name}: stopped (disabled in the config)`);
        } else if (running && running.reload) {
          await running.reload(next);
        } else if (running) {
          this.services.delete(name);
          await running.close();
          await this.#startService(name, start);
        } else if (enabled) {
          await this.#startService(name, start);
        }
      } catch (err) {
        this.log.error({ service: name, err: errorMessage(err) }, `${name}: could not apply the new config: ${errorMessage(err)}`);
      }
    }
    this.log.info({ why, config: next.source }, 'configuration reloaded');
    return null;
  }

  /** Closes an engine replaced by a reload once the renders it started have finished (at most 10 minutes). */
  async #retire(engine: NodescriptEngine): Promise<void> {
    await engine.close({ graceMs: 600_000 }).catch(() => {});
  }

  /** Stops accepting, lets work in flight finish (bounded), closes the database cleanly. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#stopWatching?.().catch(() => {});
      for (const timer of this.#vnfsTimers.values()) clearTimeout(timer);
      await this.#images?.close().catch(() => {});
      const order = [...this.services.entries()].reverse();
      await Promise.all(
        order.map(async ([name, s]) => {
          try {
            await s.close();
          } catch (err) {
            this.log.warn({ service: name, err: errorMessage(err) }, `${name}: close failed`);
          }
        }),
      );
      this.services.clear();
      if (this.#sweep) clearInterval(this.#sweep);
      await this.tasks.close().catch(() => {});
      // Nodescripts still running after the servers' grace period are cut.
      await this.#engine.close({ graceMs: 5_000 }).catch(() => {});
      await this.registry.flush().catch(() => {});
      await this.registry.close();
      this.log.info({}, 'stopped');
    })();
    return this.#closing;
  }
}

/** `provisiond serve`: runs until SIGTERM/SIGINT; SIGHUP reloads the config. */
export async function runDaemon(options: DaemonOptions): Promise<void> {
  // Signals are handled from the first moment: one that arrives while the servers start is acted on once they have.
  let daemon: Daemon | null = null;
  let hupPending = false;
  let stopSignal: NodeJS.Signals | null = null;
  let stopped: () => void = () => {};
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const stop = (d: Daemon, signal: NodeJS.Signals) => {
    d.log.info({ signal }, 'stopping: no new requests, transfers in flight may finish');
    void d.close().finally(stopped);
  };
  const onHup = () => {
    if (daemon) void daemon.reload('SIGHUP');
    else hupPending = true;
  };
  const onStop = (signal: NodeJS.Signals) => {
    if (stopSignal) {
      daemon?.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopSignal = signal;
    if (daemon) stop(daemon, signal);
  };
  process.on('SIGHUP', onHup);
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  try {
    daemon = await Daemon.start(options);
    if (stopSignal) stop(daemon, stopSignal);
    else if (hupPending) void daemon.reload('SIGHUP');
    await done;
  } finally {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
  }
}
