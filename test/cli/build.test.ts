/**
 * The command runs the compiled dist/ (built by `npm ci` and `npm run build`), never the sources:
 * nothing is compiled at run time. Checked on a copy of bin/ and dist/ (the repository's own dist/
 * is what every other test runs, concurrently), with the repository's node_modules.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEnv } from './node-harness.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));

// As an admin runs it: a clean environment, without tap's coverage hooks (env -i).
const provisiond = (root: string, args: string[]) =>
  run('/usr/bin/env', ['-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, `HOME=${process.env.HOME ?? '/root'}`, process.execPath, join(root, 'bin', 'provisiond.js'), ...args], { cwd: root }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: e.stdout ?? '', err: e.stderr ?? '' }),
  );

t.test('bin/provisiond.js runs dist/, and says so when there is no build', async (t) => {
  const env = cliEnv(t);
  // tap built dist/ before the tests (.taprc `before`): it is there and newer than the sources it came from.
  const mainJs = join(repo, 'dist', 'cli', 'main.js');
  t.ok(existsSync(mainJs), 'dist/ is built');
  t.ok(statSync(mainJs).mtimeMs >= statSync(join(repo, 'src', 'cli', 'main.ts')).mtimeMs - 1000, 'and not older than its source');
  const code = readFileSync(join(repo, 'bin', 'provisiond.js'), 'utf8').replace(/^\s*\/\/.*$/gm, '');
  t.same([...code.matchAll(/import\(\s*'([^']+)'/g)].map((m) => m[1]), ['../dist/cli/main.js'], 'the bin imports the build and nothing else: no loader, no sources');
  t.notMatch(code, /process\.env/, 'and reads no environment switch');

  const root = mkdtempSync(join(tmpdir(), 'pvd-build-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(join(repo, 'bin'), join(root, 'bin'), { recursive: true });
  cpSync(join(repo, 'dist'), join(root, 'dist'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(root, 'package.json'));
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));

  const fromDist = await provisiond(root, ['--config', env.config, 'node', 'list', '--json']);
  t.equal(fromDist.code, 0, 'node list runs from the build');
  t.same(JSON.parse(fromDist.out), [], 'and prints the (empty) registry');

  // Take one compiled module away: the CLI now fails, proof that it ran dist/ and nothing else.
  rmSync(join(root, 'dist', 'cli', 'node', 'list.js'));
  const broken = await provisiond(root, ['--config', env.config, 'node', 'list', '--json']);
  t.not(broken.code, 0, 'with a module missing from dist/ the CLI fails: there is no other path');

  rmSync(join(root, 'dist'), { recursive: true });
  const none = await provisiond(root, ['--help']);
  t.equal(none.code, 1, 'without dist/ the command exits 1');
  t.match(none.err, /provisiond is not built: run `npm ci` \(or `npm run build`\)/, 'and says how to build it');
  t.notMatch(none.err, /\n\s+at /, 'without a stack trace');
});
