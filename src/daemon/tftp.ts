/**
 * The tftp service: adapts the registry and the boot policy into the TFTP server's callbacks.
 * Files under the TFTP root are served as they are; for other names `generate` renders, at request
 * time, `pxelinux.cfg/01-<mac>` and `pxelinux.cfg/default` from the registry, the fixed-name iPXE
 * script (`tftp.ipxeScript`, chaining to HTTP), and points at packaged loaders (iPXE, pxelinux) and
 * a VNFS's own stage-1 files. Every transfer is logged by the server and put on the node's timeline.
 */
import { findSystemLoaders } from '../boot/loaders.js';
import { ipxeChainScript } from '../boot/ipxe-script.js';
import { pxelinuxConfigMac, pxelinuxDefaultConfig, pxelinuxNodeConfig } from '../boot/pxelinux.js';
import { bootFilePath, stage1For } from '../boot/stage1.js';
import { statePath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { RegistryStore } from '../registry/types.js';
import { TftpServer, type GenerateHandler, type TransferRecord } from '../servers/tftp/server.js';
import type { DaemonContext, Service, ServiceFactory } from './service.js';
import { formatBytes, formatDuration } from './timeline.js';

/** `http://MASTER:PORT`: the HTTP service's address for nodes when it runs, else config.master and http.port. */
function httpBase(ctx: Pick<DaemonContext, 'services'>, config: Config): string {
  const http = ctx.services.get('http') as (Service & { nodeAddress?: string }) | undefined;
  return `http://${http?.nodeAddress ?? `${config.master}:${config.http.port}`}`;
}

/** The generate callback: what a name not found under the TFTP root means. */
export function tftpGenerator(current: () => Config, registry: RegistryStore, base: () => string): GenerateHandler {
  return async (path) => {
    const config = current();
    if (path === config.tftp.ipxeScript) return Buffer.from(ipxeChainScript(base()));
    if (path === 'pxelinux.cfg/default') return Buffer.from(pxelinuxDefaultConfig());
    const mac = pxelinuxConfigMac(path);
    if (mac) {
      const record = await registry.getNodeByNodeid(mac);
      if (!record) return null; // pxelinux goes on to its next name, and ends at `default`
      const node = await registry.resolve(record, config.defaults);
      const stage1 = await stage1For(config.statedir, node.vnfs);
      return Buffer.from(pxelinuxNodeConfig(node, { base: base(), stage1 }));
    }
    if (path.startsWith('pxelinux.cfg/')) return null;
    const file = await bootFilePath(config.statedir, statePath(config, config.tftp.root), path.split('/'));
    return file ? { path: file } : null;
  };
}

/** Puts a transfer on the node's timeline, when the client address (or a pxelinux.cfg name) says which node. */
export function tftpTimeline(registry: RegistryStore, timeline: DaemonContext['timeline'], log: Logger): (r: TransferRecord) => void {
  return (r) => {
    // Size probes (UEFI) and option fallbacks are followed by the real transfer; pxelinux probes many names.
    if (r.outcome === 'probe' || r.outcome === 'options-refused') return;
    if (r.outcome === 'not-found' && r.file.startsWith('pxelinux.cfg/')) return;
    void (async () => {
      const nodeid = pxelinuxConfigMac(r.file) ?? (await registry.getNodeByAddress(r.client.address))?.nodeid;
      if (!nodeid) return;
      const ok = r.outcome === 'ok';
      const msg = ok
        ? `sent ${formatBytes(r.bytes ?? 0)} in ${formatDuration(r.durationMs ?? 0)} (blksize ${r.blksize}${r.windowsize && r.windowsize > 1 ? `, windowsize ${r.windowsize}` : ''}${r.retransmits ? `, ${r.retransmits} blocks resent` : ''})`
        : `${r.outcome}: ${r.reason ?? ''}`;
      timeline({ nodeid, source: 'tftp', stage: `tftp ${r.file}`, msg, ok, addr: r.client.address });
    })().catch((err: unknown) => log.warn({ file: r.file, err: String(err) }, 'tftp: timeline lookup failed'));
  };
}

function serverFor(config: Config, ctx: DaemonContext, log: Logger, current: () => Config): TftpServer {
  const t = config.tftp;
  return new TftpServer({
    listen: t.listen,
    port: t.port,
    root: statePath(config, t.root),
    maxBlksize: t.maxBlksize,
    timeout: t.timeout,
    retries: t.retries,
    // `tftp.engine: js` keeps every transfer in Node (diagnosis, benchmarks); by default big files go native.
    nativeMinBytes: t.engine === 'js' ? null : undefined,
    pumpSpinUs: t.pumpSpinUs,
    generate: tftpGenerator(current, ctx.registry, () => httpBase(ctx, current())),
    onTransfer: tftpTimeline(ctx.registry, ctx.timeline, log),
    logger: log,
  });
}

/** What rebinding needs: a change of anything else is picked up by the next request. */
function bindKey(c: Config): string {
  const t = c.tftp;
  return JSON.stringify([t.listen, t.port, t.root, t.maxBlksize, t.timeout, t.retries, t.engine, t.pumpSpinUs, c.statedir]);
}

/** The started service; `server` exposes its counters. */
export interface TftpService extends Service {
  readonly server: TftpServer;
}

export const startTftp: ServiceFactory = async (ctx): Promise<TftpService | null> => {
  if (!ctx.config.tftp.enabled) return null;
  const log = ctx.log.child({ server: 'tftp' });
  let config = ctx.config;
  const current = () => config;
  let server = serverFor(config, ctx, log, current);
  let bound = await server.listen();
  const loaders = await findSystemLoaders();
  if (!loaders.has('undionly.kpxe') && !loaders.has('ipxe.efi') && !loaders.has('snponly.efi')) {
    log.warn({ root: statePath(config, config.tftp.root) }, 'no packaged iPXE found (install the Debian package ipxe) and none will be served unless placed in the tftp root');
  } else {
    log.info({ loaders: Object.fromEntries(loaders) }, 'tftp: packaged boot loaders served');
  }
  const service: TftpService = {
    name: 'tftp',
    get address() {
      return `tftp ${bound.address}:${bound.port}`;
    },
    get server() {
      return server;
    },
    async reload(next) {
      const rebind = bindKey(next) !== bindKey(config);
      config = next;
      if (!next.tftp.enabled) {
        await server.close();
        return;
      }
      if (!rebind) return;
      await server.close();
      server = serverFor(next, ctx, log, current);
      bound = await server.listen();
      log.info({ address: service.address }, 'tftp: rebound after a config change');
    },
    close: () => server.close(),
  };
  return service;
};
