/**
 * The native build is found where `npm ci` puts it (build/Release/), and its absence is a clear
 * installation error, not a fallback: a copy of the loader in a tree without a build says what to run.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { accessSync, constants, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { nativeAddon, spawnerPath, tftpPumpPath } from '../../src/native/index.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

t.test('the addon and both helpers are built', async (t) => {
  const addon = nativeAddon();
  t.same(Object.keys(addon).sort(), ['dhcpClose', 'dhcpOpen', 'dhcpSend', 'sendfileCancel', 'sendfileStart', 'udpSocket'], 'the addon exports its functions');
  for (const bin of [spawnerPath(), tftpPumpPath()]) t.doesNotThrow(() => accessSync(bin, constants.X_OK), `${bin} is executable`);
  t.throws(() => addon.udpSocket('not an address', 0, 0, 0), TypeError, 'bad arguments are a TypeError');
});

t.test('without a build, each entry point says to run npm ci', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'pvd-native-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(join(repo, 'src', 'native', 'index.ts'), join(root, 'src', 'native', 'index.ts'));
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  const probe = `
    const m = await import(${JSON.stringify(join(root, 'src', 'native', 'index.ts'))});
    for (const f of ['nativeAddon', 'spawnerPath', 'tftpPumpPath']) {
      try { m[f](); console.log(f + ': no error'); } catch (err) { console.log(f + ': ' + err.message); }
    }`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { cwd: repo });
  const lines = stdout.trim().split('\n');
  t.equal(lines.length, 3);
  for (const l of lines) t.match(l, /^\w+: the native (addon \(provisiond\.node\)|helper provisiond-[\w-]+) is not built \(.*build\/Release\/\): run npm ci, or npm run build:native$/, l);
});
