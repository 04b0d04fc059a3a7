/** `provisiond script lint [<state>]`: checks the nodescripts tree for the mistakes Perceus's docs warn about. */
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { lintTree } from '../../nodescript/lint.js';
import { cliContext } from '../context.js';

export function register(script: Command): void {
  script
    .command('lint')
    .description('check the nodescripts tree: power commands run on the master, $VAR expanding on the master, silent or skipped scripts, bad links and names')
    .argument('[state]', 'only this provisionary state (default: every state, and the modules)')
    .option('--dir <dir>', 'the nodescripts tree to check (default: <statedir>/nodescripts)')
    .addHelpText('after', '\nPrints FILE:LINE: error|warning: message. Exit status 1 when there are errors (warnings alone exit 0).')
    .action(async (state: string | undefined, opts: { dir?: string }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const config = ctx.config();
      const root = opts.dir ? resolve(opts.dir) : resolve(config.statedir, 'nodescripts');
      const findings = await lintTree(root, config.statedir, state);
      const show = (f: string) => {
        const r = relative(process.cwd(), f);
        return r.startsWith('..') ? f : r;
      };
      for (const f of findings) ctx.out.write(`${show(f.file)}${f.line > 0 ? `:${f.line}` : ''}: ${f.severity}: ${f.message}\n`);
      const errors = findings.filter((f) => f.severity === 'error').length;
      const warnings = findings.length - errors;
      ctx.err.write(`provisiond: ${show(root)}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`);
      if (errors > 0) process.exitCode = 1;
    });
}
