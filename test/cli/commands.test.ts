/**
 * The command line loads only the noun it runs (start-up time of every admin command), yet help
 * and mistakes still see every noun.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { nounOf } from '../../src/cli/commands.js';
import { cliEnv } from './node-harness.js';
import { TS_NODE_ARGS } from '../ts-child.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/provisiond.js', import.meta.url));
const NOUNS = ['serve', 'power', 'reload', 'console', 'node', 'group', 'initramfs', 'vnfs', 'script', 'module', 'token', 'db'];

t.test('the noun is the first word that is not a root option or its value', async (t) => {
  t.equal(nounOf(['node', 'list']), 'node');
  t.equal(nounOf(['-c', 'x.yaml', 'group', 'list']), 'group');
  t.equal(nounOf(['--config', 'node', 'vnfs', 'list']), 'vnfs', 'a config file named like a noun is not the noun');
  t.equal(nounOf(['--config=x.yaml', 'script', 'render']), 'script');
  t.equal(nounOf(['--help']), null);
  t.equal(nounOf([]), null);
});

t.test('--help lists every noun; an unknown noun is refused with the list in reach', async (t) => {
  const env = cliEnv(t);
  const help = await env.run(['--help']);
  t.equal(help.code, 0);
  for (const noun of NOUNS) t.match(help.out, new RegExp(`^  ${noun}\\b`, 'm'), `help shows ${noun}`);
  const typo = await env.run(['nodes', 'list']);
  t.not(typo.code, 0, 'a mistyped noun fails');
  t.match(typo.err + typo.out, /unknown command 'nodes'.*\n.*(Did you mean node|--help)/s, 'and says what is wrong');
});

t.test('a command does not load the modules of other nouns (node list never loads the daemon or express)', async (t) => {
  const env = cliEnv(t);
  // The CLI in a fresh process, then the CommonJS modules it loaded (express, node-pty and
  // pino-pretty are CommonJS).
  const { stdout } = await run(process.execPath, [
    ...TS_NODE_ARGS,
    '-e',
    `const { main } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url)))});
     const code = await main(['--config', ${JSON.stringify(env.config)}, 'node', 'list', '--json']);
     const { createRequire } = await import('node:module');
     const req = createRequire(import.meta.url);
     const loaded = Object.keys(req.cache).filter((k) => /node_modules\\/(express|node-pty|pino-pretty)\\//.test(k));
     console.log(JSON.stringify({ code, loaded }));`,
  ], { cwd: fileURLToPath(new URL('../..', import.meta.url)) });
  const last = JSON.parse(stdout.trim().split('\n').pop()!) as { code: number; loaded: string[] };
  t.equal(last.code, 0, 'node list ran');
  t.same(last.loaded, [], 'express, node-pty and pino-pretty were not loaded');
  const serveHelp = await run(process.execPath, [BIN, 'serve', '--help']);
  t.match(serveHelp.stdout, /Usage: provisiond serve/, 'serve still has its own help');
});
