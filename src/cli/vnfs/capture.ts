/**
 * `provisiond vnfs capture NODE NEW [--exclude GLOB]... [--timeout S] [--wait]`: a new VNFS from a
 * running node's root file system. The capture task is stored in the registry for the daemon (its
 * node-facing server receives the upload; the CLI cannot), which starts it within seconds, as
 * POST /api/v1/nodes/{node}/capture does. With --wait: its phases and the bytes uploaded.
 */
import type { Command } from 'commander';
import { ProvisiondError } from '../../util/errors.js';
import type { TaskRecord } from '../../registry/types.js';
import { UPLOAD_PROGRESS } from '../../tasks/actions/capture.js';
import { cliRunner, interruptCancels, submitTask } from '../task/shared.js';
import { cliLogger, withRegistry } from '../node/shared.js';
import { size } from './shared.js';

/** Where a capture is, in one line: `upload 12.0 MiB`, `image`, ... */
export function captureStage(t: TaskRecord): string {
  const n = t.nodes[0];
  if (!n) return t.status;
  if (n.phase === 'upload') {
    const m = [...n.messages].reverse().map((x) => UPLOAD_PROGRESS.exec(x.message)).find(Boolean);
    if (m) return `upload ${size(Number(m[1]))}`;
  }
  return n.phase ?? (t.status === 'queued' ? 'queued for the daemon' : t.status);
}

export function register(vnfs: Command): void {
  vnfs
    .command('capture')
    .description("make a new VNFS from a running node's root file system (its ready agent uploads it; the daemon must run)")
    .argument('<node>', 'the node, booted and ready')
    .argument('<new>', 'the new VNFS name')
    .option('--exclude <glob>', 'leave out an absolute path glob too (/var/cache/*); repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--timeout <seconds>', 'how long the whole capture may take (default 3600)', Number)
    .option('--wait', 'follow it until the VNFS and its image are made, with the bytes uploaded')
    .action(async (node: string, name: string, opts: { exclude: string[]; timeout?: number; wait?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const runner = cliRunner(reg, config, cliLogger(ctx.err));
        try {
          const params = { nodes: [node], vnfs: name, exclude: opts.exclude, ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}) };
          const task = await submitTask(runner, ctx.err, { action: 'capture', params });
          if (!opts.wait) {
            ctx.out.write(`capture of ${task.nodes[0]!.node} as vnfs ${name} asked: the daemon runs it (provisiond task show ${task.id})\n`);
            return;
          }
          const tty = (ctx.err as NodeJS.WriteStream).isTTY === true;
          let shown = '';
          const release = interruptCancels(runner, task.id, ctx.err);
          const done = await runner
            .wait(task.id, {
              onProgress: (t) => {
                const stage = captureStage(t);
                if (stage === shown) return;
                shown = stage;
                ctx.err.write(tty ? `\r\x1b[Kcapture ${t.nodes[0]!.node} -> ${name}: ${stage}` : `capture ${t.nodes[0]!.node} -> ${name}: ${stage}\n`);
              },
            })
            .finally(release);
          if (tty) ctx.err.write('\r\x1b[K');
          const last = done.nodes[0]?.messages.at(-1)?.message ?? done.messages.at(-1)?.message ?? done.status;
          if (done.result !== 'success') throw new ProvisiondError(`capture failed: ${last}`);
          ctx.out.write(`${last}\n`);
        } finally {
          await runner.close();
        }
      });
    });
}
