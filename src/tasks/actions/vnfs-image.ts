/**
 * The vnfs-image task: builds the node image of a VNFS (image.cpio.gz and its sha256). Progress
 * marks the task at most once a second; the last message says what was built, as `vnfs image`
 * prints it. A build cannot be cut short: a cancel ends the task terminated once it returns.
 */
import { buildImage } from '../../vnfs/index.js';
import { errorMessage } from '../../util/errors.js';
import type { TaskParams } from '../params.js';
import { addMessage } from '../record.js';
import type { RunContext } from './context.js';

type ImageParams = Extract<TaskParams, { action: 'vnfs-image' }>;

export async function runVnfsImage(ctx: RunContext<ImageParams>): Promise<void> {
  const { vnfs } = ctx.params;
  addMessage(ctx.task, null, `building the image of vnfs ${vnfs}`);
  await ctx.changed();
  let marked = Date.now();
  try {
    const r = await buildImage(ctx.config.statedir, vnfs, ctx.log, () => {
      if (Date.now() - marked < 1000) return;
      marked = Date.now();
      ctx.task.progressAt = marked;
      void ctx.changed();
    });
    addMessage(ctx.task, null, `${r.path}  ${size(r.bytes)}  ${r.entries} entries  sha256 ${r.sha256}`);
    if (ctx.imageBuilt) {
      try {
        addMessage(ctx.task, null, await ctx.imageBuilt(vnfs));
      } catch (err) {
        addMessage(ctx.task, null, `built, but not published to the other servers: ${errorMessage(err)}`, true);
        ctx.task.result = 'failure';
        return;
      }
    }
    ctx.task.result = 'success';
  } catch (err) {
    addMessage(ctx.task, null, errorMessage(err), true);
    ctx.task.result = 'failure';
  }
}

/** `1.5 MiB`, as the vnfs commands print sizes. */
export function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MiB`;
  return `${(n / 1073741824).toFixed(2)} GiB`;
}
