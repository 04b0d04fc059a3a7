/**
 * The power and bootdev tasks: one driver call per node, fanned out. Each node's part ends with the
 * call (`on ok`, or the driver's error), and each call is recorded in the node's timeline (source
 * `power`), as the CLI always did.
 */
import type { FanOutParams, TaskParams } from '../params.js';
import { addMessage } from '../record.js';
import { endNode, fanOutNodes, pending, type RunContext } from './context.js';

type PowerParams = Extract<TaskParams, { action: 'power' }>;
type BootdevParams = Extract<TaskParams, { action: 'bootdev' }>;

export async function runPower(ctx: RunContext<PowerParams>): Promise<void> {
  const verb = ctx.params.power;
  await fanOutNodes(
    ctx as RunContext<TaskParams & FanOutParams>,
    pending(ctx.task),
    async (driver, node, tn, signal) => {
      ctx.log.debug({ node: node.name, run: driver.describe(verb) }, `power ${verb}`);
      addMessage(ctx.task, tn, `power ${verb}`);
      void ctx.changed();
      await driver.power(verb, { signal });
    },
    async (tn, r, node) => {
      endNode(ctx, tn, r.ok ? 'success' : 'failure', r.ok ? `${verb} ok` : r.error!);
      if (node) await timeline(ctx, node.nodeid, `power ${verb}`, r.ok ? null : r.error!, r.ok);
    },
  );
}

export async function runBootdev(ctx: RunContext<BootdevParams>): Promise<void> {
  const { device, persistent } = ctx.params;
  const detail = persistent ? `${device} persistent` : device;
  await fanOutNodes(
    ctx as RunContext<TaskParams & FanOutParams>,
    pending(ctx.task),
    async (driver, node, tn, signal) => {
      ctx.log.debug({ node: node.name, run: driver.describe('bootdev', detail) }, 'bootdev');
      addMessage(ctx.task, tn, `bootdev ${detail}`);
      void ctx.changed();
      await driver.bootdev(device, persistent, { signal });
    },
    async (tn, r, node) => {
      endNode(ctx, tn, r.ok ? 'success' : 'failure', r.ok ? `boot device ${detail}` : r.error!);
      if (node) await timeline(ctx, node.nodeid, `bootdev ${detail}`, r.ok ? null : r.error!, r.ok);
    },
  );
}

/** Records the action in the node's timeline; a failure to record is logged, never the task's. */
export async function timeline(ctx: RunContext, nodeid: string, stage: string, msg: string | null, ok: boolean): Promise<void> {
  await Promise.resolve(ctx.timeline({ time: Date.now(), nodeid, source: 'power', stage, msg, ok })).catch((err: unknown) => ctx.log.warn({ nodeid, stage, err: String(err) }, 'recording the power event failed'));
}
