#!/usr/bin/env node
// Compiles src/ to dist/ (tsc -p tsconfig.build.json), copies the non-TypeScript sources beside
// the modules that read them (the C helpers), and writes dist/.build-stamp. bin/provisiond.js runs
// dist/ only while that stamp is newer than every file under src/, so an edited source tree is
// never shadowed by an old build: it falls back to running the sources through tsx.
//
//   node scripts/build.mjs            build; exit 1 when tsc reports errors (no stamp then)
//   node scripts/build.mjs --prepare  as run by `npm ci`/`npm install`: a failed or impossible build
//                                     (no tsc: production install) only warns; the CLI runs the sources
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const src = join(repo, 'src');
const dist = join(repo, 'dist');
const stamp = join(dist, '.build-stamp');
const prepare = process.argv.includes('--prepare');

function fail(why) {
  rmSync(stamp, { force: true });
  if (prepare) {
    process.stderr.write(`provisiond build: ${why}; the CLI will run the TypeScript sources (slower start)\n`);
    process.exit(0);
  }
  process.stderr.write(`provisiond build: ${why}\n`);
  process.exit(1);
}

const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) fail('typescript is not installed (npm ci installs it)');
rmSync(stamp, { force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json')], { cwd: repo, stdio: 'inherit' });
if (r.status !== 0) fail(`tsc exited with ${r.status ?? r.signal}`);

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts')) continue;
  const from = join(entry.parentPath ?? entry.path, entry.name);
  const to = join(dist, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  copied++;
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
process.stdout.write(`provisiond build: dist/ ready (${copied} non-TypeScript files copied)\n`);
