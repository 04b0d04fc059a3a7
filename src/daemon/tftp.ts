/**
 * The tftp service: wires the boot policy into the TFTP server. Files under the TFTP root are served
 * as they are; what other names mean (pxelinux.cfg files, the fixed-name iPXE script, packaged
 * loaders, a VNFS's own stage-1) is the Booter's `tftpFile`. Every transfer is logged by the server
 * and put on the node's timeline.
 */
import type { Booter } from '../boot/booter.js';
import { findSystemLoaders } from '../boot/loaders.js';
import { statePath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { TftpServer, type TransferRecord } from '../servers/tftp/server.js';
import { booterOf, type DaemonContext, type Service, type ServiceFactory } from './service.js';
import { formatBytes, formatDuration } from './timeline.js';

/** Puts a transfer on the node's timeline, when the client address (or a pxelinux.cfg name) says which node. */
export function tftpTimeline(booter: Booter, timeline: DaemonContext['timeline'], log: Logger): (r: TransferRecord) => void {
  return (r) => {
    // Size probes (UEFI) and option fallbacks are followed by the real transfer; pxelinux probes many names.
    if (r.outcome === 'probe' || r.outcome === 'options-refused') return;
    if (r.outcome === 'not-found' && r.file.startsWith('pxelinux.cfg/')) return;
    void (async () => {
      const nodeid = await booter.nodeidOfTransfer(r.file, r.client.address);
      if (!nodeid) return;
      const ok = r.outcome === 'ok';
      const msg = ok
        ? `sent ${formatBytes(r.bytes ?? 0)} in ${formatDuration(r.durationMs ?? 0)} (blksize ${r.blksize}${r.windowsize && r.windowsize > 1 ? `, windowsize ${r.windowsize}` : ''}${r.retransmits ? `, ${r.retransmits} blocks resent` : ''})`
        : `${r.outcome}: ${r.reason ?? ''}`;
      timeline({ nodeid, source: 'tftp', stage: `tftp ${r.file}`, msg, ok, addr: r.client.address });
    })().catch((err: unknown) => log.warn({ file: r.file, err: String(err) }, 'tftp: timeline lookup failed'));
  };
}

/** The timeline's callback, and the metrics' first when the daemon has them. */
function withMetrics(ctx: DaemonContext, timeline: (r: TransferRecord) => void): (r: TransferRecord) => void {
  const metrics = ctx.metrics;
  if (!metrics) return timeline;
  return (r) => {
    metrics.tftpEnd(r);
    timeline(r);
  };
}

function serverFor(config: Config, booter: Booter, ctx: DaemonContext, log: Logger): TftpServer {
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
    generate: (path) => booter.tftpFile(path),
    onStart: ctx.metrics ? () => ctx.metrics!.tftpStart() : undefined,
    onDrop: ctx.metrics ? (reason) => ctx.metrics!.tftpIgnored.inc({ reason }) : undefined,
    onWaited: ctx.metrics ? (seconds) => ctx.metrics!.admissionWaited('tftp', seconds) : undefined,
    onTransfer: withMetrics(ctx, tftpTimeline(booter, ctx.timeline, log)),
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
  const booter = booterOf(ctx);
  let server = serverFor(config, booter, ctx, log);
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
      server = serverFor(next, booter, ctx, log);
      bound = await server.listen();
      log.info({ address: service.address }, 'tftp: rebound after a config change');
    },
    close: () => server.close(),
  };
  return service;
};
