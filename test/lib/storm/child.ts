/**
 * The storm simulator's process, started inside the client namespace by test/lib/storm/lab.ts:
 * `node child.ts '<SimOptions as JSON>'`. Progress on stderr, the report (and the lost nodes) as one
 * JSON object on stdout.
 */
import { simulateStorm, type SimOptions } from './sim.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as SimOptions;
const { report, results } = await simulateStorm(opts);
process.stdout.write(JSON.stringify({ report, lost: results.filter((r) => !r.ok).slice(0, 50) }) + '\n');
process.exit(0);
