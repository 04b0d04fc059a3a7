/**
 * What the API's handlers get from the daemon: the registry, the config in force, the nodescript
 * engine, the task runner and the event hub. The daemon builds it (src/daemon/api-service.ts); the
 * API never reaches into the daemon any other way.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { NodescriptEngine } from '../nodescript/types.js';
import type { RegistryStore, TaskRecord, TaskStatus } from '../registry/types.js';
import type { Pacer } from '../util/pacer.js';
import type { EventHub } from './events.js';
import type { SessionStore } from './sessions.js';
import type { ConsoleHub } from './console-hub.js';

/** The task runner as the API uses it (src/tasks/ implements it). */
export interface TaskService {
  submit(req: { action: string; params: Record<string, unknown>; createdBy: string; idempotencyKey?: string | null }): Promise<{ task: TaskRecord; created: boolean }>;
  get(id: string): Promise<TaskRecord | null>;
  list(o?: { status?: TaskStatus[]; unfinished?: boolean; before?: string; limit?: number }): Promise<TaskRecord[]>;
  cancel(id: string, by: string): Promise<TaskRecord>;
}

export interface ApiContext {
  registry: RegistryStore;
  /** The config in force now (follows reloads). */
  config(): Config;
  log: Logger;
  nodescripts: NodescriptEngine;
  /** Null when the daemon runs without one (tests of the API alone). */
  tasks: TaskService | null;
  events: EventHub;
  /** Long work (pages of nodes, imports) calls `pacer.pace()` between items so DHCP keeps its turns. */
  pacer: Pacer;
  /** The web UI's login sessions (kept across API reloads). */
  sessions: SessionStore;
  /** The shared serial consoles of the web UI (one session per node, kept across API reloads). */
  consoles: ConsoleHub;
  /** When the daemon started (ms), for /healthz. */
  startedAt: number;
  /** The daemon's services and where they listen, for /healthz. */
  services(): Array<{ name: string; address: string }>;
  /** The Prometheus scrape text and its content type; absent: GET /metrics answers 404. */
  metrics?(): Promise<{ contentType: string; text: string }>;
}
