/**
 * What the node-facing services (HTTP, the Perceus TCP protocol) do for a nodescript request, in one
 * place: identify the node (the Booter; by nodeid, else its address), check the request's source,
 * record the contact, run its nodescripts through the engine, and write each step into its boot
 * timeline.
 */
import { Readable, Transform } from 'node:stream';
import type { Booter } from '../boot/booter.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { MasterContext, NodeContext, NodescriptEngine, ScriptResult } from '../nodescript/types.js';
import type { NodeRecord, RegistryStore } from '../registry/types.js';
import { HttpError } from '../servers/http/errors.js';
import { errorMessage } from '../util/errors.js';
import { insertAfterShebang, NodeIdentity } from './node-identity.js';
import { formatBytes, formatDuration, type TimelineRecorder } from './timeline.js';

export interface NodeRequestsDeps {
  registry: RegistryStore;
  /** Who the node is (auto-registration is the boot policy's). */
  booter: Booter;
  engine: NodescriptEngine;
  timeline: TimelineRecorder;
  log: Logger;
  /** The config in force (it changes on reload). */
  config(): Config;
  /** `host:port` nodes reach the HTTP service at (the bound port when http.port is 0). */
  httpAddress(): string;
  /** Told of every contact recorded: the node, the state it asked for (and the one it was in), its address. */
  onContact?(c: { node: NodeRecord; state: string; addr: string }): void;
  /** Told of every nodescript's outcome (the metrics). */
  onScript?(r: ScriptResult): void;
}

export type Via = 'http' | 'perceus';

/** The MasterContext of nodescripts: VNFSMETHOD, VNFSMASTER, VNFSPREFIX, STATEDIR, READY_INTERVAL. */
export function masterContext(config: Config, httpAddress: string): MasterContext {
  return {
    statedir: config.statedir,
    vnfsMethod: config.vnfs.method,
    vnfsMaster: config.vnfs.master ?? httpAddress,
    vnfsPrefix: config.vnfs.prefix.replace(/^\/+|\/+$/g, '') || 'files',
    readyInterval: config.ready.interval,
  };
}

/** A shell script the node runs when the master will not give it its scripts: the reason, then exit 1. */
export function refusalScript(reason: string): Readable {
  const quoted = `'${`provisiond: ${reason}`.replaceAll("'", "'\\''")}'`;
  return Readable.from([`#!/bin/sh\n# NODESCRIPT START\necho ${quoted} >&2\nexit 1\n# NODESCRIPT END\n`]);
}

export class NodeRequests {
  /** The node credentials and the source-address policy. */
  readonly identity: NodeIdentity;

  constructor(private readonly deps: NodeRequestsDeps) {
    this.identity = new NodeIdentity({ registry: deps.registry, timeline: deps.timeline, log: deps.log, config: deps.config });
  }

