/**
 * The HTTP service: wires the boot policy (the Booter: iPXE scripts, boot files), the nodescript
 * requests and the VNFS images into the callbacks of the node-facing HttpServer (src/servers/http),
 * and maps config reloads onto it.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { HttpError } from '../servers/http/errors.js';
import { HttpServer } from '../servers/http/http-server.js';
import type { HttpServerOptions } from '../servers/http/types.js';
import { currentImageSha, ensureImage, IMAGE_FILE, SIDECAR_FILE, SKELETON_FILE, SKELETON_SIDECAR } from '../vnfs/index.js';
import { errorMessage } from '../util/errors.js';
import type { NodeRequests } from './node-requests.js';
import { ProtectedFiles } from './protected-files.js';
import { PeerFiles } from './peer-files.js';
import { ImageUnavailableError } from './image-sync.js';
import { booterOf, type DaemonContext, type Service, type ServiceFactory } from './service.js';
import { formatBytes, formatDuration } from './timeline.js';
import { captureScript } from '../tasks/capture-script.js';
import { NodeActionBoard, UploadRefusedError } from '../tasks/node-actions.js';
import type { NodeRecord } from '../registry/types.js';

/** The HttpServer options a config asks for. */
export function httpOptions(config: Config): HttpServerOptions {
  const prefixes = ['files'];
  const p = config.vnfs.prefix.replace(/^\/+|\/+$/g, '');
  if (p && !prefixes.includes(p)) prefixes.push(p);
  return {
    listen: config.http.listen,
    port: config.http.port,
    trees: [
      { name: 'vnfs', dir: join(config.statedir, 'vnfs') },
      { name: 'files', dir: join(config.statedir, 'files') },
      // Protected: served only to the node (group) named by the first folder, with its credential.
      { name: 'nodefiles', dir: join(config.statedir, 'nodefiles') },
      { name: 'groupfiles', dir: join(config.statedir, 'groupfiles') },
    ],
    fallbackTree: { name: 'files', dir: join(config.statedir, 'files') },
    filePrefixes: prefixes,
    maxScriptRequestsPerAddress: config.http.maxScriptRequestsPerAddress,
    requestTimeoutMs: config.http.requestTimeout * 1000,
    zeroCopy: config.http.sendfile,
    maxTransfers: config.http.maxTransfers,
  };
}

/** A started HTTP service, with what the daemon's watchers and other services need from it. */
export interface HttpService extends Service {
  readonly server: HttpServer;
  /** `host:port` nodes reach it at: the master address and the bound port. */
  readonly nodeAddress: string;
}

