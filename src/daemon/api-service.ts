/**
 * The admin API service (config `api`): the API's express application on its own listener, never
 * the node-facing HTTP port, with the daemon's registry, engine, task runner and event hub.
 */
import { readFileSync } from 'node:fs';
import { createApi, EventHub, type ApiContext } from '../api/index.js';
import { ApiServer } from '../api/server.js';
import { SessionStore } from '../api/sessions.js';
import { ConsoleHub } from '../api/console-hub.js';
import { consoleUpgrade } from '../api/console-ws.js';
import { statePath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../util/errors.js';
import { Pacer } from '../util/pacer.js';
import type { Logger } from '../log/logger.js';
import type { DaemonContext, Service, ServiceFactory } from './service.js';

/** The certificate and key of config `api.tls` (or `metrics.tls`), read; null when not set. */
export function readTls(config: Config, section: 'api' | 'metrics' = 'api'): { cert: Buffer; key: Buffer } | null {
  const tls = config[section].tls;
  if (!tls) return null;
  const read = (key: 'cert' | 'key') => {
    const file = statePath(config, tls[key]);
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(config.source, `${section}.tls.${key}`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  };
  return { cert: read('cert'), key: read('key') };
}

/** What the API's handlers get from the daemon. */
export function apiContext(ctx: DaemonContext, log: Logger): ApiContext {
  if (!ctx.nodescripts) throw new TypeError('api service: the daemon context carries no nodescript engine');
  const current = ctx.current ?? (() => ctx.config);
  return {
    registry: ctx.registry,
    config: current,
    log,
    nodescripts: ctx.nodescripts,
    tasks: ctx.tasks ?? null,
    events: ctx.events ?? new EventHub(),
    pacer: new Pacer(),
    sessions: new SessionStore(),
    consoles: new ConsoleHub(log.child({ part: 'console' }), { graceMs: () => current().api.consoleGrace * 1000 }),
    startedAt: ctx.startedAt ?? Date.now(),
    services: () => [...ctx.services.values()].map((s) => ({ name: s.name, address: s.address })),
    metrics: ctx.metrics ? () => ctx.metrics!.scrape() : undefined,
  };
}

export const startApi: ServiceFactory = async (ctx): Promise<Service | null> => {
  if (!ctx.config.api.enabled) return null;
  const log = ctx.log.child({ server: 'api' });
  const api = apiContext(ctx, log);
  const make = async (config: Config) => {
    const server = new ApiServer(createApi(api, { maxBody: config.api.maxBody }), { listen: config.api.listen, port: config.api.port, tls: readTls(config), upgrade: consoleUpgrade(api) }, log);
    await server.listen();
    return server;
  };
  let server = await make(ctx.config);
  let bound = ctx.config.api;
  return {
    name: 'api',
    get address() {
      return `api ${server.url}`;
    },
    get url() {
      return server.url;
    },
    async reload(config: Config) {
      if (JSON.stringify(config.api) === JSON.stringify(bound)) return;
      const fresh = await make(config); // on failure the old listener keeps serving
      bound = config.api;
      const previous = server;
      server = fresh;
      void previous.close();
    },
    close: async () => {
      await api.consoles.close();
      await server.close();
    },
  } as Service & { url: string };
};
