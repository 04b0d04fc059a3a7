/**
 * The deploy task (Drydock's DeployNode, OpenNebula's deploy, VCL's load of another image): set each
 * node's VNFS, then reload it (boot device pxe, power cycle, follow it to `ready`), where ready counts
 * only on that VNFS. The VNFS is set first and committed, so a node the daemon loses track of (kill -9)
 * still boots what was asked; a node whose VNFS cannot be set fails alone, with the reason, and is
 * not power cycled.
 */
import { nodeUpdate } from '../../nodes/fields.js';
import type { TaskParams } from '../params.js';
import { addMessage } from '../record.js';
import { errorMessage } from '../../util/errors.js';
import { endNode, pending, type RunContext } from './context.js';
import { passedPower, runReload } from './reload.js';

type DeployParams = Extract<TaskParams, { action: 'deploy' }>;

const setTo = (vnfs: string) => `vnfs: set to ${vnfs}`;

export async function runDeploy(ctx: RunContext<DeployParams>): Promise<void> {
  const { vnfs } = ctx.params;
  for (const tn of pending(ctx.task)) {
    if (passedPower(tn) || tn.messages.some((m) => !m.error && m.message === setTo(vnfs))) continue;
    try {
      await ctx.registry.updateNode(tn.node, nodeUpdate('vnfs', vnfs, ctx.config));
      addMessage(ctx.task, tn, setTo(vnfs));
    } catch (err) {
      endNode(ctx, tn, 'failure', `vnfs: ${errorMessage(err)}`);
    }
  }
  await ctx.changed();
  await runReload(ctx);
}
