/**
 * The redfish driver against a Redfish service written in this test (test/power/lib/redfish-service.ts):
 * no Redfish emulator is packaged for Debian, so the service follows the DMTF schema for the
 * resources the driver uses. TLS is checked with a CA and server certificate made by openssl here.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedfishDriver } from '../../src/power/redfish/driver.js';
import { powerSettings } from '../../src/power/settings.js';
import { UnsupportedVerbError } from '../../src/power/types.js';
import { startRedfishService, type RedfishServiceOptions } from './lib/redfish-service.js';
import { powerContract } from './contract.js';

const USER = 'root';
const PASSWORD = 'Redf1sh-pw';
const dir = mkdtempSync(join(tmpdir(), 'pvd-power-redfish-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function setup(t: Test, extra: Record<string, string> = {}, o: Partial<RedfishServiceOptions> = {}) {
  const svc = await startRedfishService({ user: USER, password: PASSWORD, ...o });
  t.teardown(() => svc.close());
  const driver = new RedfishDriver({
    name: 'n0001',
    nodeid: '52:54:00:00:00:01',
    settings: powerSettings('n0001', { 'power.driver': 'redfish', 'power.address': svc.url, 'power.user': USER, 'power.password': PASSWORD, ...extra }, dir),
  });
  return { svc, driver };
}

powerContract(t, 'redfish', async () => {
  const svc = await startRedfishService({ user: USER, password: PASSWORD });
  t.teardown(() => svc.close());
  const driver = new RedfishDriver({
    name: 'n0001',
    nodeid: '52:54:00:00:00:01',
    settings: powerSettings('n0001', { 'power.driver': 'redfish', 'power.address': svc.url, 'power.user': USER, 'power.password': PASSWORD }, dir),
  });
  return {
    driver,
    peer: {
      secret: PASSWORD,
      power: async () => (svc.state.power === 'On' ? 'on' : 'off'),
      bootdev: async () => `${svc.state.bootTarget} ${svc.state.bootEnabled}`,
    },
  };
});

t.test('redfish: verbs map to ResetTypes; sessions are logged out; bootdev sends If-Match', async (t) => {
  const { svc, driver } = await setup(t);
  for (const a of ['on', 'off', 'shutdown', 'reset', 'cycle'] as const) await driver.power(a);
  t.same(svc.state.resets, ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PowerCycle']);
  await driver.bootdev('pxe', false);
  t.equal(svc.state.bootTarget, 'Pxe');
  t.equal(svc.state.bootEnabled, 'Once');
  t.equal(svc.state.patchesWithoutIfMatch, 0, 'the PATCH carried the ETag');
  t.equal(svc.state.sessions.size, 0, 'every session was deleted');
  const info = await driver.interrogate();
  t.equal(info['system.Model'], 'HPC-1U');
  t.equal(info['system.SerialNumber'], 'SN0001');
  await t.rejects(driver.console(), UnsupportedVerbError);
});

t.test('redfish: a BMC without PowerCycle gets ForceOff then On; a missing ResetType is a clear "cannot"', async (t) => {
  const { svc, driver } = await setup(t, {}, { resetTypes: ['On', 'ForceOff'] });
  await driver.power('cycle');
  t.same(svc.state.resets, ['ForceOff', 'On']);
  await t.rejects(driver.power('shutdown'), /^redfish driver cannot shutdown: the BMC allows ResetType On, ForceOff, not GracefulShutdown$/);
});

t.test('redfish: basic auth works; a wrong password is refused clearly and never shown', async (t) => {
  const { svc, driver } = await setup(t, { 'power.auth': 'basic' });
  await driver.power('on');
  t.equal(svc.state.power, 'On');
  const bad = await setup(t, { 'power.password': 'Wr0ng-pw' });
  const err = await bad.driver.status().then(() => null, (e: Error) => e);
  t.match(err?.message, /login as root refused \(401: The authentication credentials are invalid\.\)/);
  t.notOk(err?.message.includes('Wr0ng-pw'));
  t.notOk(bad.driver.describe('on').includes('Wr0ng-pw'));
  t.match(bad.driver.describe('on'), /POST .*ComputerSystem\.Reset \{"ResetType":"On"\}/);
});

t.test('redfish: TLS is verified against the pinned CA (power.ca), or skipped with power.insecure', async (t) => {
  const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=pvd test CA']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'bmc.key', '-out', 'bmc.csr', '-subj', '/CN=127.0.0.1']);
  const ext = join(dir, 'ext.cnf');
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`]);
  ssl(['x509', '-req', '-in', 'bmc.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'bmc.pem', '-days', '2', '-extfile', ext]);
  const tls = { key: readFileSync(join(dir, 'bmc.key')), cert: readFileSync(join(dir, 'bmc.pem')) };
  const pinned = await setup(t, { 'power.ca': join(dir, 'ca.pem') }, { tls });
  t.equal(await pinned.driver.status(), 'off', 'the pinned CA verifies the BMC');
  const unpinned = await setup(t, {}, { tls });
  await t.rejects(unpinned.driver.status(), /SELF_SIGNED|UNABLE_TO_VERIFY|unable to verify/i, 'an unknown CA is refused');
  const insecure = await setup(t, { 'power.insecure': 'true' }, { tls });
  t.equal(await insecure.driver.status(), 'off');
});
