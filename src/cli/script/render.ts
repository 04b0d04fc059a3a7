/** `provisiond script render <state> <node>`: prints exactly what the node would receive. */
import { once } from 'node:events';
import type { Command } from 'commander';
import type { Logger } from '../../log/logger.js';
import { createNodescriptEngine, engineOptionsFromConfig, masterContextFromConfig } from '../../nodescript/index.js';
import { type NodeOptions, nodeOptions, scriptTarget } from './node-context.js';

/** Warnings, errors and the scripts' stderr as lines on `err`: the admin running render wants to see them. */
function renderLogger(err: NodeJS.WritableStream, fields: Record<string, unknown> = {}): Logger {
  const line = (f: Record<string, unknown>, msg: string) => {
    const all = { ...fields, ...f };
    err.write(all.stream === 'stderr' ? `${String(all.script)}: ${msg}\n` : `provisiond: ${msg}\n`);
  };
  return {
    debug() {},
    info: (f, msg) => {
      if ({ ...fields, ...f }.stream === 'stderr') line(f, msg);
    },
    warn: line,
    error: line,
    child: (f) => renderLogger(err, { ...fields, ...f }),
  };
}

export function register(script: Command): void {
  nodeOptions(
    script
      .command('render')
      .description("print exactly the script a node receives in a state: runs the node's master-side nodescripts now")
      .argument('<state>', 'provisionary state (init, ready, ...)')
      .argument('<node>', 'node name (or hardware address) in the registry'),
  )
    .option('--master <host:port>', 'VNFSMASTER the node is told (default: config vnfs.master, else master:http.port)')
    .addHelpText('after', '\nThe script goes to stdout; the scripts\' stderr and failures go to stderr. Exit status 1 when a script failed.')
    .action(async (state: string, name: string, opts: NodeOptions & { master?: string }, cmd: Command) => {
      const { node, config, ctx, unregistered } = await scriptTarget(cmd, state, name, opts);
      if (unregistered && opts.registry !== false) ctx.err.write(`provisiond: ${name} is not in the registry: rendering for the node the options describe\n`);
      const master = masterContextFromConfig(config);
      if (opts.master) master.vnfsMaster = opts.master;
      const engine = createNodescriptEngine({ ...engineOptionsFromConfig(config), logger: renderLogger(ctx.err) });
      let failed = 0;
      // A reader that goes away (`| head`) ends the render quietly and kills what still runs.
      const ac = new AbortController();
      const onOutError = (err: NodeJS.ErrnoException) => ac.abort(err);
      ctx.out.on('error', onOutError);
      try {
        const stream = engine.render(node, master, { signal: ac.signal, onScript: (r) => void (r.ok || r.kind === 'skipped' || failed++) });
        for await (const chunk of stream) {
          if (!ctx.out.write(chunk)) await Promise.race([once(ctx.out, 'drain'), once(ac.signal, 'abort')]);
          if (ac.signal.aborted) break;
        }
      } catch (err) {
        if (!(ac.signal.aborted && (ac.signal.reason as NodeJS.ErrnoException)?.code === 'EPIPE')) throw err;
      } finally {
        ctx.out.off('error', onOutError);
        await engine.close();
      }
      if ((ac.signal.reason as NodeJS.ErrnoException | undefined)?.code === 'EPIPE') return;
      if (failed > 0) process.exitCode = 1;
    });
}
