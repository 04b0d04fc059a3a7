/**
 * The reload task (Apache VCL's `load`): boot device pxe, power cycle (or on, when off), then follow
 * each node through its boot in the timeline until it checks in `ready` on its assigned VNFS after
 * the task started (the rule of `reload --wait`). A node fails on a failed boot step, with its
 * message, or when `timeout` passes, with the last stage it reached.
 *
 * A node whose power step is done carries the message POWERED: a runner taking the task over after a
 * restart goes on waiting for those; one mid power call cannot know whether the call happened.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeVerdict, runningVnfsFromTimeline } from '../../power/verdict.js';
import { UnsupportedVerbError } from '../../power/types.js';
import type { ResolvedNode, TaskNode, TimelineEvent } from '../../registry/types.js';
import type { FanOutParams, TaskParams } from '../params.js';
import { isFatal, isLater, phaseOf } from '../phase.js';
import { addMessage } from '../record.js';
import { endNode, fanOutNodes, pending, type RunContext } from './context.js';
import { timeline } from './power.js';
import { resolveNames } from '../nodes.js';

/** A reload's parameters; a deploy's are a reload's and its VNFS (actions/deploy.ts sets it, then reloads). */
type ReloadParams = Extract<TaskParams, { action: 'reload' | 'deploy' }>;

/** The message that ends a node's power step (`powered on to boot pxe`, `power cycled to boot pxe`). */
export const POWERED = /^(powered on|power cycled) to boot pxe/;

/** Whether the node's power step is done: from here on it is only waited for. */
export function passedPower(n: TaskNode): boolean {
  return n.messages.some((m) => !m.error && POWERED.test(m.message));
}

export async function runReload(ctx: RunContext<ReloadParams>): Promise<void> {
  const start = ctx.task.started ?? Date.now();
  const timeoutS = ctx.params.timeout ?? ctx.config.node.timeout;
  const deadline = start + timeoutS * 1000;
  const toPower = pending(ctx.task).filter((n) => !passedPower(n));
  const powering = fanOutNodes(
    ctx as RunContext<TaskParams & FanOutParams>,
    toPower,
    async (driver, node, tn, signal) => {
      tn.phase = 'power';
      addMessage(ctx.task, tn, 'power: boot device pxe, then power cycle (or on, when off)');
      void ctx.changed();
      let note = '';
      try {
        await driver.bootdev('pxe', false, { signal });
      } catch (err) {
        if (!(err instanceof UnsupportedVerbError)) throw err;
        note = ' (boot device left as is: the driver cannot set it)';
      }
      const state = await driver.status({ signal }).catch(() => 'unknown' as const);
      await driver.power(state === 'off' ? 'on' : 'cycle', { signal });
      ctx.log.info({ node: node.name }, 'reload started');
      return `${state === 'off' ? 'powered on' : 'power cycled'} to boot pxe${note}`;
    },
    async (tn, r, node) => {
      if (r.ok) addMessage(ctx.task, tn, r.value!);
      else endNode(ctx, tn, 'failure', r.error!);
      if (node) await timeline(ctx, node.nodeid, 'reload', r.ok ? null : r.error!, r.ok);
    },
  );
  const nodes = await resolveNames(ctx.registry, ctx.config, ctx.task.nodes.map((n) => n.node));
  const cursors = new Map<string, Cursor>();
  const waiting = (async () => {
    while (pending(ctx.task).length > 0 && !ctx.signal.aborted) {
      let moved = false;
      for (const tn of pending(ctx.task)) {
        if (!passedPower(tn)) continue;
        let cursor = cursors.get(tn.node);
        if (!cursor) cursors.set(tn.node, (cursor = { since: start, atSince: new Set(), last: null, vnfs: null, initSeen: false, readySeen: false }));
        moved = (await look(ctx, tn, nodes.get(tn.node), cursor, start, deadline, timeoutS)) || moved;
      }
      if (moved) await ctx.changed();
      if (pending(ctx.task).length === 0) break;
      await sleep(ctx.params.interval * 1000, undefined, { signal: ctx.signal }).catch(() => {});
    }
  })();
  await Promise.all([powering, waiting]);
}

/**
 * How far a node's timeline has been read: a look reads only what is new (a thousand nodes booting
 * are looked at every `interval`), from `since` on, skipping the events at `since` already read.
 */
