/**
 * The metrics listener (config `metrics`, off by default): GET /metrics alone on an address of its
 * own, for a Prometheus that should not reach the admin API. Same token check as the API's
 * (a viewer token), same TLS rule (a non-loopback address needs `metrics.tls` or `metrics.insecure`).
 */
import { createMetricsApp } from '../api/index.js';
import { ApiServer } from '../api/server.js';
import type { Config } from '../config/schema.js';
import { apiContext, readTls } from './api-service.js';
import type { Service, ServiceFactory } from './service.js';

export const startMetrics: ServiceFactory = async (ctx): Promise<Service | null> => {
  if (!ctx.config.metrics.enabled) return null;
  if (!ctx.metrics) throw new TypeError('metrics service: the daemon context carries no metrics');
  const log = ctx.log.child({ server: 'metrics' });
  const app = createMetricsApp(apiContext(ctx, log));
  const make = async (config: Config) => {
    const server = new ApiServer(app, { listen: config.metrics.listen, port: config.metrics.port, tls: readTls(config, 'metrics') }, log);
    await server.listen();
    return server;
  };
  let server = await make(ctx.config);
  let bound = ctx.config.metrics;
  return {
    name: 'metrics',
    get address() {
      return `metrics ${server.url}/metrics`;
    },
    get url() {
      return server.url;
    },
    async reload(config: Config) {
      if (JSON.stringify(config.metrics) === JSON.stringify(bound)) return;
      const fresh = await make(config); // on failure the old listener keeps serving
      bound = config.metrics;
      const previous = server;
      server = fresh;
      void previous.close();
    },
    close: () => server.close(),
  } as Service & { url: string };
};
