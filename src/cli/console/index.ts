/**
 * `provisiond console <NODE>`: attaches this terminal to the node's serial console (ipmitool SOL,
 * the QEMU serial, or the exec driver's `console` program), raw mode, `~.` to detach. The session is
 * logged to `<statedir>/var/log/console/<NODE>.log` while it is open.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { EscapeFilter, openLoggedConsole } from '../../power/console.js';
import { UsageError } from '../../util/errors.js';
import { commandLogger, driverFor, selectNodes, withRegistry } from '../power/common.js';

export function register(program: Command): void {
  program
    .command('console <node>')
    .description("attach the terminal to the node's serial console (~. detaches); logged to <statedir>/var/log/console/<NODE>.log")
    .action(async (name: string, _flags: unknown, cmd: Command) => {
      const ctx = cliContext(cmd);
      const config = ctx.config();
      const logger = commandLogger(config);
      const node = await withRegistry(ctx, logger, async (registry) => {
        const nodes = await selectNodes(registry, config, [name]);
        if (nodes.length !== 1) throw new UsageError(`console: ${JSON.stringify(name)} names ${nodes.length} nodes; give one node`);
        return nodes[0]!;
      });
      const session = await openLoggedConsole(driverFor(node, config), node.name, config.statedir, safeUser());
      await attachTerminal(session, node.name);
    });
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Wires stdin/stdout to the session until `~.` or the far end closes. */
async function attachTerminal(session: Awaited<ReturnType<typeof openLoggedConsole>>, node: string): Promise<void> {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  process.stderr.write(`[provisiond: ${node} via ${session.via}; ~. to detach; log ${session.logFile}]\r\n`);
  const filter = new EscapeFilter();
  // The node's terminal (a pty: ipmitool SOL, an exec console) follows this one's size.
  const out = process.stdout;
  const fit = () => out.isTTY && session.resize?.(out.columns, out.rows);
  fit();
  out.on('resize', fit);
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (why: string) => {
      if (done) return;
      done = true;
      stdin.off('data', onInput);
      out.off('resize', fit);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      session.close().finally(() => {
        process.stderr.write(`\r\n[provisiond: ${why}]\r\n`);
        resolve();
      });
    };
    const onInput = (d: Buffer) => {
      const { forward, detach } = filter.feed(d);
      if (forward.length) session.stream.write(forward);
      if (detach) finish(`detached from ${node}`);
    };
    if (raw) stdin.setRawMode(true);
    stdin.on('data', onInput);
    stdin.on('end', () => finish(`input closed, detached from ${node}`));
    stdin.resume();
    session.stream.on('data', (d: Buffer) => process.stdout.write(d));
    session.stream.on('end', () => finish(`console of ${node} closed by the far end`));
    session.stream.on('error', (e: Error) => finish(`console of ${node}: ${e.message}`));
  });
}