interface Cursor {
  since: number;
  atSince: Set<string>;
  /** The last boot step seen (for the timeout's message). */
  last: TimelineEvent | null;
  /** The VNFS the node fetched since the start, when the timeline tells. */
  vnfs: string | null;
  /**
   * The node asked for its init script since the start, and then checked in ready: this boot's ready.
   * A contact alone is not: DHCP and the iPXE script refresh the last contact of a node whose state
   * still says `ready` from the boot before the power cycle.
   */
  initSeen: boolean;
  readySeen: boolean;
}

function newEvents(cursor: Cursor, events: readonly TimelineEvent[]): TimelineEvent[] {
  const fresh: TimelineEvent[] = [];
  for (const e of events) {
    const key = `${e.source} ${e.stage} ${e.msg ?? ''} ${e.ok}`;
    if (e.time < cursor.since || (e.time === cursor.since && cursor.atSince.has(key))) continue;
    if (e.time > cursor.since) {
      cursor.since = e.time;
      cursor.atSince = new Set();
    }
    cursor.atSince.add(key);
    fresh.push(e);
  }
  return fresh;
}

/** One look at a waiting node: its progress, a failed step, ready, or the timeout. Returns whether anything changed. */
async function look(ctx: RunContext, tn: TaskNode, node: ResolvedNode | undefined, cursor: Cursor, start: number, deadline: number, timeoutS: number): Promise<boolean> {
  const rec = node ? await ctx.registry.getNode(node.name) : null;
  if (!node || !rec) {
    endNode(ctx, tn, 'failure', `node ${tn.node} is no longer registered`);
    return true;
  }
  const events = newEvents(cursor, await ctx.registry.listEvents(rec.nodeid, { since: cursor.since })).filter((e) => e.source !== 'power' && e.source !== 'admin');
  cursor.last = events.at(-1) ?? cursor.last;
  cursor.vnfs = vnfsFetched(events) ?? cursor.vnfs;
  let moved = false;
  for (const e of events) {
    if (e.time > (tn.progressAt ?? 0)) {
      tn.progressAt = e.time;
      ctx.task.progressAt = Math.max(ctx.task.progressAt ?? 0, e.time);
      moved = true;
    }
    const p = phaseOf(e);
    if (p === 'init') cursor.initSeen = true;
    else if (p === 'ready' && cursor.initSeen) cursor.readySeen = true;
    // A ready check-in before this boot asked for its init script is the previous boot's agent
    // still running while the power cycle takes effect: not this boot's phase.
    if (p && isLater(p, tn.phase) && (p !== 'ready' || cursor.initSeen)) {
      tn.phase = p;
      addMessage(ctx.task, tn, `${p}: ${describe(e)}`, false, e.time);
      // Each phase is told on its own (an /events subscriber sees them all, in order).
      await ctx.changed();
    }
    if (isFatal(e)) {
      endNode(ctx, tn, 'failure', `${e.stage}: ${e.msg ?? 'failed'}`);
      return true;
    }
  }
  const now = Date.now();
  const fresh = rec.lastcontact !== null && rec.lastcontact >= start;
  const v = nodeVerdict({ node: { ...node, state: rec.state, lastcontact: rec.lastcontact }, now, timeout: ctx.config.node.timeout, runningVnfs: cursor.vnfs });
  if (fresh && cursor.readySeen && v.verdict === 'READY') {
    tn.phase = 'ready';
    endNode(ctx, tn, 'success', `ready on ${node.vnfs}`);
    return true;
  }
  if (fresh && cursor.readySeen && rec.state === 'ready' && cursor.vnfs !== null && cursor.vnfs !== node.vnfs) {
    endNode(ctx, tn, 'failure', `came up ready on vnfs ${cursor.vnfs}, assigned ${node.vnfs}`);
    return true;
  }
  if (now > deadline) {
    endNode(ctx, tn, 'failure', `timed out after ${timeoutS}s (last: ${cursor.last ? describe(cursor.last) : 'no sign of life'})`);
    return true;
  }
  return moved;
}

/**
 * The VNFS the node fetched, as its timeline tells: 10-vnfs's `image NAME SHA256` and `getfile
 * vnfs/NAME/...` reports, or an HTTP transfer under vnfs/NAME/. Null when it does not tell.
 */
export function vnfsFetched(events: readonly TimelineEvent[]): string | null {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.source !== 'node' || !e.ok || !e.msg) continue;
    const m = e.stage === 'image' ? /^([\w.+-]+) [0-9a-f]{64}$/.exec(e.msg) : e.stage === 'getfile' ? /^vnfs\/([\w.+-]+)\//.exec(e.msg) : null;
    if (m) return m[1]!;
  }
  return runningVnfsFromTimeline(events);
}

function describe(e: TimelineEvent): string {
  return e.msg ? `${e.stage} (${e.msg})` : e.stage;
}
