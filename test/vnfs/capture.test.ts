/**
 * What a capture leaves out, and the check of the exclude globs an admin gives (pure functions of
 * src/vnfs/capture.ts; the whole capture against a real daemon is test/daemon/capture.test.ts).
 */
import t from 'tap';
import { checkExcludes, excludeMatcher } from '../../src/vnfs/capture.js';

t.test('the contents of /proc /sys /dev /run /tmp are always left out, the folders kept', async (t) => {
  const skip = excludeMatcher([]);
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp']) {
    t.notOk(skip(d), `/${d} itself is kept`);
    t.notOk(skip(`${d}/`), `/${d}/ itself is kept`);
    t.ok(skip(`${d}/x`), `/${d}/x is left out`);
  }
  t.notOk(skip('etc/passwd'));
  t.notOk(skip('process/x'), 'a name that only begins like /proc');
});

t.test('exclude globs match as find -path, and take everything below', async (t) => {
  const skip = excludeMatcher(['/var/cache/*', '/home', '/root/.ssh', '/srv/*.log']);
  t.notOk(skip('var/cache'), '/var/cache/* keeps /var/cache');
  t.ok(skip('var/cache/apt'));
  t.ok(skip('var/cache/apt/archives/x.deb'), 'and everything below what it matches');
  t.ok(skip('home') && skip('home/alice/.bashrc'));
  t.notOk(skip('homework'));
  t.ok(skip('root/.ssh/id_ed25519'));
  t.ok(skip('srv/a.log') && skip('srv/sub/b.log'), '* also matches / (find -path)');
  t.notOk(skip('srv/a.txt'));
});

t.test('bad globs are refused naming the one', async (t) => {
  t.same(checkExcludes(['/var/cache/', '/']), ['/var/cache', '/']);
  t.throws(() => checkExcludes(['var/cache']), /exclude\[0\] "var\/cache": expected an absolute path glob/);
  t.throws(() => checkExcludes(['/ok', "/x'; rm -rf /"]), /exclude\[1\]/);
  t.throws(() => checkExcludes(['/a/../etc']), /exclude\[0\]/);
  t.throws(() => checkExcludes(['/a\nb']), /exclude\[0\]/);
  t.throws(() => checkExcludes(Array.from({ length: 65 }, (_, i) => `/x${i}`)), /at most 64/);
});
