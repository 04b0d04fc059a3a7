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

type ReloadParams = Extract<TaskParams, { action: 'reload' }>;

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
  const waiting = (async () => {
    while (pending(ctx.task).length > 0 && !ctx.signal.aborted) {
      let moved = false;
      for (const tn of pending(ctx.task)) {
        if (passedPower(tn)) moved = (await look(ctx, tn, nodes.get(tn.node), start, deadline, timeoutS)) || moved;
      }
      if (moved) await ctx.changed();
      if (pending(ctx.task).length === 0) break;
      await sleep(ctx.params.interval * 1000, undefined, { signal: ctx.signal }).catch(() => {});
    }
  })();
  await Promise.all([powering, waiting]);
}

/** One look at a waiting node: its progress, a failed step, ready, or the timeout. Returns whether anything changed. */
async function look(ctx: RunContext, tn: TaskNode, node: ResolvedNode | undefined, start: number, deadline: number, timeoutS: number): Promise<boolean> {
  const rec = node ? await ctx.registry.getNode(node.name) : null;
  if (!node || !rec) {
    endNode(ctx, tn, 'failure', `node ${tn.node} is no longer registered`);
    return true;
  }
  const events = (await ctx.registry.listEvents(rec.nodeid, { since: start })).filter((e) => e.source !== 'power' && e.source !== 'admin');
  let moved = false;
  for (const e of events) {
    if (e.time > (tn.progressAt ?? 0)) {
      tn.progressAt = e.time;
      ctx.task.progressAt = Math.max(ctx.task.progressAt ?? 0, e.time);
      moved = true;
    }
    const p = phaseOf(e);
    if (p && isLater(p, tn.phase)) {
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
  const v = nodeVerdict({ node: { ...node, state: rec.state, lastcontact: rec.lastcontact }, now, timeout: ctx.config.node.timeout, runningVnfs: runningVnfsFromTimeline(events) });
  if (fresh && v.verdict === 'READY') {
    tn.phase = 'ready';
    endNode(ctx, tn, 'success', `ready on ${node.vnfs}`);
    return true;
  }
  if (now > deadline) {
    const last = events.at(-1);
    endNode(ctx, tn, 'failure', `timed out after ${timeoutS}s (last: ${last ? describe(last) : 'no sign of life'})`);
    return true;
  }
  return moved;
}

function describe(e: TimelineEvent): string {
  return e.msg ? `${e.stage} (${e.msg})` : e.stage;
}
