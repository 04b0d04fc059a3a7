/**
 * `provisiond db status`, `db migrate`, `db copy sqlite:PATH postgres://...`: the registry's schema
 * version, its upgrade, and moving a site from SQLite to PostgreSQL (logic in src/registry/db.ts).
 */
import type { Command } from 'commander';
import { copyRegistry, migrateRegistry, schemaStatus, type SchemaStatus } from '../../registry/db.js';
import { cliContext } from '../context.js';
import { cliLogger } from '../node/shared.js';

const describe = (s: SchemaStatus): string =>
  `${s.backend} ${s.database}: schema version ${s.version} (this provisiond: ${s.latest}): ` +
  { empty: 'no schema yet (created at the first start or by db migrate)', behind: 'behind, run provisiond db migrate', current: 'current', newer: 'written by a newer provisiond: upgrade provisiond' }[s.state];

export function register(program: Command): void {
  const db = program.command('db').description('the registry database: schema status, migrate, copy SQLite to PostgreSQL');
  db.command('status')
    .description('the schema version of the configured database, against the one this provisiond writes')
    .option('--json', 'JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const s = await schemaStatus(ctx.config());
      ctx.out.write(opts.json ? `${JSON.stringify(s)}\n` : `${describe(s)}\n`);
      if (s.state === 'newer' || s.state === 'behind') process.exitCode = 1;
    });
  db.command('migrate')
    .description('upgrade the configured database to the schema of this provisiond (the daemon also does at start)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = cliContext(cmd);
      const { before, after } = await migrateRegistry(ctx.config(), cliLogger(ctx.err));
      ctx.out.write(before.version === after.version ? `${describe(after)}\n` : `${after.backend} ${after.database}: schema version ${before.version} -> ${after.version}\n`);
    });
  db.command('copy')
    .description('copy a whole SQLite registry into an empty PostgreSQL database (nodes, groups, leases, timeline, tasks, tokens, audit)')
    .argument('<from>', 'sqlite:PATH (relative to the statedir), e.g. sqlite:var/provisiond.db')
    .argument('<to>', 'postgres://USER@HOST:PORT/DB (an empty database; the password as for the database key)')
    .action(async (from: string, to: string, _opts: unknown, cmd: Command) => {
      const ctx = cliContext(cmd);
      const counts = await copyRegistry(ctx.config(), from, to, cliLogger(ctx.err));
      ctx.out.write(`copied ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}\n`);
    });
}
