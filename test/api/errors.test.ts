/**
 * What a client can get wrong, and the one error shape it gets back (validated against the
 * document's Error schema by the client): malformed JSON, an unknown field, a wrong type, a body
 * over api.maxBody, a method a path does not have, a path that does not exist. Then a flood of
 * garbage (bad JSON, huge headers, raw bytes, requests left half-sent) that must not stop the
 * daemon from answering /healthz.
 */
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { startApiDaemon } from './lib/harness.js';

type ErrorBody = { error: { code: string; message: string; field?: string } };

t.test('bad requests get a 4xx in the one error shape, naming the field', async (t) => {
  const h = await startApiDaemon(t, 'api:\n  port: 0\n  maxBody: 2048\n');
  const admin = h.admin;

  const malformed = await admin.request('POST', '/tokens', { raw: '{"name": "x", "role": ', headers: { 'content-type': 'application/json' } });
  t.equal(malformed.status, 400);
  t.match(malformed.body, { error: { code: 'malformed_json', field: 'body', message: /^body: malformed JSON/ } });

  const unknown = await admin.post('/tokens', { name: 'x', role: 'viewer', colour: 'blue' });
  t.equal(unknown.status, 400);
  t.match(unknown.body, { error: { code: 'invalid', field: 'body.colour', message: /unknown field "colour"/ } });

  const wrongType = await admin.post('/tokens', { name: 42, role: 'viewer' });
  t.equal(wrongType.status, 400);
  t.match(wrongType.body, { error: { code: 'invalid', field: 'body.name', message: /^body\.name: .*string/ } });

  const badEnum = await admin.post('/tokens', { name: 'x', role: 'root' });
  t.match(badEnum.body, { error: { field: 'body.role' } });

  const missing = await admin.post('/tokens', { role: 'viewer' });
  t.match(missing.body, { error: { code: 'invalid', field: 'body.name' } });

  const notObject = await admin.request('POST', '/tokens', { raw: '[1,2]', headers: { 'content-type': 'application/json' } });
  t.equal(notObject.status, 400, 'an array where an object is expected');

  const query = await admin.get('/audit?limit=lots');
  t.equal(query.status, 400);
  t.match(query.body, { error: { field: 'query.limit' } });
  t.match((await admin.get('/audit?limit=5000')).body, { error: { field: 'query.limit' } }, 'over the maximum');
  t.match((await admin.get('/audit?colour=blue')).body, { error: { field: 'query.colour', message: /unknown field/ } });

  const big = await admin.post('/tokens', { name: 'x', role: 'viewer', expires: 'x'.repeat(4000) });
  t.equal(big.status, 413, 'a body over api.maxBody (2048 bytes)');
  t.match(big.body, { error: { code: 'body_too_large', field: 'body', message: /api\.maxBody \(2048 bytes\)/ } });
  const fits = await admin.post('/tokens', { name: 'fits', role: 'viewer', expires: '1d' });
  t.equal(fits.status, 201, 'a body under it is served');

  const put = await admin.request('PUT', '/tokens', { body: {} });
  t.equal(put.status, 405);
  t.equal(put.headers.get('allow'), 'GET, POST');
  t.match(put.body, { error: { code: 'method_not_allowed' } });
  const del = await admin.request('DELETE', '/healthz');
  t.equal(del.status, 405);
  t.equal(del.headers.get('allow'), 'GET');

  const nowhere = await admin.get('/no/such/resource');
  t.equal(nowhere.status, 404);
  t.match(nowhere.body, { error: { code: 'not_found', message: /no such resource: GET/ } });
  const outside = await fetch(`${h.apiBase}/not-the-api`);
  t.equal(outside.status, 404);
  t.match(await outside.json(), { error: { code: 'not_found' } }, 'outside /api/v1 too');
  const tokenGone = await admin.request('DELETE', '/tokens/nobody');
  t.equal(tokenGone.status, 404);
  t.match(tokenGone.body, { error: { code: 'not_found' } });

  // The token is checked before the body is read: a stranger's body is never parsed.
  const strangerJunk = await h.anon.request('POST', '/tokens', { raw: '{"name": ', headers: { 'content-type': 'application/json' } });
  t.equal(strangerJunk.status, 401, 'malformed JSON without a token: 401, not 400');
  const strangerBig = await h.anon.post('/tokens', { name: 'x', role: 'viewer', expires: 'x'.repeat(4000) });
  t.equal(strangerBig.status, 401, 'a body over api.maxBody without a token: 401, not 413');
  t.equal(strangerBig.headers.get('connection'), 'close', 'and the connection whose body was left unread is closed');
  const viewerJunk = await h.viewer.request('POST', '/tokens', { raw: '{"name": ', headers: { 'content-type': 'application/json' } });
  t.equal(viewerJunk.status, 403, 'malformed JSON from a role too low: 403');

  // The client validated each against the document's Error schema; the shape is also exactly this.
  for (const r of [malformed, unknown, wrongType, badEnum, missing, notObject, query, big, strangerJunk, strangerBig, viewerJunk, put, del, nowhere, tokenGone]) {
    const e = (r.body as ErrorBody).error;
    t.same(Object.keys(r.body as object), ['error'], `${r.status} ${e.code}: one key, error`);
    t.ok(Object.keys(e).every((k) => ['code', 'message', 'field'].includes(k)) && e.message.length > 0, `${r.status} ${e.code}: code, message, field`);
  }
});

