/**
 * Auto-registration from several processes at the same instant (the daemon and `node add`, or two
 * daemons sharing a database during an upgrade): every machine gets its own name.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import { TS_NODE_ARGS } from '../ts-child.js';

const run = promisify(execFile);

t.test('4 processes registering 50 machines each at once get 200 distinct names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-registry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'provisiond.db');
  SqliteRegistry.open({ path, logger: silentLogger() }).close();
  const startAt = Date.now() + 4000; // past the children's start-up, so that they really overlap
  const children = [0, 1, 2, 3].map((k) =>
    run(process.execPath, [...TS_NODE_ARGS, join(import.meta.dirname, 'fixtures', 'autoregister.ts'), path, String(k * 50), '50', String(startAt)], { timeout: 60_000 }),
  );
  const names = (await Promise.all(children)).flatMap((c) => JSON.parse(c.stdout) as string[]);
  t.equal(names.length, 200);
  t.equal(new Set(names).size, 200, 'no name given twice');
  const reg = SqliteRegistry.open({ path, logger: silentLogger() });
  t.teardown(() => reg.close());
  const nodes = await reg.listNodes();
  t.equal(nodes.length, 200, '200 nodes in the database');
  t.same(nodes.map((n) => n.name).sort(), Array.from({ length: 200 }, (_, i) => `n${String(i).padStart(4, '0')}`), 'n0000..n0199, no gap');
});
