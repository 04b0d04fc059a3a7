/**
 * The provisiond command. Each noun lives in its own folder (`cli/<noun>/`), registering its verbs
 * on the program; commands are thin: parse arguments, call the domain package, print.
 */
import { Command, CommanderError } from 'commander';
import { errorMessage, ProvisiondError } from '../util/errors.js';
import { registerCommands } from './commands.js';

/** Runs the CLI with `argv` (without node and script); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('provisiond')
    .description('PXE boot server and nodescript provisioning daemon for stateless HPC clusters')
    .option('-c, --config <file>', 'configuration file (default: $PROVISIOND_CONFIG, ./etc/provisiond.yaml, /etc/provisiond/provisiond.yaml)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });
  program.enablePositionalOptions(false);
  await registerCommands(program, argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with exit code 0 through the same path.
      return err.exitCode;
    }
    if (err instanceof ProvisiondError || err instanceof TypeError || isSystemError(err)) {
      process.stderr.write(`provisiond: ${errorMessage(err)}\n`);
      if (process.env.PROVISIOND_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
      return err instanceof ProvisiondError && 'exitCode' in err && typeof err.exitCode === 'number' ? err.exitCode : 1;
    }
    process.stderr.write(`provisiond: internal error: ${errorMessage(err)}\n${(err as Error)?.stack ?? ''}\n`);
    return 70;
  }
}

function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}
