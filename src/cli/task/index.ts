/**
 * `provisiond task list [--all] [--json]`, `task show ID [--json]`, `task cancel ID`,
 * `task wait ID [--timeout S]`: the tasks in the registry, whichever process runs them (the daemon
 * for the API, a CLI for power, reload and vnfs image). `wait` exits 0 on success, 1 otherwise.
 */
import type { Command } from 'commander';
import type { TaskRecord } from '../../registry/types.js';
import { isFinished } from '../../tasks/index.js';
import { ProvisiondError, UsageError } from '../../util/errors.js';
import { cliLogger, withRegistry } from '../node/shared.js';
import { cliCaller, cliRunner } from './shared.js';

const when = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** `12/16 ok` for a task with nodes. */
function counts(t: TaskRecord): string {
  if (t.nodes.length === 0) return '-';
  return `${t.nodes.filter((n) => n.result === 'success').length}/${t.nodes.length} ok`;
}

function what(t: TaskRecord): string {
  const p = t.params as { nodes?: string[]; action?: string; device?: string; vnfs?: string };
  const detail = t.action === 'power' ? p.action : t.action === 'bootdev' ? p.device : t.action === 'vnfs-image' ? p.vnfs : undefined;
  return [t.action, detail, p.nodes?.join(',')].filter(Boolean).join(' ');
}

function show(t: TaskRecord): string {
  const lines = [
    `task ${t.id}: ${what(t)}`,
    `status ${t.status}, result ${t.result}; by ${t.createdBy}; runner ${t.runner ?? '-'}`,
    `created ${when(t.created)}, started ${when(t.started)}, finished ${when(t.finished)}, progress ${when(t.progressAt)}`,
  ];
  if (t.cancelRequested) lines.push(`cancel asked by ${t.cancelRequested.by} at ${when(t.cancelRequested.at)}`);
  for (const m of t.messages) lines.push(`  ${when(m.ts)}  ${m.error ? 'ERROR ' : ''}${m.message}`);
  let out = lines.join('\n') + '\n';
  if (t.nodes.length) {
    out += table([['NODE', 'STATUS', 'RESULT', 'PHASE', 'LAST MESSAGE'], ...t.nodes.map((n) => [n.node, n.status, n.result, n.phase ?? '-', n.messages.at(-1)?.message ?? '-'])]);
  }
  return out;
}

export function register(program: Command): void {
  const task = program.command('task').description('long and fanned-out actions (power, bootdev, reload, vnfs image) kept in the registry: list, show, cancel, wait');
  task
    .command('list')
    .description('tasks, newest first: unfinished ones and those finished in the last 24 hours (--all: every one)')
    .option('--all', 'every task kept, not only the recent ones')
    .option('--json', 'JSON, one object per task')
    .action(async (opts: { all?: boolean; json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        const since = Date.now() - 86400_000;
        const tasks = (await reg.listTasks({ limit: opts.all ? 100_000 : 1000 })).filter((t) => opts.all || !isFinished(t.status) || (t.finished ?? t.created) >= since);
        if (opts.json) {
          ctx.out.write(JSON.stringify(tasks, null, 2) + '\n');
          return;
        }
        if (tasks.length === 0) {
          ctx.err.write(`provisiond: no tasks${opts.all ? '' : ' in the last 24 hours (--all lists every one)'}\n`);
          return;
        }
        ctx.out.write(table([['ID', 'STATUS', 'RESULT', 'NODES', 'BY', 'CREATED', 'WHAT'], ...tasks.map((t) => [t.id, t.status, t.result, counts(t), t.createdBy, when(t.created), what(t)])]));
      });
    });
  task
    .command('show')
    .description("a task: status, result, times, who asked, its messages and each node's part")
    .argument('<id>', 'task id')
    .option('--json', 'the task record as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        const t = await reg.getTask(id);
        if (!t) throw new UsageError(`no task ${JSON.stringify(id)}`);
        ctx.out.write(opts.json ? JSON.stringify(t, null, 2) + '\n' : show(t));
      });
    });
  task
    .command('cancel')
    .description('cancel a task: running driver calls are aborted, waits end; it ends terminated')
    .argument('<id>', 'task id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const runner = cliRunner(reg, config, cliLogger(ctx.err));
        try {
          const asked = await runner.cancel(id, cliCaller()).catch((err: unknown) => {
            throw err instanceof ProvisiondError && err.name === 'NodeNotFoundError' ? new UsageError(`no task ${JSON.stringify(id)}`) : err;
          });
          // The runner that has it ends it within a moment: say how it ended when it has.
          const t = isFinished(asked.status) ? asked : await runner.wait(id, { timeoutMs: 10_000 }).catch(() => asked);
          ctx.out.write(`task ${id}: ${t.status}, result ${t.result}\n`);
        } finally {
          await runner.close();
        }
      });
    });
  task
    .command('wait')
    .description('wait until a task is terminated or complete; exit 0 on success, 1 on failure, partial success or terminated')
    .argument('<id>', 'task id')
    .option('--timeout <seconds>', 'give up after this long (exit 1)')
    .action(async (id: string, opts: { timeout?: string }, cmd: Command) => {
      const timeoutMs = opts.timeout === undefined ? undefined : Number(opts.timeout) * 1000;
      if (timeoutMs !== undefined && !(timeoutMs > 0)) throw new UsageError(`--timeout ${JSON.stringify(opts.timeout)}: expected seconds > 0`);
      await withRegistry(cmd, async (reg, ctx, config) => {
        if (!(await reg.getTask(id))) throw new UsageError(`no task ${JSON.stringify(id)}`);
        const runner = cliRunner(reg, config, cliLogger(ctx.err));
        try {
          const t = await runner.wait(id, { timeoutMs });
          ctx.out.write(`task ${id}: ${t.status}, result ${t.result}\n`);
          if (t.status !== 'complete' || t.result !== 'success') process.exitCode = 1;
        } finally {
          await runner.close();
        }
      });
    });
}
