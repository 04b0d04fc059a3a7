/**
 * `provisiond node timeline <NODE>`: the boot of one node step by step, from what the servers saw
 * (DHCP, TFTP, HTTP transfers, each nodescript) and what the node reported, with the time of each
 * step and, when the boot failed, the step and the reason. NODE is a name or a hardware address
 * (an unregistered machine has a timeline too).
 */
import type { Command } from 'commander';
import type { TimelineEvent } from '../../registry/types.js';
import { UsageError } from '../../util/errors.js';
import { parseSince } from '../../nodes/since.js';
import { parseMac } from '../../util/mac.js';
import { printJson } from './output.js';
import { withRegistry } from './shared.js';

export { parseSince } from '../../nodes/since.js';

function clock(t: number): string {
  const d = new Date(t);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** The printed timeline: one line per step, then the verdict. Pure, for tests. */
export function formatTimeline(title: string, events: readonly TimelineEvent[]): string {
  if (events.length === 0) return `${title}: no boot steps recorded yet\n`;
  const t0 = events[0]!.time;
  const rows = events.map((e) => [clock(e.time), `+${((e.time - t0) / 1000).toFixed(3)}s`, e.ok ? ' ' : '!', e.source, e.stage, e.msg ?? '']);
  const w = [0, 1, 3, 4].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)} ${r[2]} ${r[3]!.padEnd(w[2]!)}  ${r[4]!.padEnd(w[3]!)}  ${r[5]}`.trimEnd());
  const last = events[events.length - 1]!;
  const failures = events.filter((e) => !e.ok);
  const failure = failures[failures.length - 1];
  const why = (e: TimelineEvent) => `${clock(e.time)} in ${e.source} ${e.stage}${e.msg ? `: ${e.msg}` : ''}`;
  let verdict: string;
  if (last.stage === 'ready') verdict = `up: ready since ${clock(last.time)}${failure ? `, after ${failures.length} failed step(s), the first at ${why(failures[0]!)}` : ''}`;
  else if (failure) verdict = `failed at ${why(failure)}`;
  else verdict = `last step: ${last.source} ${last.stage} at ${clock(last.time)}`;
  return `${title}: ${events.length} steps over ${((last.time - t0) / 1000).toFixed(1)} s\n${lines.join('\n')}\n${verdict}\n`;
}

export function register(node: Command): void {
  node
    .command('timeline')
    .description('show the boot timeline of a node: every step with its time, and why it failed')
    .argument('<node>', 'node name or hardware address')
    .option('--since <when>', 'only steps since then: 90s, 15m, 2h, 1d or a date')
    .option('-n, --limit <count>', 'only the last COUNT steps', '200')
    .option('--json', 'print JSON')
    .action(async (which: string, opts: { since?: string; limit: string; json?: boolean }, cmd: Command) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit <= 0) throw new UsageError(`bad --limit ${JSON.stringify(opts.limit)}: a positive whole number`);
      await withRegistry(cmd, async (reg, ctx) => {
        const node = (await reg.getNode(which)) ?? (parseMac(which) ? await reg.getNodeByNodeid(parseMac(which)!) : null);
        const nodeid = node?.nodeid ?? parseMac(which);
        if (!nodeid) throw new UsageError(`no node named ${JSON.stringify(which)} (give a node name or a hardware address)`);
        const since = opts.since ? parseSince(opts.since) : undefined;
        // The registry returns the oldest first; keep the latest `limit` steps.
        const all = await reg.listEvents(nodeid, { since });
        const events = all.slice(-limit);
        if (opts.json) return printJson(ctx.out, { node: node?.name ?? null, nodeid, events });
        ctx.out.write(formatTimeline(node ? `${node.name} (${nodeid})` : `${nodeid} (not registered)`, events));
      });
    });
}
