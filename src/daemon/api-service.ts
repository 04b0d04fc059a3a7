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
import type { Service, ServiceFactory } from './service.js';

function readTls(config: Config): { cert: Buffer; key: Buffer } | null {
  const tls = config.api.tls;
  if (!tls) return null;
  const read = (key: 'cert' | 'key') => {
    const file = statePath(config, tls[key]);
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(config.source, `api.tls.${key}`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  };
  return { cert: read('cert'), key: read('key') };
}

export const startApi: ServiceFactory = async (ctx): Promise<Service | null> => {
  if (!ctx.config.api.enabled) return null;
  if (!ctx.nodescripts) throw new TypeError('api service: the daemon context carries no nodescript engine');
  const log = ctx.log.child({ server: 'api' });
  const current = ctx.current ?? (() => ctx.config);
  const api: ApiContext = {
    registry: ctx.registry,
    config: current,
    log,
    nodescripts: ctx.nodescripts,
    tasks: ctx.tasks ?? null,
    events: ctx.events ?? new EventHub(),
    sessions: new SessionStore(),
    consoles: new ConsoleHub(log.child({ part: 'console' }), { graceMs: () => current().api.consoleGrace * 1000 }),
    startedAt: ctx.startedAt ?? Date.now(),
    services: () => [...ctx.services.values()].map((s) => ({ name: s.name, address: s.address })),
  };
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
