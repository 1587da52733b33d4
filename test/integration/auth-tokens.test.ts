/**
 * Issue 13, inbound: a real port (gateway + worker) with authorisation on, trusting a real issuer started here over
 * TLS (discovery + JWKS, RSA and EC keys). Every request goes through the one decision point: the storage endpoint,
 * the REST API, admin operations, events and metrics. Negative cases are refused with the right status and leave
 * nothing written.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';
import { TokenVerifier } from '../../services/auth/token-verifier.js';
import { parseIssuerSettings } from '../../services/auth/issuer-settings.js';

const AUD = 'https://cargoport.test';
let iss: TestIssuer;
let h: Harness;
let area: string;

before(async () => {
  iss = await startTestIssuer(AUD);
  area = mkdtempSync(join(tmpdir(), 'cp-auth-area-'));
  h = await startHarness({
    auth: {
      insecureOpen: false,
      allowAddresses: [],
      issuerCaFile: testTls().certPath,
      audiences: [AUD],
      issuers: [{
        issuer: iss.issuer, name: 'test', basePath: '/',
        groups: [{ group: '/wlcg', path: '/', rights: ['read'] }, { group: '/wlcg', path: '/wlcg-area', rights: ['read', 'modify'] }, { group: '/wlcg/test', path: '/protected', rights: ['modify'] }],
        adminGroups: ['/wlcg/ops'],
      }],
      localAreas: [{ dir: area, path: '/area' }],
    },
    storage: { publicPrefixes: ['/public'] },
  });
});
after(async () => {
  await h?.close();
  await iss?.close();
  rmSync(area, { recursive: true, force: true });
  if (h) rmSync(h.cfg.dataDir, { recursive: true, force: true });
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const data = (p: string) => `/data${p}`;

test('no token: public prefixes readable, everything else 401 with a Bearer challenge', async () => {
  assert.equal((await h.api('GET', data('/public/missing'))).status, 404);
  const r = await h.api('GET', data('/private/missing'));
  assert.equal(r.status, 401);
  assert.equal(r.headers['www-authenticate'], 'Bearer');
  assert.equal((await h.api('PUT', data('/public/new'), 'x')).status, 401);
  assert.equal((await h.api('POST', '/api/v1/jobs', { files: [{ source: 'https://example.org/a', destination: 'https://example.org/b' }] })).status, 401);
  assert.equal((await h.api('GET', '/api/v1/jobs')).status, 401);
  assert.equal((await h.api('POST', '/api/v1/admin/pause', {})).status, 401);
  assert.equal((await h.api('GET', '/metrics')).status, 401);
  assert.equal((await h.api('GET', '/api/v1/events')).status, 401);
  assert.equal((await h.api('GET', '/healthz')).status, 200);
  // Tape REST answers through its own error handler: the same problem and the same challenge.
  const tape = await h.api<Record<string, unknown>>('POST', '/tape/v1/stage', { files: [{ path: '/data/private/x' }] });
  assert.equal(tape.status, 401);
  assert.equal(tape.headers['www-authenticate'], 'Bearer');
  assert.equal(tape.body['code'], 'CARGO_ERR_UNAUTHENTICATED');
});

test('valid RS256 and ES256 tokens: authorisation before existence (404 when allowed, 403 when not)', async () => {
  for (const key of ['rsa', 'ec'] as const) {
    const t = iss.mint({ scope: 'storage.read:/ok' }, { key });
    assert.equal((await h.api('GET', data('/ok/missing'), undefined, bearer(t))).status, 404, key);
    assert.equal((await h.api('GET', data('/okay/missing'), undefined, bearer(t))).status, 403, key);
    assert.equal((await h.api('GET', data('/other/missing'), undefined, bearer(t))).status, 403, key);
  }
});

test('bad tokens are 401 invalid_token, whatever the request', async () => {
  const now = Math.floor(Date.now() / 1000);
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cases: Array<[string, string]> = [
    ['expired', iss.mint({ scope: 'storage.read:/', exp: now - 3600, iat: now - 7200, nbf: now - 7200 })],
    ['not yet valid', iss.mint({ scope: 'storage.read:/', nbf: now + 3600 })],
    ['wrong issuer', iss.mint({ scope: 'storage.read:/', iss: 'https://evil.example' })],
    ['wrong audience', iss.mint({ scope: 'storage.read:/', aud: 'https://other.example' })],
    ['audience list without ours', iss.mint({ scope: 'storage.read:/', aud: ['https://fake.audience:8443', 'x'] })],
    ['missing audience', iss.mint({ scope: 'storage.read:/', aud: null })],
    ['unknown kid', iss.mint({ scope: 'storage.read:/' }, { key: other.privateKey, kid: 'nope' })],
    ['known kid, other key', iss.mint({ scope: 'storage.read:/' }, { key: other.privateKey, kid: 'rsa-1' })],
    ['alg none', iss.unsigned({ scope: 'storage.read:/' })],
    ['HMAC with the public key', iss.hmacWithPublicKey({ scope: 'storage.read:/' })],
    ['jku header', iss.mint({ scope: 'storage.read:/' }, { header: { jku: 'https://evil.example/jwks' } })],
    ['x5u header', iss.mint({ scope: 'storage.read:/' }, { header: { x5u: 'https://evil.example/cert' } })],
    ['missing sub', iss.mint({ scope: 'storage.read:/', sub: null })],
    ['missing jti', iss.mint({ scope: 'storage.read:/', jti: null })],
    ['missing iat', iss.mint({ scope: 'storage.read:/', iat: null })],
    ['missing exp', iss.mint({ scope: 'storage.read:/', exp: null })],
    ['missing wlcg.ver', iss.mint({ scope: 'storage.read:/', 'wlcg.ver': null })],
    ['wlcg.ver 2.0', iss.mint({ scope: 'storage.read:/', 'wlcg.ver': '2.0' })],
    ['lifetime over 6 h', iss.mint({ scope: 'storage.read:/', exp: now + 7 * 3600 })],
    ['path-less storage scope', iss.mint({ scope: 'storage.read:/ storage.create' })],
    ['.. in a scope', iss.mint({ scope: 'storage.read:/a/../b' })],
    ['garbage', 'not.a.token'],
  ];
  for (const [name, t] of cases) {
    for (const [method, path] of [['GET', data('/public/x')], ['PUT', data('/w/x')], ['GET', '/api/v1/jobs']] as const) {
      const r = await h.api(method, path, method === 'PUT' ? 'x' : undefined, bearer(t));
      assert.equal(r.status, 401, `${name}: ${method} ${path}`);
      assert.match(String(r.headers['www-authenticate']), /^Bearer error="invalid_token", error_description="[^"]+"$/, name);
    }
  }
  assert.equal(existsSync(join(h.cfg.dataDir, 'storage', 'w', 'x')), false);
  // One ES256 token with a newer minor version is fine.
  assert.equal((await h.api('GET', data('/x/missing'), undefined, bearer(iss.mint({ scope: 'storage.read:/', 'wlcg.ver': '1.7' }, { key: 'ec' })))).status, 404);
});

test('scope semantics on the storage endpoint: create never overwrites or deletes, modify does not read, stage is not read', async () => {
  const modify = iss.mint({ scope: 'storage.modify:/s' });
  const create = iss.mint({ scope: 'storage.create:/s' });
  const read = iss.mint({ scope: 'storage.read:/s' });
  const stage = iss.mint({ scope: 'storage.stage:/s' });
  assert.equal((await h.api('PUT', data('/s/f1'), 'one', bearer(modify))).status, 201);
  assert.equal((await h.api('GET', data('/s/f1'), undefined, bearer(modify))).status, 403, 'modify does not imply read');
  assert.equal((await h.api('GET', data('/s/f1'), undefined, bearer(create))).status, 403, 'create does not imply read');
  assert.equal((await h.api('PUT', data('/s/f1'), 'two', bearer(create))).status, 403, 'create never overwrites');
  assert.equal((await h.api('DELETE', data('/s/f1'), undefined, bearer(create))).status, 403, 'create never deletes');
  assert.equal((await h.api('GET', data('/s/f1'), undefined, bearer(stage))).status, 403, 'stage is not read');
  assert.equal((await h.api('HEAD', data('/s/f1'), undefined, bearer(stage))).status, 200, 'stage allows stat');
  assert.equal((await h.api('HEAD', data('/s/f1'), undefined, bearer(create))).status, 200, 'create allows stat');
  const got = await h.api('GET', data('/s/f1'), undefined, bearer(read));
  assert.equal(got.status, 200);
  assert.equal(got.body, 'one');
  assert.equal((await h.api('PUT', data('/s/new/f2'), 'new', bearer(create))).status, 201, 'create makes new files and parents');
  assert.equal((await h.api('MKCOL', data('/s/dir'), undefined, bearer(create))).status, 201);
  assert.equal((await h.api('PUT', data('/sx/f'), 'x', bearer(modify))).status, 403, 'whole components only');
  // A client normalises `/s/../etc` to `/etc` (outside the scope: 403); double-encoded, it is refused (400).
  assert.equal((await h.api('GET', data('/s/../etc/passwd'), undefined, bearer(read))).status, 403, '.. in a request path');
  assert.equal((await h.api('GET', data('/s/%252e%252e/etc/passwd'), undefined, bearer(read))).status, 400, 'encoded .. in a request path');
  assert.equal((await h.api('DELETE', data('/s/f1'), undefined, bearer(modify))).status, 204);
  // Trailing slash: directory semantics.
  const dirOnly = iss.mint({ scope: 'storage.create:/t/d/' });
  assert.equal((await h.api('PUT', data('/t/d'), 'x', bearer(dirOnly))).status, 403, 'a file named like a directory-only scope');
  assert.equal((await h.api('MKCOL', data('/t'), undefined, bearer(dirOnly))).status, 201, 'create may make the missing parents of its path');
  assert.equal((await h.api('MKCOL', data('/u'), undefined, bearer(dirOnly))).status, 403);
  assert.equal((await h.api('MKCOL', data('/t/d'), undefined, bearer(dirOnly))).status, 201);
  assert.equal((await h.api('PUT', data('/t/d/f'), 'x', bearer(dirOnly))).status, 201);
});

test('groups map to rights only when the token has no capability scope', async () => {
  const member = iss.mint({ 'wlcg.groups': ['/wlcg'] });
  assert.equal((await h.api('GET', data('/anything/missing'), undefined, bearer(member))).status, 404);
  assert.equal((await h.api('PUT', data('/wlcg-area/g1'), 'g', bearer(member))).status, 201);
  assert.equal((await h.api('PUT', data('/protected/g1'), 'g', bearer(member))).status, 403);
  const tester = iss.mint({ 'wlcg.groups': ['/wlcg/test'] });
  assert.equal((await h.api('PUT', data('/protected/g1'), 'g', bearer(tester))).status, 201);
  // Any capability scope, even one for compute, and the groups no longer count.
  const mixed = iss.mint({ 'wlcg.groups': ['/wlcg'], scope: 'compute.read' });
  assert.equal((await h.api('GET', data('/anything/missing'), undefined, bearer(mixed))).status, 403);
  const minimal = iss.mint({ scope: 'openid' });
  assert.equal((await h.api('GET', data('/anything/missing'), undefined, bearer(minimal))).status, 403);
});

test('jobs: owner is the token identity; file:// only in local areas with the rights of its namespace path; own jobs only', async () => {
  const alice = iss.mint({ sub: 'alice', scope: 'storage.read:/area/in storage.create:/area/out' });
  const bob = iss.mint({ sub: 'bob', scope: 'storage.read:/area' });
  const ops = iss.mint({ sub: 'carol', 'wlcg.groups': ['/wlcg/ops'], scope: 'openid' });
  mkdirSync(join(area, 'in'), { recursive: true });
  writeFileSync(join(area, 'in', 'a.bin'), 'payload');
  const submit = (t: string, source: string, destination: string, params?: object) => h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: [{ source, destination }], ...(params ? { params } : {}) }, bearer(t));

  let r = await submit(alice, 'file:///etc/passwd', `file://${area}/out/p`);
  assert.equal(r.status, 403);
  assert.equal(r.body['field'], 'files[0].source');
  r = await submit(alice, `file://${area}/in/a.bin`, '/tmp/x'.replace('/tmp/x', 'file:///tmp/cargoport-auth-outside'));
  assert.equal(r.status, 403);
  assert.equal(r.body['field'], 'files[0].destination');
  r = await submit(alice, `file://${area}/in/a.bin`, `file://${area}/in/copy`);
  assert.equal(r.status, 403, 'no create right on /area/in');
  r = await submit(alice, `file://${area}/in/a.bin`, `file://${area}/out/a.bin`, { existing: 'overwrite' });
  assert.equal(r.status, 403, 'overwrite needs modify');
  r = await submit(alice, 'https://127.0.0.1:6379/x', `file://${area}/out/r`);
  assert.equal(r.status, 403);
  assert.equal(r.body['code'], 'CARGO_ERR_ADDRESS_REFUSED');
  r = await submit(alice, 'https://[::ffff:127.0.0.1]:6379/x', `file://${area}/out/r`);
  assert.equal(r.body['code'], 'CARGO_ERR_ADDRESS_REFUSED');

  r = await submit(alice, `file://${area}/in/a.bin`, `file://${area}/out/a.bin`);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const jobId = String(r.body['jobId']);
  let done: Record<string, unknown>;
  for (;;) {
    done = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${jobId}`, undefined, bearer(alice))).body;
    if (done['state'] !== 'ACTIVE') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(done['state'], 'FINISHED');
  assert.equal(done['owner'], 'test:alice');
  assert.equal(readFileSync(join(area, 'out', 'a.bin'), 'utf8'), 'payload');

  assert.equal((await h.api('GET', `/api/v1/jobs/${jobId}`, undefined, bearer(bob))).status, 403);
  assert.equal((await h.api('GET', `/api/v1/jobs/${jobId}/files`, undefined, bearer(bob))).status, 403);
  assert.equal((await h.api('DELETE', `/api/v1/jobs/${jobId}`, undefined, bearer(bob))).status, 403);
  assert.equal((await h.api('GET', `/api/v1/events?job=${jobId}`, undefined, bearer(bob))).status, 403);
  const bobs = await h.api<{ jobs: unknown[] }>('GET', '/api/v1/jobs', undefined, bearer(bob));
  assert.equal(bobs.body.jobs.length, 0);
  const alices = await h.api<{ jobs: Array<{ jobId: string }> }>('GET', '/api/v1/jobs', undefined, bearer(alice));
  assert.deepEqual(alices.body.jobs.map((j) => j.jobId), [jobId]);
  assert.equal((await h.api('GET', `/api/v1/jobs/${jobId}`, undefined, bearer(ops))).status, 200, 'admins see every job');

  // Admin operations, limits and metrics need the admin group.
  assert.equal((await h.api('POST', '/api/v1/admin/pause', {}, bearer(alice))).status, 403);
  assert.equal((await h.api('PUT', '/api/v1/admin/limits', { scope: 'port', bytesPerSec: 1000 }, bearer(alice))).status, 403);
  assert.equal((await h.api('GET', '/api/v1/admin/limits', undefined, bearer(alice))).status, 403);
  assert.equal((await h.api('GET', '/metrics', undefined, bearer(alice))).status, 403);
  assert.equal((await h.api('GET', '/api/v1/status', undefined, bearer(alice))).status, 200);
  assert.equal((await h.api('POST', '/api/v1/admin/status', {}, bearer(ops))).status, 200);
  assert.equal((await h.api('GET', '/metrics', undefined, bearer(ops))).status, 200);
});

test('HTTP-TPC: remotes on this host are refused by the default address policy, in every IPv6 spelling', async () => {
  const t = iss.mint({ scope: 'storage.modify:/ storage.read:/' });
  for (const src of ['https://127.0.0.1:6379/x', 'https://localhost:6379/x', 'https://[::ffff:127.0.0.1]:6379/x', 'https://[0:0:0:0:0:ffff:7f00:1]:6379/x', 'https://[::ffff:0:0]:6379/x', 'https://[::1]:6379/x', 'https://169.254.169.254/latest/meta-data']) {
    const r = await h.api<Record<string, unknown>>('COPY', data('/tpc/x'), undefined, { ...bearer(t), source: src });
    assert.equal(r.status, 403, src);
    assert.equal(r.body['code'], 'CARGO_ERR_ADDRESS_REFUSED', src);
  }
  assert.equal(existsSync(join(h.cfg.dataDir, 'storage', 'tpc', 'x')), false);
});

test('keys: discovery + JWKS are cached; an unknown kid refetches once (rate-limited); a rotated key is picked up', async () => {
  let now = Date.now();
  const [settings] = parseIssuerSettings([{ issuer: iss.issuer, basePath: '/' }], [AUD]);
  const v = new TokenVerifier([settings!], {
    clockSkewSec: 60, maxLifetimeSec: 21600, now: () => now,
    keys: { refreshMs: 6 * 3600_000, maxAgeMs: 48 * 3600_000, unknownKidRefetchMs: 60_000, ca: [readFileSync(testTls().certPath, 'utf8')] },
  });
  try {
    const before = iss.jwksFetches;
    await v.verify(iss.mint({ scope: 'storage.read:/' }));
    await v.verify(iss.mint({ scope: 'storage.read:/' }, { key: 'ec' }));
    assert.equal(iss.jwksFetches - before, 1, 'one JWKS fetch for two tokens');
    const rotated = iss.addKey();
    const t = iss.mint({ scope: 'storage.read:/' }, { key: rotated.privateKey });
    await assert.rejects(v.verify(t), /no key/, 'within the refetch interval an unknown kid is not fetched again');
    assert.equal(iss.jwksFetches - before, 1);
    now += 61_000;
    const p = await v.verify(t);
    assert.equal(p.owner, `localhost:alice`);
    assert.equal(iss.jwksFetches - before, 2);
    for (let i = 0; i < 5; i++) await assert.rejects(v.verify(iss.mint({ scope: 'storage.read:/' }, { key: rotated.privateKey, kid: `forged-${i}` })), /no key/);
    assert.equal(iss.jwksFetches - before, 2, 'forged kids do not make us hammer the issuer');
  } finally {
    await v.close();
  }
});