export async function startHttpService(ctx: DaemonContext, requests: NodeRequests, current: () => Config): Promise<HttpService | null> {
  if (!ctx.config.http.enabled) return null;
  const log = ctx.log.child({ server: 'http' });
  const booter = booterOf(ctx);
  const protectedFiles = new ProtectedFiles({ identity: requests.identity, booter, registry: ctx.registry, timeline: ctx.timeline, config: current });
  const board = ctx.actions ?? new NodeActionBoard();
  const peerFiles = new PeerFiles({ registry: ctx.registry, statedir: () => current().statedir, log });
  const nodeAddress = (): string => {
    const listen = current().http.listen;
    return `${listen === '0.0.0.0' ? current().master : listen}:${server.port}`;
  };
  /** The node of a ready agent's request, its source and credential checked. */
  const agentNode = async (nodeid: string, addr: string, credential: string | null, what: string): Promise<NodeRecord> => {
    const node = await ctx.registry.getNodeByNodeid(nodeid);
    if (!node) throw new HttpError(404, `${what} for ${nodeid} refused: not a registered node`);
    await requests.identity.verifySource(node, addr, what);
    await requests.identity.check(node, credential, addr, what);
    return node;
  };
  const server: HttpServer = new HttpServer({
    options: httpOptions(ctx.config),
    logger: log,
    handlers: {
      nodescript: (req) => requests.nodescript({ ...req, via: 'http' }),
      ipxeScript: async ({ nodeid, addr }) => {
        const known = nodeid ? await ctx.registry.getNodeByNodeid(nodeid) : null;
        if (known) await requests.identity.verifySource(known, addr, 'ipxe script');
        const a = await booter.ipxeScript(nodeid, addr);
        if (a.nodeid) {
          log.info({ nodeid: a.nodeid, node: a.node?.name, addr, decision: a.decision }, 'ipxe script');
          ctx.timeline({ nodeid: a.nodeid, source: 'http', stage: 'ipxe-script', msg: `${a.decision} (from ${addr})`, ok: a.ok, addr });
        }
        return a.script;
      },
      bootFile: async ({ segments }) => {
        const file = await booter.bootFile(segments);
        if (!file) throw new HttpError(404, `not found: boot file ${segments.join('/')}`);
        return file;
      },
      nodeEvent: async ({ nodeid, stage, msg, addr, credential }) => {
        if (requests.identity.enabled) {
          const node = await ctx.registry.getNodeByNodeid(nodeid);
          if (!node) throw new HttpError(404, `event for ${nodeid} refused: not a registered node`);
          await requests.identity.check(node, credential, addr, `event ${JSON.stringify(stage.slice(0, 40))}`);
        }
        const ok = !/^(failed|error)\b/i.test(stage) && !/^failed\b/i.test(msg ?? '');
        ctx.timeline({ nodeid, source: 'node', stage, msg, ok, addr });
        if (!ok) log.warn({ nodeid, stage, msg, addr }, 'node reports a failure');
        // 10-vnfs reports `image VNFS SHA256` once the image it will boot is checked: what a reboot would change.
        const booted = stage === 'image' ? /^([\w.+-]+) ([0-9a-f]{64})$/.exec(msg ?? '') : null;
        if (booted) await ctx.registry.recordBootImage(nodeid, booted[1]!, booted[2]!);
      },
      nodeActions: async ({ nodeid, addr, credential, waitMs, signal }) => {
        await agentNode(nodeid, addr, credential, 'actions');
        const a = await board.take(nodeid, waitMs, signal);
        if (!a) return null;
        const base = current().vnfs.master ?? nodeAddress();
        log.info({ nodeid, addr, task: a.task, action: a.kind }, 'node action taken');
        return captureScript({ url: `http://${base}/nodes/${nodeid}/upload/${a.token}`, vnfs: a.vnfs, task: a.task, exclude: a.exclude });
      },
      upload: async ({ nodeid, token, addr, credential, body, length, failed }) => {
        const node = await agentNode(nodeid, addr, credential, 'upload');
        let action;
        try {
          action = board.claim(nodeid, token);
        } catch (err) {
          if (!(err instanceof UploadRefusedError)) throw err;
          ctx.timeline({ nodeid, source: 'http', stage: 'refused', msg: `upload from ${addr}: ${err.message}`, ok: false, addr });
          throw new HttpError(err.status, `upload refused: ${err.message}`, { headers: { Connection: 'close' } });
        }
        if (failed !== null) {
          body.resume();
          action.fail(failed);
          return `the failure is noted (task ${action.task})`;
        }
        log.info({ node: node.name, addr, task: action.task, bytes: length }, 'capture upload started');
        try {
          return await action.receive(body, length);
        } catch (err) {
          log.warn({ node: node.name, addr, task: action.task, err: errorMessage(err) }, 'capture upload refused');
          throw new HttpError(422, `upload refused: ${errorMessage(err)}`, { headers: { Connection: 'close' } });
        }
      },
      beforeGetfile: async ({ tree, relative, addr, credential }) => {
        await protectedFiles.check({ tree, relative, addr, credential });
        const parts = relative.split('/');
        // The sidecar too: getfile reads it first, and a stale one (a cloned VNFS, a changed rootfs)
        // would not match the image rebuilt when the image itself is asked for.
        if (tree !== 'vnfs' || parts.length !== 2 || ![IMAGE_FILE, SIDECAR_FILE, SKELETON_FILE, SKELETON_SIDECAR].includes(parts[1]!)) return;
        const images = ctx.images?.() ?? null;
        try {
          // Never the stale image: another server published a newer one, this one waits for its fetch.
          await images?.ready(parts[0]!);
        } catch (err) {
          if (!(err instanceof ImageUnavailableError)) throw err;
          log.warn({ vnfs: parts[0], addr, err: err.message }, 'vnfs image refused: not here yet');
          throw new HttpError(503, `${err.message}; ask again later`, { headers: { 'Retry-After': '10' } });
        }
        try {
          const before = images ? await currentImageSha(current().statedir, parts[0]!) : null;
          const r = await ensureImage(current().statedir, parts[0]!, log);
          // Rebuilt here (this server's rootfs changed): the other servers are told.
          if (images && r.sha256 !== before) await images.publishLocal(parts[0]!);
        } catch (err) {
          log.warn({ vnfs: parts[0], err: errorMessage(err) }, 'vnfs image could not be brought up to date; serving the one on disk');
        }
      },
      peerFile: (req) => peerFiles.locate(req),
      transfer: (t) => {
        const name = t.file.split('/').pop();
        const waited = t.waitedMs > 0 ? `, waited ${(t.waitedMs / 1000).toFixed(1)} s for a transfer slot` : '';
        if (t.waitedMs > 0) ctx.metrics?.admissionWaited('transfer', t.waitedMs / 1000);
        log.info({ addr: t.addr, url: t.url, status: t.status, bytes: t.bytes, ms: Math.round(t.durationMs), complete: t.complete, waitedMs: t.waitedMs > 0 ? Math.round(t.waitedMs) : undefined }, 'transfer');
        void ctx.registry.getNodeByAddress(t.addr).then(
          (node) => {
            if (!node) return;
            const how = t.complete ? 'sent' : 'cut after';
            ctx.timeline({ nodeid: node.nodeid, source: 'http', stage: `http ${name}`, msg: `${how} ${formatBytes(t.bytes)} in ${formatDuration(t.durationMs)} (${t.status})${waited}`, ok: t.complete, addr: t.addr });
          },
          () => {},
        );
      },
      request: ctx.metrics ? (r) => ctx.metrics!.httpRequest(r) : undefined,
      malformed: ctx.metrics ? (status) => ctx.metrics!.httpMalformed.inc({ status: String(status) }) : undefined,
      acceptConnection: (addr) => requests.identity.acceptConnection(addr),
      health: () => ({
        services: [...ctx.services.values()].map((s) => ({ name: s.name, address: s.address })),
        nodeCredentials: { ...requests.identity.counters },
        database: ctx.registry.databaseState?.() ?? { reachable: true, since: null, reason: null },
        vnfsImagesPending: ctx.images?.()?.status() ?? [],
      }),
    },
  });
  await server.listen();
  return {
    name: 'http',
    server,
    get address() {
      return `http ${server.address}`;
    },
    get nodeAddress() {
      return nodeAddress();
    },
    reload: (config: Config) => server.update(httpOptions(config)),
    close: () => server.close(),
  };
}

/** The factory listed in services.ts. */
export const startHttp: ServiceFactory = async (ctx) => {
  if (!ctx.nodes) throw new TypeError('http service: the daemon context carries no node requests');
  return startHttpService(ctx, ctx.nodes, ctx.current ?? (() => ctx.config));
};
