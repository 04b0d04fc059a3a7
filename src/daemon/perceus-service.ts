/**
 * The Perceus compatibility service (config `perceus`, off by default): nodes running the Perceus C
 * client get their scripts over the old TCP protocol, through the same NodeRequests as HTTP.
 */
import type { Config } from '../config/schema.js';
import { PerceusServer } from '../servers/perceus/perceus-server.js';
import type { ServiceFactory, Service } from './service.js';

export const startPerceus: ServiceFactory = async (ctx): Promise<Service | null> => {
  if (!ctx.config.perceus.enabled) return null;
  if (!ctx.nodes) throw new TypeError('perceus service: the daemon context carries no node requests');
  const nodes = ctx.nodes;
  const log = ctx.log.child({ server: 'perceus' });
  const make = (config: Config) =>
    new PerceusServer({
      options: { listen: config.perceus.listen, port: config.perceus.port },
      logger: log,
      handlers: {
        script: ({ state, nodeid, addr, signal }) => nodes.nodescript({ state, nodeid, addr, signal, via: 'perceus' }),
        outcome: ctx.metrics ? (outcome) => ctx.metrics!.perceusRequests.inc({ outcome }) : undefined,
        log: ({ msg, addr }) => {
          log.info({ addr, line: msg }, 'perceus client log');
          void ctx.registry.getNodeByAddress(addr).then((node) => {
            if (node) ctx.timeline({ nodeid: node.nodeid, source: 'perceus', stage: 'log', msg, ok: true, addr });
          }, () => {});
        },
      },
    });
  let server = make(ctx.config);
  let bound = ctx.config;
  await server.listen();
  return {
    name: 'perceus',
    get address() {
      return `perceus ${server.address}`;
    },
    async reload(config: Config) {
      if (config.perceus.listen === bound.perceus.listen && config.perceus.port === bound.perceus.port) return;
      const fresh = make(config);
      await fresh.listen(); // on failure the old socket keeps serving and `bound` still describes it
      bound = config;
      const previous = server;
      server = fresh;
      void previous.close();
    },
    close: () => server.close(),
  };
};
