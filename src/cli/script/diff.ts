/**
 * `provisiond script diff --server URL`: where this server's nodescripts tree (the statedir of the
 * config) differs from another server's, read through that server's admin API (`GET
 * /api/v1/nodescripts`). Servers sharing one database each serve their own tree: this shows the
 * scripts one has and not the other, those whose content or mode differ.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { diffTrees, formatTreeDiff, listTree, type TreeEntry } from '../../nodescript/tree.js';
import { errorMessage, ProvisiondError } from '../../util/errors.js';
import { cliContext } from '../context.js';

/** Trouble (not a difference): exit status 2, as diff(1). */
class DiffTroubleError extends ProvisiondError {
  readonly exitCode = 2;
}

export function register(script: Command): void {
  script
    .command('diff')
    .description("where this server's nodescripts tree differs from another server's: scripts only on one side, content or mode changed")
    .requiredOption('--server <url>', "the other server's admin API, http[s]://HOST:PORT")
    .option('--token-file <file>', 'a file holding an API token of the other server (a viewer token is enough); default $PROVISIOND_TOKEN_FILE, else $PROVISIOND_TOKEN')
    .option('--json', 'the differences as JSON')
    .addHelpText('after', '\nExit status 0 when the trees are the same, 1 when they differ, 2 on trouble (as diff).')
    .action(async (opts: { server: string; tokenFile?: string; json?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const token = tokenFrom(opts.tokenFile, process.env);
      const base = apiBase(opts.server);
      const [here, there] = await Promise.all([listTree(resolve(ctx.config().statedir, 'nodescripts')), remoteTree(base, token)]);
      const diffs = diffTrees(here, there);
      if (opts.json) ctx.out.write(`${JSON.stringify({ server: base.origin, differences: diffs }, null, 2)}\n`);
      else ctx.out.write(formatTreeDiff(diffs, { here: 'here', there: base.host }));
      if (diffs.length > 0) process.exitCode = 1;
    });
}

/** The token: --token-file, else $PROVISIOND_TOKEN_FILE, else $PROVISIOND_TOKEN (the adapters' names). */
function tokenFrom(file: string | undefined, env: NodeJS.ProcessEnv): string {
  const path = file ?? env.PROVISIOND_TOKEN_FILE;
  if (path) {
    try {
      const token = readFileSync(path, 'utf8').split('\n')[0]!.trim();
      if (token !== '') return token;
    } catch (err) {
      throw new DiffTroubleError(`script diff: reading the token file ${path}: ${errorMessage(err)}`);
    }
    throw new DiffTroubleError(`script diff: the token file ${path} is empty`);
  }
  if (env.PROVISIOND_TOKEN) return env.PROVISIOND_TOKEN;
  throw new DiffTroubleError("script diff: no API token for the other server: --token-file FILE, $PROVISIOND_TOKEN_FILE or $PROVISIOND_TOKEN (make one there with 'provisiond token create NAME --role viewer')");
}

function apiBase(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new DiffTroubleError(`script diff: --server ${JSON.stringify(server)}: expected http://HOST:PORT or https://HOST:PORT`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DiffTroubleError(`script diff: --server ${server}: expected http:// or https://`);
  return url;
}

async function remoteTree(base: URL, token: string): Promise<TreeEntry[]> {
  const url = new URL('/api/v1/nodescripts', base);
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new DiffTroubleError(`script diff: cannot reach ${base.origin}: ${errorMessage(cause ?? err)}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let reason = text.slice(0, 200);
    try {
      reason = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? reason;
    } catch {
      // Not the API's JSON: shown as it came.
    }
    throw new DiffTroubleError(`script diff: ${url.href}: ${res.status} ${reason}`);
  }
  try {
    const body = JSON.parse(text) as { items?: unknown };
    if (!Array.isArray(body.items)) throw new Error('no items');
    return body.items as TreeEntry[];
  } catch (err) {
    throw new DiffTroubleError(`script diff: ${url.href}: not a nodescripts tree (${errorMessage(err)}): is it a provisiond admin API?`);
  }
}
