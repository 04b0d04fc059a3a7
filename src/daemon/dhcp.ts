/**
 * The dhcp service: adapts the registry (nodes, auto-registration, leases, timeline) and the boot
 * policy into the DHCP server's callbacks. A node added with `node add` is answered by the next
 * packet: nothing is generated, nothing restarted.
 */
import { decideDhcp } from '../boot/dhcp-policy.js';
import type { Config } from '../config/schema.js';
import { NamePatternExhaustedError, type RegistryStore, type ResolvedNode } from '../registry/types.js';
import type { PoolOptions } from '../servers/dhcp/pool.js';
import { DhcpServer } from '../servers/dhcp/server.js';
import type { DhcpClientInfo, DhcpDecision, DhcpHandler } from '../servers/dhcp/types.js';
import type { Logger } from '../log/logger.js';
import type { DaemonContext, Service, ServiceFactory } from './service.js';

/** The pools of a config: dhcp.range on dhcp.interface first, then dhcp.subnets. */
export function dhcpPools(config: Config): PoolOptions[] {
  const d = config.dhcp;
  const mask = d.netmask.split('.').map(Number);
  const prefix = mask.reduce((n, o) => n + o.toString(2).replaceAll('0', '').length, 0);
  const network = d.range[0].split('.').map((o, i) => Number(o) & mask[i]!).join('.');
  const main: PoolOptions = { network: `${network}/${prefix}`, range: d.range, router: d.router, dns: d.dns, domain: d.domain, interface: d.interface };
  return [main, ...d.subnets.map((s) => ({ network: s.network, range: s.range, router: s.router, dns: s.dns, domain: d.domain, interface: s.interface }))];
}

/** The decision callback: look the machine up (registering it if configured), then the policy. */
export function dhcpHandler(config: Config, registry: RegistryStore, log: Logger, timeline: DaemonContext['timeline']): DhcpHandler {
  const defaults = config.defaults;
  async function lookup(client: DhcpClientInfo): Promise<ResolvedNode | null> {
    let node = await registry.getNodeByNodeid(client.hwaddr);
    if (!node && defaults.autoRegister && client.messageType === 'discover') {
      try {
        const r = await registry.autoRegister(client.hwaddr, defaults);
        node = r.node;
        if (r.created) log.info({ nodeid: client.hwaddr, node: node.name }, 'registered new node on its first dhcp discover');
      } catch (err) {
        if (!(err instanceof NamePatternExhaustedError)) throw err;
        log.warn({ nodeid: client.hwaddr }, err.message);
      }
    }
    if (!node) {
      // One sighting per boot attempt (its DISCOVER), not one per packet of the exchange.
      if (client.messageType === 'discover') await registry.recordUnknown(client.hwaddr, client.relay, 'dhcp');
      return null;
    }
    return registry.resolve(node, defaults);
  }
  return {
    async decide(client): Promise<DhcpDecision> {
      const node = await lookup(client);
      const d = decideDhcp(client, node, config);
      if (!d.answer) log.debug({ nodeid: client.hwaddr, reason: d.reason }, 'dhcp: not answering');
      return d;
    },
    async addressReserved(address, hwaddr) {
      const node = await registry.getNodeByAddress(address);
      return node !== null && node.ipaddr === address && node.nodeid !== hwaddr;
    },
    event(e) {
      if (e.hwaddr.startsWith('FF:FF:')) return;
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
    handler: dhcpHandler(config, registry, log, ctx.timeline),
    leases: registry,
    logger: log,
  });
  await server.listen();
  return {
    name: 'dhcp',
    server,
    address: `dhcp ${config.dhcp.mode} ${config.dhcp.listen}:67${config.dhcp.interface ? ` on ${config.dhcp.interface}` : ''}`,
    close: () => server.close(),
  };
};
