/**
 * The Drydock drivers reach an HTTPS admin API (api.tls) trusting the CA their `ca` setting names:
 * with it validate_oob_services succeeds; without it the certificate is refused and the task says
 * so; a CA file that cannot be read stops the driver at start with the key and the reason.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createToken } from '../../src/registry/tokens.js';
import { apiUrl } from '../api/lib/harness.js';
import { startDaemon } from '../lib/daemon.js';
import { gate, missingCommands } from '../lib/gate.js';
import { drydock } from './lib/drydock.js';

if (gate(t, missingCommands(['python3', 'openssl']).length ? 'python3 or openssl not installed' : null)) {
  t.test('HTTPS API: trusted through PROVISIOND_CA, refused without it', async (t) => {
    let statedir = '';
    const h = await startDaemon(t, 'api:\n  listen: 127.0.0.1\n  port: 0\n  tls:\n    cert: etc/api.crt\n    key: etc/api.key\n', {
      setup: (d) => {
        statedir = d;
        mkdirSync(join(d, 'etc'), { recursive: true });
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=provisiond test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(d, 'etc/api.key'), '-out', join(d, 'etc/api.crt')], { stdio: 'ignore' });
      },
    });
    const url = apiUrl(h);
    t.match(url, /^https:/);
    const env = { PROVISIOND_API_URL: url, PROVISIOND_TOKEN: (await createToken(h.daemon.registry, { name: 'drydock', role: 'operator' })).secret };
    const plan = { driver: 'oob' as const, nodes: [], steps: [{ action: 'validate_oob_services' }] };

    const trusted = await drydock(plan, { ...env, PROVISIOND_CA: join(statedir, 'etc/api.crt') });
    t.equal(trusted.code, 0, trusted.stderr);
    t.match(trusted.out.tasks[0]!.result, { status: 'success', messages: [{ message: /^provisiond API https:\/\/127\.0\.0\.1:\d+\/api\/v1 answers; token drydock \(operator\)/ }] });

    const untrusted = await drydock(plan, env);
    t.match(untrusted.out.tasks[0]!.result, { status: 'failure', messages: [{ message: /CERTIFICATE_VERIFY_FAILED|certificate verify failed/, error: true }] }, 'a certificate it does not trust is refused');

    const missing = await drydock(plan, { ...env, PROVISIOND_CA: join(statedir, 'etc/nope.pem') });
    t.equal(missing.code, 2);
    t.equal(missing.out.error, `environment PROVISIOND_CA: ${join(statedir, 'etc/nope.pem')} cannot be read`);
  });
}
