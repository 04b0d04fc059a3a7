/**
 * The nodescript engine: discovery -> run -> one shell script streamed to the node.
 * One engine per daemon; every request renders through it, sharing its process limit and spawner.
 */
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { assertState } from '../util/names.js';
import { discover, FolderReads, nodeFolders } from './discover.js';
import { scriptEnv, defaultConcurrency } from './env.js';
import { ProcessLimiter } from './limiter.js';
import { type RunContext, runScript } from './run-script.js';
import { spawnerPath } from '../native/index.js';
import { ProcessSpawner } from './spawner/process-spawner.js';
import type { EngineOptions, MasterContext, NodeContext, NodescriptEngine, PlanEntry, RenderOptions, ScriptResult } from './types.js';

export const SCRIPT_START = '#!/bin/sh\n# NODESCRIPT START\n';
export const SCRIPT_END = '# NODESCRIPT END\n';

/** A double-quoted shell word: nothing in it expands on the node. */
export function shellQuote(s: string): string {
  return `"${s.replace(/[$`"\\]/g, (c) => `\\${c}`)}"`;
}

/** The line a failed script becomes in the node's script. */
export function failureLine(name: string, reason: string): string {
  return `echo ${shellQuote(`provisiond: nodescript ${name} failed on the master (${reason})`)} >&2\n`;
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new TypeError(`nodescript engine: ${name} must be a positive number, got ${v}`);
  return v;
}

/** Creates the engine. Invalid options are refused with a TypeError. */
export function createNodescriptEngine(opts: EngineOptions): NodescriptEngine {
  const { statedir, logger, onError = 'continue' } = opts;
  if (!statedir) throw new TypeError('nodescript engine: statedir is required');
  if (onError !== 'continue' && onError !== 'abort') throw new TypeError(`nodescript engine: onError must be continue or abort, got ${String(onError)}`);
  const timeoutMs = positiveInt('timeoutMs', opts.timeoutMs, 30_000);
  const maxOutput = positiveInt('maxOutput', opts.maxOutput, 64 * 1024 * 1024);
  const limiter = new ProcessLimiter(Math.floor(positiveInt('concurrency', opts.concurrency, defaultConcurrency())));
  const log = logger.child({ component: 'nodescript' });
  const spawner = new ProcessSpawner({ bin: spawnerPath(), logger: log });
  const running = { n: 0 };
  const ctx: RunContext = { spawner, statedir, timeoutMs, maxOutput, log, running };
  const inFlight = new Set<AbortController>();
  const reads = new FolderReads();
  let closed = false;

  /** Writes the node's script into `out`; rejects on an I/O error or when `signal` aborts. */
  async function produce(node: NodeContext, master: MasterContext, out: Readable, signal: AbortSignal, onScript?: (r: ScriptResult) => void): Promise<void> {
    const ticket = limiter.ticket();
    const nlog = log.child({ node: node.nodename, state: node.state });
    const push = (b: Buffer | string) => {
      if (!signal.aborted) out.push(b);
    };
    const end = () => {
      push(SCRIPT_END);
      if (!signal.aborted) out.push(null);
    };
    // A render takes a slot at its first master script and keeps it to its end: its scripts run back
    // to back, and the oldest request always finishes first (first come, first served).
    let holding = false;
    try {
      push(SCRIPT_START);
      const plan = await discover(statedir, node.state, node, reads);
      const env = scriptEnv(node, master);
      const rctx: RunContext = { ...ctx, log: nlog };
      for (const entry of plan) {
        if (signal.aborted) throw signal.reason;
        if (entry.action === 'shadowed') continue;
        const base = { name: entry.name, folder: entry.folder, dir: entry.dir, exitCode: null, signal: null, timedOut: false, truncated: false, durationMs: 0 };
        if (entry.action === 'skipped') {
          nlog.warn({ script: entry.name, dir: entry.dir }, `nodescript ${entry.dir}/${entry.name} skipped: ${entry.reason}`);
          push(`# skipped: ${entry.name} (${entry.reason})\n`);
          onScript?.({ ...base, kind: 'skipped', bytes: 0, ok: true, reason: entry.reason });
          continue;
        }
        push(`# ${entry.name} (${entry.dir})\n`);
        let result: ScriptResult;
        if (entry.action === 'verbatim') {
          try {
            const body = await readFile(entry.path);
            push(body);
            if (body.length > 0 && body[body.length - 1] !== 0x0a) push('\n');
            result = { ...base, kind: 'verbatim', bytes: body.length, ok: true };
          } catch (err) {
            const reason = `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
            nlog.error({ script: entry.name, dir: entry.dir }, `nodescript ${entry.name}: ${reason}`);
            result = { ...base, kind: 'verbatim', bytes: 0, ok: false, reason };
          }
        } else {
          if (!holding) {
            await limiter.acquire(ticket, signal);
            holding = true;
          }
          let last = 0x0a;
          result = await runScript(rctx, entry, env, (chunk) => {
            last = chunk[chunk.length - 1];
            push(chunk);
          }, signal);
          if (signal.aborted) throw signal.reason;
          if (last !== 0x0a) push('\n');
        }
        onScript?.(result);
        if (!result.ok) {
          push(failureLine(entry.name, result.reason!));
          if (onError === 'abort') {
            push('exit 1\n');
            break;
          }
        }
      }
      end();
    } finally {
      if (holding) limiter.release();
    }
  }

  return {
    render(node, master, ropts: RenderOptions = {}) {
      if (closed) throw new Error('nodescript engine is closed');
      assertState(node.state);
      nodeFolders(statedir, node.state, node); // validates node, group and VNFS names before anything starts
      const ac = new AbortController();
      inFlight.add(ac);
      const out = new Readable({
        read() {},
        destroy(err, cb) {
          if (!ac.signal.aborted) ac.abort(err ?? new Error('nodescript stream closed by its reader'));
          cb(err);
        },
      });
      const external = ropts.signal;
      const onExternal = () => ac.abort(external!.reason);
      if (external?.aborted) ac.abort(external.reason);
      else external?.addEventListener('abort', onExternal, { once: true });
      produce(node, master, out, ac.signal, ropts.onScript)
        .catch((err) => {
          if (!out.destroyed) out.destroy(err instanceof Error ? err : new Error(String(err)));
        })
        .finally(() => {
          inFlight.delete(ac);
          external?.removeEventListener('abort', onExternal);
        });
      return out;
    },
    plan(state: string, node: Pick<NodeContext, 'nodename' | 'group' | 'vnfs'>): Promise<PlanEntry[]> {
      return discover(statedir, state, node, reads);
    },
    get running() {
      return running.n;
    },
    get renders() {
      return inFlight.size;
    },
    get waiting() {
      return limiter.waiting;
    },
    async close({ graceMs = 0 } = {}) {
      closed = true;
      const until = Date.now() + graceMs;
      while (inFlight.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, until - Date.now()))));
      for (const ac of inFlight) ac.abort(new Error('nodescript engine closed'));
      await spawner.close();
    },
  };
}
