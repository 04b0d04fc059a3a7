// tap's `before` module (.taprc): the tests start bin/provisiond.js, which runs dist/; build it
// from the current sources first so a test never runs a stale build.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const build = fileURLToPath(new URL('build.mjs', import.meta.url));
const r = spawnSync(process.execPath, [build, '--quiet'], { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } });
process.exit(r.status ?? 1);
