/** `provisiond serve`: runs the daemon (DHCP, TFTP, HTTP) until SIGTERM/SIGINT. */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { runDaemon } from '../../daemon/run.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the provisioning daemon: DHCP, TFTP and HTTP on the provisioning network')
    .option('--log-format <format>', 'auto (readable on a terminal, JSON otherwise), pretty or json')
    .option('--log-level <level>', 'debug, info, warn or error')
    .action(async (opts: { logFormat?: 'auto' | 'pretty' | 'json'; logLevel?: 'debug' | 'info' | 'warn' | 'error' }, cmd: Command) => {
      const ctx = cliContext(cmd);
      await runDaemon({ config: ctx.config(), logFormat: opts.logFormat, logLevel: opts.logLevel });
    });
}
