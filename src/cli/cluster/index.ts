/**
 * `provisiond cluster status`: the servers sharing the configured PostgreSQL database, from their
 * heartbeats (src/registry/postgres/cluster.ts): address, version, last heartbeat, lag, leader;
 * then the current image of each VNFS (docs/postgresql.md, VNFS images across servers): who built
 * it, which servers hold it and which still serve another.
 */
import type { Command } from 'commander';
import { ProvisiondError } from '../../util/errors.js';
import { openRegistry } from '../../registry/open.js';
import { cliContext } from '../context.js';
import { cliLogger } from '../node/shared.js';

export function register(program: Command): void {
  const cluster = program.command('cluster').description('several servers on one PostgreSQL database: who is there, who leads');
  cluster
    .command('status')
    .description('every server of the database: address, version, last heartbeat, lag, and the leader of singleton work; the current image of each VNFS and who holds it')
    .option('--json', 'JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const config = ctx.config();
      const reg = await openRegistry(config, cliLogger(ctx.err));
      try {
        if (!reg.clusterStatus) throw new ProvisiondError(`${config.source}: database: ${config.database.split(':')[0]} has one server; cluster status needs database: postgres://...`);
        const s = await reg.clusterStatus();
        const images = [];
        for (const rec of await reg.listImages()) images.push({ ...rec, holders: await reg.imageHolders(rec.vnfs) });
        if (opts.json) {
          ctx.out.write(`${JSON.stringify({ ...s, images })}\n`);
          return;
        }
        const rows = [['SERVER', 'ADDRESS', 'VERSION', 'HEARTBEAT', 'LAG', 'LEADER']];
        for (const v of s.servers) rows.push([v.id, v.address, v.version, v.heartbeat.toISOString(), `${(v.lagMs / 1000).toFixed(1)}s`, v.leader ? `yes (generation ${s.leader?.generation})` : '']);
        table(ctx.out, rows);
        if (!s.servers.some((v) => v.leader)) ctx.out.write(`no leader${s.leader ? ` (last: ${s.leader.server}, generation ${s.leader.generation}, ${(s.leader.lagMs / 1000).toFixed(1)}s ago)` : ''}\n`);
        if (images.length === 0) return;
        const irows = [['VNFS', 'SHA256', 'BUILT BY', 'PUBLISHED', 'HELD BY', 'OTHER IMAGE ON']];
        for (const i of images) {
          const held = i.holders.filter((h) => h.sha256 === i.sha256).map((h) => h.server);
          const other = i.holders.filter((h) => h.sha256 !== i.sha256).map((h) => `${h.server} (${h.sha256.slice(0, 12)})`);
          irows.push([i.vnfs, i.sha256.slice(0, 12), i.builder, new Date(i.builtAt).toISOString(), held.join(', ') || '-', other.join(', ')]);
        }
        ctx.out.write('\n');
        table(ctx.out, irows);
      } finally {
        await reg.close();
      }
    });
}

/** Columns padded to their widest cell, the last one not. */
function table(out: NodeJS.WritableStream, rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) out.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()}\n`);
}
