import t from 'tap';
import { pathMatcher } from '../../src/util/path-glob.js';
import { FailureLimiter } from '../../src/util/failure-limiter.js';

t.test('security.protect globs: ** crosses folders, * and ? stay within one', async (t) => {
  const m = pathMatcher(['files/keys/**', 'vnfs/*/secret.tar', 'files/**/id_?sa', 'files/a+b.key']);
  for (const yes of ['files/keys/munge.key', 'files/keys/site/a/b', 'vnfs/demo/secret.tar', 'files/id_rsa', 'files/x/y/id_dsa', 'files/a+b.key']) t.ok(m(yes), `protected: ${yes}`);
  for (const no of ['files/keysx/a', 'files/keys', 'vnfs/demo/x/secret.tar', 'vnfs/demo/secret.tarx', 'files/id_ed25519', 'files/aab.key', 'vnfs/demo/image.cpio.gz']) t.notOk(m(no), `public: ${no}`);
  t.notOk(pathMatcher([])('files/anything'), 'no globs: nothing protected');
});

t.test('the failure limiter: per key, per window, bounded', async (t) => {
  let now = 0;
  const l = new FailureLimiter({ limit: 3, windowMs: 1000, maxKeys: 2, now: () => now });
  for (let i = 0; i < 3; i++) l.fail('a');
  t.ok(l.over('a'), 'over after its limit');
  t.notOk(l.over('b'), 'another key is not');
  t.notOk(l.over('a', 10), 'not over ten times the limit');
  t.equal(l.retryAfter(), 1);
  now = 1000;
  t.notOk(l.over('a'), 'a new window starts clean');
  l.fail('a');
  l.fail('b');
  l.fail('c');
  t.notOk(l.over('a') || l.over('b'), 'past maxKeys the table starts over: memory stays bounded');
  t.throws(() => new FailureLimiter({ limit: 0 }), TypeError);
});
