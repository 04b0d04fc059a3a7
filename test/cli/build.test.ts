/**
 * `npm run build` (also run by `npm ci`) compiles dist/, and bin/provisiond.js runs it while it is
 * newer than every source file, else the sources: an admin's edit under src/ is never shadowed by
 * an old build. Runs the real build (tsc) in the repository's dist/ (which .gitignore keeps out).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEnv } from './node-harness.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(repo, 'bin', 'provisiond.js');
const LIST_JS = join(repo, 'dist', 'cli', 'node', 'list.js');
const LIST_TS = join(repo, 'src', 'cli', 'node', 'list.ts');

// As an admin runs it: a clean environment. Not under tap (TAP=1 makes the bin run the sources),
// nor under tap's coverage hooks, which follow every child process they can see and would report
// dist/ beside src/ (env -i starts the CLI with nothing inherited).
const provisiond = (args: string[]) =>
  run('/usr/bin/env', ['-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, `HOME=${process.env.HOME ?? '/root'}`, process.execPath, BIN, ...args], { cwd: repo }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: e.stdout ?? '', err: e.stderr ?? '' }),
  );

t.test('the built dist/ runs the CLI, and an edited source wins over it', async (t) => {
  const env = cliEnv(t);
  const built = await run(process.execPath, [join(repo, 'scripts', 'build.mjs')], { cwd: repo, maxBuffer: 16 << 20 });
  t.match(built.stdout, /dist\/ ready/, 'npm run build reports dist/ ready');
  const native = (await import(join(repo, 'dist', 'native', 'index.js'))) as typeof import('../../src/native/index.js');
  t.ok(existsSync(native.spawnerPath()) && typeof native.nativeAddon().udpSocket === 'function', 'the build finds the native build (build/Release, made by npm ci)');

  const fromDist = await provisiond(['--config', env.config, 'node', 'list', '--json']);
  t.equal(fromDist.code, 0, 'node list runs from the build');
  t.same(JSON.parse(fromDist.out), [], 'and prints the (empty) registry');

  // Take one compiled module away: a bin that runs dist/ now fails; proof that it ran dist/.
  renameSync(LIST_JS, `${LIST_JS}.away`);
  t.teardown(() => {
    if (existsSync(`${LIST_JS}.away`)) renameSync(`${LIST_JS}.away`, LIST_JS);
  });
  const broken = await provisiond(['--config', env.config, 'node', 'list', '--json']);
  t.not(broken.code, 0, 'with a module missing from dist/ the built CLI fails: it was running dist/');

  // An admin edits a source file: the build is stale and the bin runs the sources instead.
  const now = new Date();
  utimesSync(LIST_TS, now, new Date(now.getTime() + 2000));
  const fromSources = await provisiond(['--config', env.config, 'node', 'list', '--json']);
  t.equal(fromSources.code, 0, 'after a source edit the CLI runs the sources, not the stale build');
  t.same(JSON.parse(fromSources.out), [], 'with the same answer');
  // Leave no half-broken build behind.
  rmSync(join(repo, 'dist', '.build-stamp'), { force: true });
});
