/**
 * The admin API's part of the registry contract: tokens (only a hash stored, revocation kept,
 * one live token per name) and the audit log (append, newest first, paging, durable across a
 * reopen). Run by every backend's test file beside registryContract.
 */
import type tapRoot from 'tap';
import { NodeNotFoundError } from '../../src/util/errors.js';
import { RegistryConflictError, RegistryValueError } from '../../src/registry/errors.js';
import type { ContractBackend } from './contract.js';

type Tap = typeof tapRoot;

export function adminContract(tap: Tap, backend: ContractBackend): void {
  tap.test('tokens: created, found by hash, listed, revoked and kept, one live token per name', async (t) => {
    const open = await backend.create(t);
    const reg = await open();
    t.teardown(() => reg.close());
    const made = await reg.createToken({ name: 'vcl', role: 'operator', hash: 'a'.repeat(64), created: 1000, expires: null });
    t.same(made, { name: 'vcl', role: 'operator', hash: 'a'.repeat(64), created: 1000, expires: null, lastUsed: null, revoked: null });
    t.equal((await reg.getTokenByHash('a'.repeat(64)))?.name, 'vcl', 'found by the hash of its secret');
    t.equal(await reg.getTokenByHash('b'.repeat(64)), null, 'an unknown hash finds nothing');
    await t.rejects(reg.createToken({ name: 'vcl', role: 'admin', hash: 'c'.repeat(64), created: 1, expires: null }), RegistryConflictError, 'a second live token of the same name is refused');
    await t.rejects(reg.createToken({ name: 'x', role: 'root' as never, hash: 'd'.repeat(64), created: 1, expires: null }), RegistryValueError, 'an unknown role is refused');
    await t.rejects(reg.createToken({ name: 'bad name', role: 'viewer', hash: 'e'.repeat(64), created: 1, expires: null }), RegistryValueError, 'a name with a space is refused');
    await reg.touchToken('vcl', 5000);
    await reg.touchToken('vcl', 5001);
    t.equal((await reg.getTokenByHash('a'.repeat(64)))?.lastUsed, 5000, 'last use recorded to the minute: a second use within it writes nothing');
    const revoked = await reg.revokeToken('vcl', 9000);
    t.equal(revoked.revoked, 9000);
    t.equal((await reg.getTokenByHash('a'.repeat(64)))?.revoked, 9000, 'a revoked token is still found, marked revoked (refused, and audited)');
    await t.rejects(reg.revokeToken('nobody'), NodeNotFoundError);
    const again = await reg.createToken({ name: 'vcl', role: 'viewer', hash: 'f'.repeat(64), created: 10_000, expires: 20_000 });
    t.equal(again.revoked, null, 'the name of a revoked token can be given to a new one');
    t.equal(await reg.getTokenByHash('a'.repeat(64)), null, 'and the old secret is then unknown');
    t.same((await reg.listTokens()).map((x) => [x.name, x.role, x.expires]), [['vcl', 'viewer', 20_000]]);
    await reg.close();
    const reopened = await open();
    t.teardown(() => reopened.close());
    t.equal((await reopened.getTokenByHash('f'.repeat(64)))?.name, 'vcl', 'tokens survive a reopen');
  });

  tap.test('node credentials: one per node, a new one replaces and names the old, found by hash, durable', async (t) => {
    const open = await backend.create(t);
    const reg = await open();
    t.teardown(() => reg.close());
    const A = '52:54:00:00:00:0A';
    t.equal(await reg.getNodeCredential(A), null, 'a node that never booted has none');
    const first = await reg.putNodeCredential({ nodeid: A, hash: '1'.repeat(64), address: '10.0.0.5', issued: 1000 });
    t.same(first, { nodeid: A, hash: '1'.repeat(64), address: '10.0.0.5', issued: 1000, previousHash: null });
    const second = await reg.putNodeCredential({ nodeid: A, hash: '2'.repeat(64), address: '10.0.0.6', issued: 2000 });
    t.same(second, { nodeid: A, hash: '2'.repeat(64), address: '10.0.0.6', issued: 2000, previousHash: '1'.repeat(64) }, 'the next boot replaces it and keeps the old hash as previous');
    t.equal(await reg.getNodeCredentialByHash('1'.repeat(64)), null, 'the earlier boot\'s credential is no longer anyone\'s');
    t.equal((await reg.getNodeCredentialByHash('2'.repeat(64)))?.nodeid, A, 'the current one is found by its hash');
    await t.rejects(reg.putNodeCredential({ nodeid: A, hash: 'secret', address: null, issued: 1 }), RegistryValueError, 'only a sha256 is stored, never a secret');
    await reg.close();
    const reopened = await open();
    t.teardown(() => reopened.close());
    t.equal((await reopened.getNodeCredential(A))?.hash, '2'.repeat(64), 'credentials survive a reopen');
  });

  tap.test('audit: appended with an id, newest first, paged, filtered by who, durable', async (t) => {
    const open = await backend.create(t);
    const reg = await open();
    t.teardown(() => reg.close());
    for (let i = 0; i < 5; i++) {
      const e = await reg.addAudit({ time: 1000 + i, who: i % 2 ? 'vcl' : 'alice', role: 'admin', action: 'nodes.patch', method: 'PATCH', path: `/api/v1/nodes/n${i}`, target: `n${i}`, status: 200, detail: null });
      t.equal(e.id, i + 1, 'ids in order');
    }
    const all = await reg.listAudit();
    t.same(all.map((e) => e.target), ['n4', 'n3', 'n2', 'n1', 'n0'], 'newest first');
    const first = await reg.listAudit({ limit: 2 });
    const second = await reg.listAudit({ limit: 2, before: first.at(-1)!.id });
    t.same([...first, ...second].map((e) => e.target), ['n4', 'n3', 'n2', 'n1'], 'paging by id');
    t.same((await reg.listAudit({ who: 'vcl' })).map((e) => e.target), ['n3', 'n1'], 'filtered by who');
    await reg.close();
    const reopened = await open();
    t.teardown(() => reopened.close());
    t.equal((await reopened.listAudit()).length, 5, 'the audit log survives a reopen');
  });
}
