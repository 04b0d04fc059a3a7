/**
 * The dhcp service: wires the boot policy (src/boot/booter.ts: who the machine is, whether and what
 * it is answered) and the registry's lease store into the DHCP server. A node added with `node add`
 * is answered by the next packet: nothing is generated, nothing restarted.
 */
import type { Booter } from '../boot/booter.js';
import type { Config } from '../config/schema.js';
import type { PoolOptions } from '../servers/dhcp/pool.js';
import { DhcpServer } from '../servers/dhcp/server.js';
import type { DhcpDecision, DhcpHandler } from '../servers/dhcp/types.js';
import { booterOf, type DaemonContext, type Service, type ServiceFactory } from './service.js';

/** The pools of a config: dhcp.range on dhcp.interface first, then dhcp.subnets. */
export function dhcpPools(config: Config): PoolOptions[] {
  const d = config.dhcp;
  const mask = d.netmask.split('.').map(Number);
  const prefix = mask.reduce((n, o) => n + o.toString(2).replaceAll('0', '').length, 0);
  const network = d.range[0].split('.').map((o, i) => Number(o) & mask[i]!).join('.');
  const main: PoolOptions = { network: `${network}/${prefix}`, range: d.range, router: d.router, dns: d.dns, domain: d.domain, interface: d.interface };
  return [main, ...d.subnets.map((s) => ({ network: s.network, range: s.range, router: s.router, dns: s.dns, domain: d.domain, interface: s.interface }))];
}

/** `dhcp.allocator`, `auto` resolved: random when servers may share the database (PostgreSQL). */
export function dhcpAllocator(config: Config): 'iterative' | 'random' {
  const a = config.dhcp.allocator;
  if (a !== 'auto') return a;
  return config.database.startsWith('sqlite:') ? 'iterative' : 'random';
}

/** The server's callbacks: decisions are the Booter's, steps go on the node's timeline. */
export function dhcpHandler(booter: Booter, timeline: DaemonContext['timeline']): DhcpHandler {
  return {
    // The server logs a request it does not answer, with the reason (engine.ts, ignore).
    decide: (client): Promise<DhcpDecision> => booter.dhcp(client),
    addressReserved: (address, hwaddr) => booter.addressReserved(address, hwaddr),
    event(e) {
      timeline({ nodeid: e.hwaddr, source: 'dhcp', stage: e.stage, msg: e.msg, ok: e.ok, addr: e.address });
    },
  };
}

/** The started service; `server` exposes counters and the lease count. */
export interface DhcpService extends Service {
  readonly server: DhcpServer;
}

export const startDhcp: ServiceFactory = async (ctx): Promise<DhcpService | null> => {
  const { config, registry } = ctx;
  if (!config.dhcp.enabled) return null;
  const log = ctx.log.child({ server: 'dhcp' });
  const server = new DhcpServer({
    mode: config.dhcp.mode,
    interface: config.dhcp.interface,
    listen: config.dhcp.listen,
    serverAddress: config.master,
    pools: dhcpPools(config),
    leaseTime: config.dhcp.leaseTime,
    pingCheck: config.dhcp.pingCheck,
    allocator: dhcpAllocator(config),
    handler: dhcpHandler(booterOf(ctx), ctx.timeline),
    observer: ctx.metrics?.dhcp,
    leases: registry,
    logger: log,
  });
  await server.listen();
  ctx.metrics?.knownPools(dhcpPools(config).map((p) => p.network));
  return {
    name: 'dhcp',
    server,
    address: `dhcp ${config.dhcp.mode} ${config.dhcp.listen}:67${config.dhcp.interface ? ` on ${config.dhcp.interface}` : ''}`,
    close: () => server.close(),
  };
};
