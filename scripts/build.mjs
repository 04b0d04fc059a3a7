#!/usr/bin/env node
// Compiles src/ to dist/ (tsc -p tsconfig.build.json, incremental: a rebuild after a small edit
// takes a second or two) and copies the non-TypeScript sources beside the modules that read them.
// bin/provisiond.js runs dist/ only. Run by `npm ci` (the `prepare` script), by `npm run build`
// after an edit, and by tap before the tests (.taprc `before`), so the tests run what admins run.
//
//   node scripts/build.mjs            build; exit 1 when tsc reports errors
//   node scripts/build.mjs --prepare  as run by `npm ci`/`npm install`: also exit 1, with the reason
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const src = join(repo, 'src');
const dist = join(repo, 'dist');
const quiet = process.argv.includes('--quiet');

function fail(why) {
  process.stderr.write(`provisiond build: ${why}\n`);
  process.exit(1);
}

const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  // A production install (--omit=dev) of a tree that was built elsewhere needs no compiler.
  if (existsSync(join(dist, 'cli', 'main.js'))) process.exit(0);
  fail('typescript is not installed and dist/ is missing: run `npm ci` (with the dev dependencies), then `npm run build`');
}
const r = spawnSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json')], { cwd: repo, stdio: 'inherit' });
if (r.status !== 0) fail(`tsc exited with ${r.status ?? r.signal}: dist/ is not up to date with src/`);

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  // C sources are built by node-gyp into build/Release (npm ci), not shipped in dist/.
  if (!entry.isFile() || /\.(ts|c|h)$/.test(entry.name)) continue;
  const from = join(entry.parentPath ?? entry.path, entry.name);
  const to = join(dist, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  copied++;
}
if (!quiet) process.stdout.write(`provisiond build: dist/ ready (${copied} non-TypeScript files copied)\n`);
