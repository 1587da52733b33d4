/**
 * One problem+json shape from every part of the gateway (gateway/problem.ts): the REST API, its not-found handler,
 * the storage endpoint (WebDAV) and Tape REST answer errors as { type, title, status, detail, code, field?, instance }
 * with a catalogue code, `type` naming that code and `status` equal to the HTTP status; an error answer to HEAD has
 * the headers and no body.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isErrorCode } from '../../errors/catalogue.js';
import { startHarness, type Harness } from '../support/port-harness.js';

let h: Harness;
before(async () => {
  h = await startHarness({}, { workers: 0 });
});
after(async () => {
  await h?.close();
});

const SHAPE = ['code', 'detail', 'instance', 'status', 'title', 'type'];

function assertProblem(name: string, r: { status: number; body: unknown; headers: Record<string, unknown> }): Record<string, unknown> {
  assert.ok(r.status >= 400, `${name}: status ${r.status}`);
  assert.equal(String(r.headers['content-type']).split(';')[0], 'application/problem+json', name);
  const p = r.body as Record<string, unknown>;
  assert.equal(typeof p, 'object', `${name}: ${JSON.stringify(r.body)}`);
  assert.deepEqual(Object.keys(p).filter((k) => k !== 'field').sort(), SHAPE, `${name}: ${JSON.stringify(p)}`);
  assert.ok(isErrorCode(p['code']), `${name}: code ${String(p['code'])} is not in the catalogue`);
  assert.equal(p['type'], `urn:cargoport:error:${String(p['code'])}`, name);
  assert.equal(p['status'], r.status, name);
  assert.equal(typeof p['title'], 'string', name);
  assert.ok(typeof p['detail'] === 'string' && p['detail'].length > 0, `${name}: detail`);
  if ('field' in p) assert.equal(typeof p['field'], 'string', name);
  return p;
}

test('API, storage endpoint and Tape REST errors have one problem+json shape with catalogue codes', async () => {
  const noRoute = assertProblem('unknown route', await h.api('GET', '/no/such/route?access_token=secret-token'));
  assert.ok(!String(noRoute['detail']).includes('secret-token'), 'the query (a token) is not echoed');
  assert.equal(noRoute['code'], 'CARGO_ERR_NO_ROUTE');
  assert.equal(noRoute['title'], 'Not Found');
  assert.equal(noRoute['instance'], '/no/such/route');

  // ?authz= is a bearer token on storage URLs (share links): a bad one is 401, and neither echoed nor kept.
  const badAuthz = assertProblem('storage GET, bad ?authz=', await h.api('GET', '/data/public/no-such-file.bin?authz=secret-token'));
  assert.equal(badAuthz['instance'], '/data/public/no-such-file.bin', 'the query (a token) is not echoed');
  assert.ok(!JSON.stringify(badAuthz).includes('secret-token'), 'the token is not echoed');
  assert.equal(badAuthz['code'], 'CARGO_ERR_INVALID_TOKEN');
  assert.equal(badAuthz['status'], 401);

  const missing = assertProblem('storage GET', await h.api('GET', '/data/public/no-such-file.bin?x=secret-token'));
  assert.equal(missing['instance'], '/data/public/no-such-file.bin', 'the query is not echoed');
  assert.equal(missing['code'], 'CARGO_ERR_NOT_FOUND');
  assert.equal(missing['status'], 404);

  assertProblem('API job lookup', await h.api('GET', '/api/v1/jobs/no-such-job'));
  // The README's example (section Errors), as the API answers it.
  const scheme = assertProblem('API submission', await h.api('POST', '/api/v1/jobs', { files: [{ source: 'ftp://x/y', destination: 'file:///tmp/y' }] }));
  assert.deepEqual(scheme, {
    type: 'urn:cargoport:error:CARGO_ERR_UNSUPPORTED_SCHEME', title: 'Bad Request', status: 400,
    detail: 'files[0].source uses the unsupported scheme "ftp" (supported: https, http, file)',
    code: 'CARGO_ERR_UNSUPPORTED_SCHEME', field: 'files[0].source', instance: '/api/v1/jobs',
  });
  assertProblem('API bad JSON', await h.api('POST', '/api/v1/jobs', '{"files": ['));
  assertProblem('storage method', await h.api('PATCH', '/data/public/x'));
  assertProblem('Tape REST stage request', await h.api('GET', '/tape/v1/stage/no-such-request'));
  assertProblem('Tape REST bad JSON', await h.api('POST', '/tape/v1/stage', '{"files": [', { 'content-type': 'application/json' }));
});

test('an error answer to HEAD has the problem+json headers and no body', async () => {
  const r = await h.api('HEAD', '/data/public/no-such-file.bin');
  assert.equal(r.status, 404);
  assert.equal(String(r.headers['content-type']).split(';')[0], 'application/problem+json');
  assert.equal(r.body, '');
});
