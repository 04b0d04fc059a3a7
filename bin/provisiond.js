#!/usr/bin/env node
// Entry point of the provisiond command: runs the compiled dist/, which `npm ci` builds (the
// `prepare` script) and `npm run build` rebuilds after an edit of src/. Nothing is compiled or
// type-stripped at run time; the tests rebuild dist/ before they run (.taprc `before`).
let main;
try {
  ({ main } = await import('../dist/cli/main.js'));
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    const repo = new URL('..', import.meta.url).pathname;
    process.stderr.write(`provisiond is not built: run \`npm ci\` (or \`npm run build\`) in ${repo}\n`);
    process.exit(1);
  }
  throw err;
}
process.exitCode = await main(process.argv.slice(2));
