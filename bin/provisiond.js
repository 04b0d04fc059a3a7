#!/usr/bin/env node
// Entry point of the provisiond command. It runs the compiled dist/ when `npm ci` (or
// `npm run build`) built it and no file under src/ changed since; otherwise the TypeScript sources
// through tsx's loader, so a source checkout needs no build step and an edit is never shadowed by
// an old build. PROVISIOND_TSX=1 always runs the sources (tests do: their coverage is of src/).
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const repo = fileURLToPath(new URL('..', import.meta.url));

/** The build stamp is newer than every file under src/. */
function distIsFresh() {
  let built;
  try {
    built = statSync(join(repo, 'dist', '.build-stamp')).mtimeMs;
  } catch {
    return false;
  }
  const src = join(repo, 'src');
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    if (statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs > built) return false;
  }
  return true;
}

/**
 * Registers a loader for the TypeScript sources: tsx, or under tap (the tests) when this process's
 * coverage is collected, the loader tap's own test processes use, because tap merges this process's
 * coverage with theirs and tsx's whitespace-minified output would collapse each file to one line in
 * the report (test/ts-child.ts). tsx starts faster (its transforms are cached).
 */
async function loadTypeScript() {
  if (process.env.TAP === '1' && process.env._TAPJS_PROCESSINFO_COVERAGE_ !== '0') {
    try {
      process.setSourceMapsEnabled(true);
      await import('@tapjs/typescript/import');
      return;
    } catch {
      // tap is a dev dependency: without it, tsx
    }
  }
  const { register } = await import('tsx/esm/api');
  register();
}

const fromSources = process.env.PROVISIOND_TSX === '1' || process.env.TAP === '1' || !distIsFresh();
let main;
if (fromSources) {
  await loadTypeScript();
  ({ main } = await import('../src/cli/main.ts'));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
