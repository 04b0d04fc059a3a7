import t from 'tap';
import { startApiDaemon } from './lib/harness.js';
import { ApiClient, ApiDocument, type OpenApiDoc } from './lib/validate.js';

t.test('the document is OpenAPI 3.1 and the answers of the API match it', async (t) => {
  const h = await startApiDaemon(t);
  t.same(h.doc.validateDocument(), [], 'the document passes the OpenAPI 3.1 schema and the structural rules');
  t.ok(h.doc.operations.length >= 10, `${h.doc.operations.length} operations`);
  for (const id of ['health.get', 'whoami.get', 'audit.list', 'tokens.list', 'tokens.create', 'tokens.revoke', 'tasks.list', 'tasks.get', 'tasks.cancel', 'events.stream', 'openapi.get']) {
    t.ok(h.doc.byId(id), `${id} is documented`);
  }

  // Each answer below is validated by the client against the document (a mismatch throws).
  t.equal((await h.anon.get('/healthz')).status, 200);
  t.same((await h.viewer.get('/whoami')).body, { name: 't-viewer', role: 'viewer' });
  const made = await h.admin.post('/tokens', { name: 'ci', role: 'operator', expires: '2d' });
  t.equal(made.status, 201);
  t.match(made.body, { token: { name: 'ci', role: 'operator', revoked: null }, secret: /^pvd_/ });
  t.equal((await h.admin.get('/tokens')).status, 200);
  t.equal((await h.admin.request('DELETE', '/tokens/ci')).status, 200);
  t.equal((await h.admin.get('/audit?limit=5')).status, 200);
  t.equal((await h.anon.get('/whoami')).status, 401);
  t.equal((await h.viewer.get('/audit')).status, 403);
  t.equal((await h.admin.get('/tasks/none')).status >= 400, true);
  t.equal((await h.admin.post('/tokens', { name: 'x', role: 'king' })).status, 400);
  t.equal((await h.admin.get('/no/such/thing')).status, 404);
  t.equal((await h.admin.request('PUT', '/tokens')).status, 405);
  t.ok(h.admin.checked + h.anon.checked + h.viewer.checked >= 12, 'every answer was validated');
});

t.test('the validator catches an answer that does not match, and a broken document', async (t) => {
  const h = await startApiDaemon(t);
  const health = h.doc.byId('health.get')!;
  t.same(h.doc.validateResponse(health, 200, 'application/json', { status: 'ok', startedAt: 1, uptime: 1, services: [], database: { reachable: true, since: null, reason: null } }), []);
  const bad = h.doc.validateResponse(health, 200, 'application/json', { status: 'ok', startedAt: 1.5, uptime: 1, services: [], database: { reachable: true, since: null, reason: null }, extra: 1 }).join('\n');
  t.match(bad, /body\/startedAt must be integer/);
  t.match(bad, /must NOT have additional properties/);
  t.match(h.doc.validateResponse(health, 200, 'text/html', '<p>'), [/content-type "text\/html"/]);
  t.match(h.doc.validateResponse(h.doc.byId('whoami.get')!, 418, 'application/json', {}), [/status 418 is not documented/]);
  t.match(h.doc.validateResponse(h.doc.byId('whoami.get')!, 401, 'application/json', { error: { code: 'x' } }), [/must have required property 'message'/]);
  // A client that meets a bad answer throws with the reasons.
  const lying = new ApiDocument(structuredClone(h.doc.doc));
  (lying.doc.components.schemas.Whoami as { properties: Record<string, unknown> }).properties.name = { type: 'integer' };
  await t.rejects(new ApiClient(h.apiBase, lying, h.viewer.token).get('/whoami'), { name: 'SchemaViolation', message: /whoami.get 200: body\/name must be integer/ });

  const broken = structuredClone(h.doc.doc) as OpenApiDoc;
  const tokens = broken.paths['/tokens/{name}']!.delete!;
  tokens.operationId = 'tokens.list';
  tokens.parameters = [];
  broken.paths['/tasks/{id}']!.get!.responses['200'] = { description: 'x', content: { 'application/json': { schema: { $ref: '#/components/schemas/Nope' } } } };
  const problems = new ApiDocument(broken).validateDocument();
  t.match(problems.join('\n'), /operationId tokens\.list also used/);
  t.match(problems.join('\n'), /path parameter \{name\} not declared/);
  t.match(problems.join('\n'), /missing component: Nope/);
});
