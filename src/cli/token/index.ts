/**
 * `provisiond token create NAME --role viewer|operator|admin [--expires 90d]`, `token list`,
 * `token revoke NAME`: the admin API's bearer tokens, made on the master's shell. The secret is
 * printed once; the registry keeps only its sha256.
 */
import type { Command } from 'commander';
import { parseLifetime, createToken } from '../../registry/tokens.js';
import { ROLES, type ApiToken, type Role } from '../../registry/types.js';
import { UsageError } from '../../util/errors.js';
import { withRegistry } from '../node/shared.js';

const when = (ms: number | null, never = '-') => (ms === null ? never : new Date(ms).toISOString().replace('T', ' ').slice(0, 16));

function row(t: ApiToken, now: number): string[] {
  const state = t.revoked !== null ? `revoked ${when(t.revoked)}` : t.expires !== null && t.expires <= now ? 'expired' : 'active';
  return [t.name, t.role, when(t.created), when(t.lastUsed, 'never'), when(t.expires, 'never'), state];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function register(program: Command): void {
  const token = program.command('token').description('admin API tokens: create (the secret is shown once), list, revoke');
  token
    .command('create')
    .description('create a token and print its secret (once: only a hash is kept)')
    .argument('<name>', 'a name saying who or what uses it (vcl, opennebula, alice)')
    .requiredOption('--role <role>', `${ROLES.join(' | ')}: viewer reads; operator also power, bootdev, reload, console; admin everything`)
    .option('--expires <lifetime>', 'lifetime: 90d, 12h, 2w, 1y (default: never expires)')
    .action(async (name: string, opts: { role: string; expires?: string }, cmd: Command) => {
      if (!(ROLES as string[]).includes(opts.role)) throw new UsageError(`--role ${JSON.stringify(opts.role)}: expected ${ROLES.join(', ')}`);
      const expiresInMs = opts.expires === undefined ? null : parseLifetime(opts.expires);
      await withRegistry(cmd, async (reg, ctx) => {
        const { token: t, secret } = await createToken(reg, { name, role: opts.role as Role, expiresInMs });
        ctx.out.write(`${secret}\n`);
        ctx.err.write(`provisiond: token ${t.name} (${t.role}${t.expires ? `, expires ${when(t.expires)}` : ''}) created; this is the only time its secret is shown\n`);
      });
    });
  token
    .command('list')
    .description('tokens: name, role, created, last used, expires, state')
    .option('--json', 'JSON, one object per token')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        const tokens = await reg.listTokens();
        if (opts.json) {
          ctx.out.write(JSON.stringify(tokens.map(({ hash: _hash, ...t }) => t), null, 2) + '\n');
          return;
        }
        if (tokens.length === 0) {
          ctx.err.write('provisiond: no tokens (create one: provisiond token create NAME --role viewer|operator|admin)\n');
          return;
        }
        const now = Date.now();
        ctx.out.write(table([['NAME', 'ROLE', 'CREATED', 'LAST USED', 'EXPIRES', 'STATE'], ...tokens.map((t) => row(t, now))]));
      });
    });
  token
    .command('revoke')
    .description('revoke a token: refused from now on (it stays listed, for the audit log)')
    .argument('<name>', 'token name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        await reg.revokeToken(name);
        ctx.out.write(`revoked token ${name}\n`);
      });
    });
}
