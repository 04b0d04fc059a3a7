/** `provisiond module list | activate <mod> [target] | deactivate <mod> [target]`: nodescript modules, as in Perceus. */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { printJson, printTable } from '../node/output.js';
import { activateModule, deactivateModule, listModules } from '../../nodescript/modules.js';

export function register(program: Command): void {
  const mod = program.command('module').description('nodescript modules (nodescripts/modules/<module>/<state>/*): list, activate, deactivate');
  mod
    .command('list')
    .alias('ls')
    .description('list modules: name, states it has scripts for, where it is active, description')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const mods = await listModules(ctx.config().statedir);
      if (opts.json) return printJson(ctx.out, mods);
      printTable(ctx.out, ['MODULE', 'STATES', 'ACTIVE IN', 'DESCRIPTION'], mods.map((m) => [m.name, m.states.join(',') || '-', m.active.join(',') || '-', m.description]));
    });
  mod
    .command('activate')
    .description('link a module\'s scripts into a nodescripts folder: STATE/all (default init/all), STATE/group/G, STATE/node/N, STATE/vnfs/V')
    .argument('<module>', 'module name')
    .argument('[target]', 'where: init/all, init/group/G, init/node/N, init/vnfs/V', 'init/all')
    .action(async (name: string, target: string, _opts: unknown, cmd: Command) => {
      const ctx = cliContext(cmd);
      for (const l of await activateModule(ctx.config().statedir, name, target)) ctx.out.write(`linked ${l}\n`);
    });
  mod
    .command('deactivate')
    .description('remove a module\'s links (from the target, or from everywhere)')
    .argument('<module>', 'module name')
    .argument('[target]', 'where: init/all, init/group/G, ...; default everywhere')
    .action(async (name: string, target: string | undefined, _opts: unknown, cmd: Command) => {
      const ctx = cliContext(cmd);
      const removed = await deactivateModule(ctx.config().statedir, name, target);
      for (const l of removed) ctx.out.write(`removed ${l}\n`);
      if (removed.length === 0) ctx.out.write(`module ${name} was not active anywhere\n`);
    });
}
