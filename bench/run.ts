/**
 * `npm run bench [NAME...]`: runs the benchmarks in bench/ one after the other (they share two cores;
 * running them together would measure each other). Each prints our figure, the peer's figure from
 * the same run, and the ratio, then replaces its own section of bench/RESULTS.md with that table,
 * the date, the machine, the load and the command (bench/lib/results.ts; a run with other than a
 * bench's default settings writes only with BENCH_WRITE=1).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`\n=== bench/${name}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, `${name}.ts`)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`bench/${name} exited ${r.status ?? r.signal}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
