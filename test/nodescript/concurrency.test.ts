import t from 'tap';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodescriptEngine } from '../../src/nodescript/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { makeStatedir } from '../lib/statedir.js';
import { collect, master, node } from './helpers.js';

// Each run registers itself in $STATEDIR/running, counts who else is there, and leaves.
const COUNTER = `#!/bin/sh
touch "$STATEDIR/running/$$"
ls "$STATEDIR/running" | wc -l >> "$STATEDIR/counts"
sleep 0.02
rm -f "$STATEDIR/running/$$"
echo "echo $NODENAME ok"
`;

t.test('200 concurrent renders with the limit at 4 never run more than 4 processes at once', async (t) => {
  const dir = makeStatedir(t, { 'nodescripts/init/all/10-count': COUNTER, 'nodescripts/init/all/20-count': COUNTER });
  mkdirSync(join(dir, 'running'));
  const e = createNodescriptEngine({ statedir: dir, concurrency: 4, logger: silentLogger() });
  t.teardown(() => e.close());
  const outs = await Promise.all(Array.from({ length: 200 }, (_, i) => collect(e.render(node({ nodename: `n${i}` }), master(dir)))));
  outs.forEach((o, i) => {
    if (!o.toString().includes(`echo n${i} ok\n# 20-count (all)\necho n${i} ok\n# NODESCRIPT END\n`)) t.fail(`render ${i} is incomplete`);
  });
  const counts = readFileSync(join(dir, 'counts'), 'utf8').trim().split('\n').map(Number);
  t.equal(counts.length, 400, 'every script ran');
  const max = Math.max(...counts);
  t.ok(max <= 4, `at most 4 at once (saw ${max})`);
  t.ok(max >= 2, `they did run in parallel (saw ${max})`);
  t.equal(e.running, 0);
});

t.test('waiting requests are served first come, first served', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-a': '#!/bin/sh\necho "$NODENAME 10" >> "$STATEDIR/order"\n',
    'nodescripts/init/all/20-b': '#!/bin/sh\necho "$NODENAME 20" >> "$STATEDIR/order"\n',
    'nodescripts/init/all/30-c': '#!/bin/sh\necho "$NODENAME 30" >> "$STATEDIR/order"\n',
  });
  const e = createNodescriptEngine({ statedir: dir, concurrency: 1, logger: silentLogger() });
  t.teardown(() => e.close());
  await Promise.all(['a', 'b', 'c'].map((n) => collect(e.render(node({ nodename: n }), master(dir)))));
  t.equal(readFileSync(join(dir, 'order'), 'utf8'), 'a 10\na 20\na 30\nb 10\nb 20\nb 30\nc 10\nc 20\nc 30\n', 'the oldest request finishes first');
});