  /**
   * The node of a request: by nodeid (registered per the boot policy when it asks for `init`), else
   * by the address it holds (fixed or leased).
   */
  async #identify(nodeid: string | null, addr: string, state: string, via: Via): Promise<{ nodeid: string; node: NodeRecord | null; why: string }> {
    if (nodeid) return { nodeid, ...(await this.deps.booter.identify({ via, nodeid, addr, state })) };
    const node = await this.deps.registry.getNodeByAddress(addr);
    if (!node) throw new HttpError(400, `no nodeid given and ${addr} is not the address of a known node (add ?nodeid=MAC)`);
    return { nodeid: node.nodeid, node, why: '' };
  }

  /** The node's concatenated script for `state`, streamed; an unknown node gets a script saying why. */
  async nodescript({ state, nodeid: asked, addr, signal, via, credential = null }: { state: string; nodeid: string | null; addr: string; signal: AbortSignal; via: Via; credential?: string | null }): Promise<Readable> {
    const { registry, timeline, log } = this.deps;
    const { nodeid, node, why } = await this.#identify(asked, addr, state, via);
    if (!node) {
      timeline({ nodeid, source: via, stage: `nodescript ${state}`, msg: why, ok: false, addr });
      return refusalScript(why);
    }
    await this.identity.verifySource(node, addr, `nodescript ${state}`, via);
    // Every state after `init` is the booted node speaking, which must present this boot's credential
    // (the Perceus protocol has no way to: its clients are not checked).
    if (state !== 'init' && via === 'http') await this.identity.check(node, credential, addr, `nodescript ${state}`);
    // A failed commit (an admin's command holding the lock) keeps the contact queued for the retry: serve the node anyway.
    await registry.recordContact(nodeid, state, addr).catch((err: unknown) => log.warn({ node: node.name, state, err: String(err) }, 'recording the contact is delayed: will retry'));
    this.deps.onContact?.({ node, state, addr });
    const resolved = await this.deps.booter.resolve(node);
    const config = this.deps.config();
    const ctx: NodeContext = {
      state,
      nodename: resolved.name,
      nodeid: resolved.nodeid,
      group: resolved.group,
      vnfs: resolved.vnfs,
      enabled: resolved.enabled,
      debug: resolved.debug,
      ipaddr: addr || resolved.ipaddr || '',
      attrs: resolved.attrs,
    };
    const began = performance.now();
    timeline({ nodeid, source: via, stage: `nodescript ${state}`, msg: `requested by ${resolved.name} from ${addr}`, ok: true, addr });
    // `init` starts a boot: it gets a fresh credential, revoking the previous boot's.
    const secret = state === 'init' ? await this.identity.issue(node, addr, via) : null;
    let failed = 0;
    const onScript = (r: ScriptResult) => {
      this.deps.onScript?.(r);
      if (r.kind === 'skipped' && r.ok) return;
      if (!r.ok) failed++;
      const what = r.kind === 'verbatim' ? 'sent verbatim' : r.kind === 'skipped' ? 'skipped' : r.ok ? 'exit 0' : (r.reason ?? (r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`));
      timeline({ nodeid, source: 'nodescript', stage: `${state} ${r.name}`, msg: `${what} in ${formatDuration(r.durationMs)} (${r.dir ?? r.folder}, ${formatBytes(r.bytes)})`, ok: r.ok, addr });
      if (!r.ok) log.warn({ node: resolved.name, state, script: r.name, reason: what }, 'nodescript failed');
    };
    let body: Readable;
    try {
      body = this.deps.engine.render(ctx, masterContext(config, this.deps.httpAddress()), { signal, onScript });
    } catch (err) {
      timeline({ nodeid, source: via, stage: `nodescript ${state}`, msg: errorMessage(err), ok: false, addr });
      throw new HttpError(400, `nodescript ${state} for ${resolved.name}: ${errorMessage(err)}`, { cause: err });
    }
    let bytes = 0;
    let reported = false;
    const report = (ok: boolean, how: string) => {
      if (reported) return;
      reported = true;
      const ms = performance.now() - began;
      const msg = `${how}: ${formatBytes(bytes)} in ${formatDuration(ms)}${failed ? `, ${failed} script(s) failed` : ''}`;
      log.info({ node: resolved.name, nodeid, state, addr, via, bytes, ms: Math.round(ms), failed, complete: ok }, `nodescript ${state} ${how}`);
      timeline({ nodeid, source: via, stage: `nodescript ${state} sent`, msg, ok: ok && failed === 0, addr });
    };
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        cb(null, chunk);
      },
      flush(cb) {
        report(true, 'served');
        cb();
      },
    });
    body.on('error', (err) => {
      report(false, signal.aborted ? 'client went away' : `failed (${errorMessage(err)})`);
      counter.destroy(err);
    });
    counter.on('close', () => report(false, 'client went away'));
    return secret === null ? body.pipe(counter) : body.pipe(insertAfterShebang(NodeIdentity.scriptLine(secret))).pipe(counter);
  }
}