/** Opens a raw connection to host:port. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** Writes `data` and resolves with whatever comes back before the server closes (or `ms` pass). */
function exchange(port: number, data: string | Buffer, ms = 5000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(data));
    let got = '';
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('end', done);
    s.on('error', done);
  });
}

t.test('a flood of 200 garbage requests leaves the daemon answering /healthz', async (t) => {
  const h = await startApiDaemon(t);
  const port = Number(new URL(h.apiBase).port);
  // Slowloris: 40 connections that send half a request and then nothing.
  const held: Socket[] = [];
  for (let i = 0; i < 40; i++) {
    const s = await open(port);
    s.on('error', () => {});
    s.write(`GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Slow-${i}: `);
    held.push(s);
  }
  t.teardown(() => held.forEach((s) => s.destroy()));

  const garbage: Array<Promise<string>> = [];
  for (let i = 0; i < 160; i++) {
    switch (i % 4) {
      case 0: // bad JSON with a valid token
        garbage.push(
          fetch(`${h.apiBase}/api/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${h.admin.token}`, 'content-type': 'application/json' }, body: `{"name": ${'['.repeat(i)}` }).then((r) => String(r.status)),
        );
        break;
      case 1: // headers far over node's 16 KiB limit
        garbage.push(exchange(port, `GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`));
        break;
      case 2: // not HTTP at all
        garbage.push(exchange(port, Buffer.from(Array.from({ length: 512 }, (_, k) => (k * 37 + i) & 255))));
        break;
      default: // a body shorter than its Content-Length, then a close
        garbage.push(exchange(port, `POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"name":`, 300));
    }
  }
  const answers = await Promise.all(garbage);
  t.equal(answers.filter((a) => a === '400').length, 40, 'bad JSON: 400 each');
  // RFC 6585: headers over the limit are 431, not a generic 400.
  t.same(answers.filter((_a, i) => i % 4 === 1).map((a) => a.split('\r\n')[0]), Array(40).fill('HTTP/1.1 431 Request Header Fields Too Large'), 'huge headers: 431 each');
  t.ok(answers.filter((a, i) => i % 4 === 2 && (a === '' || /^HTTP\/1\.1 400/.test(a))).length === 40, 'raw garbage: 400 or closed');

  // The half-sent requests are still held open, and the daemon answers regardless.
  t.equal(held.filter((s) => !s.destroyed).length, 40, 'the slow connections are still open');
  const started = Date.now();
  const health = await h.anon.get('/healthz');
  t.equal(health.status, 200);
  t.ok(Date.now() - started < 2000, `/healthz answered in ${Date.now() - started} ms`);
  t.equal((await h.viewer.get('/whoami')).status, 200, 'and authenticated requests too');
  t.same(h.log.lines.filter((l) => l.level === 'error'), [], 'nothing logged as an error');
});
