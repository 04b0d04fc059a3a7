#!/usr/bin/env node
// Builds the native code (binding.gyp: the addon, the nodescript spawner, the TFTP pump) with
// node-gyp. Run by `npm ci` / `npm install` (package.json "install") and `npm run build:native`.
// A failed build fails the install, with what to check, rather than leaving a daemon that cannot
// start: nothing is compiled at run time.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
// npm puts its bundled node-gyp on PATH for lifecycle scripts; `npm run` does too.
const r = spawnSync('node-gyp', ['rebuild', '--release'], { cwd: repo, stdio: 'inherit' });
if (r.status !== 0) {
  const why = r.error ? `node-gyp could not be started (${r.error.message})` : `node-gyp exited with ${r.status ?? r.signal}`;
  process.stderr.write(
    `\nprovisiond: building the native addon failed: ${why}.\n` +
      'It needs a C compiler, make, python3 and the Node.js headers (Debian: apt-get install gcc libc6-dev make python3; the headers come with the nodejs package,\n' +
      'or npm config set nodedir to a Node source tree). Fix that, then run `npm ci` or `npm run build:native` again.\n',
  );
  process.exit(1);
}
