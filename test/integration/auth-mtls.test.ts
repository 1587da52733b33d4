/**
 * Issue 13, mutual TLS: a real port (gateway + worker) with authorisation on asks for optional client certificates,
 * trusting a grid-style CA directory made here with openssl. A mapped DN gets its groups' rights and is the job
 * owner; HTTP/2 (undici, curl) and the HTTP/1.1-only listener alike. Refused with 401 and nothing written: a
 * certificate of an untrusted CA, an expired one, none at all; an unmapped DN is anonymous. A bearer token wins over
 * the certificate. An RFC 3820 proxy maps to its end-entity DN. davix and gfal-copy with X.509 credentials.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { hasTool, runTool, testCaDir } from '../support/external-tools.js';
import { makeGridCerts, type GridCert, type GridCerts } from '../support/grid-certs.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';

const AUD = 'https://cargoport.test';
let certs: GridCerts;
let iss: TestIssuer;
let h: Harness;
let work = '';
let area = '';
let skipReason: string | undefined;
const agents: Agent[] = [];

before(async () => {
  if (!hasTool('openssl')) {
    skipReason = 'openssl not installed';
    return;
  }
  work = mkdtempSync(join(tmpdir(), 'cp-mtls-'));
  certs = makeGridCerts(join(work, 'pki'));
  area = join(work, 'area');
  mkdirSync(join(area, 'in'), { recursive: true });
  mkdirSync(join(area, 'out'), { recursive: true });
  iss = await startTestIssuer(AUD);
  h = await startHarness({
    gateway: { host: '127.0.0.1', port: 0, http1Port: 0 },
    auth: {
      insecureOpen: false, allowAddresses: [], issuerCaFile: testTls().certPath, audiences: [AUD],
      issuers: [{ issuer: iss.issuer, name: 'test', basePath: '/' }],
      clientCaDir: certs.caDir,
      clientCerts: [
        { dn: certs.alice.dn, name: 'alice', groups: ['/vo/prod'] },
        { dnPattern: '/DC=org/DC=cargoport-test/O=Robots/CN=transfer-[0-9]+', groups: ['/vo/robots'], admin: true },
        { dn: '/DC=org/DC=cargoport-test/O=People/CN=Revoked Rita', name: 'rita', groups: ['/vo/prod'] },
      ],
      clientCertGroups: [
        { group: '/vo/prod', path: '/vo', rights: ['read', 'create'] },
        { group: '/vo/prod', path: '/area', rights: ['read', 'create'] },
      ],
      localAreas: [{ dir: area, path: '/area' }],
    },
  });
  mkdirSync(join(h.cfg.dataDir, 'storage', 'vo'), { recursive: true });
});
after(async () => {
  for (const a of agents) await a.close();
  await h?.close();
  await iss?.close();
  if (h) rmSync(h.cfg.dataDir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

/** An HTTP/2 client presenting `c` (or no certificate). */
function client(c?: GridCert): Agent {
  const a = new Agent({
    allowH2: true,
    connect: { ca: testTls().cert, ...(c ? { cert: readFileSync(c.chain), key: readFileSync(c.key) } : {}) },
  });
  agents.push(a);
  return a;
}

async function call(a: Agent, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(`${h.gateway.url}${path}`, { method: method as 'GET', dispatcher: a, body, headers });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

const stored = (p: string) => join(h.cfg.dataDir, 'storage', p);

test('a mapped client certificate reads and writes by its groups\' rights over HTTP/2; nothing else', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const alice = client(certs.alice);
  const put = await call(alice, 'PUT', '/data/vo/a.bin', 'from alice');
  assert.equal(put.status, 201, put.text);
  assert.equal(readFileSync(stored('vo/a.bin'), 'utf8'), 'from alice');
  const get = await call(alice, 'GET', '/data/vo/a.bin');
  assert.equal(get.status, 200);
  assert.equal(get.text, 'from alice');
  // create never overwrites; no rights outside /vo.
  assert.equal((await call(alice, 'PUT', '/data/vo/a.bin', 'again')).status, 403);
  assert.equal((await call(alice, 'PUT', '/data/other/x.bin', 'x')).status, 403);
  assert.ok(!existsSync(stored('other/x.bin')));
  assert.equal((await call(alice, 'POST', '/api/v1/admin/pause', '{}', { 'content-type': 'application/json' })).status, 403, 'not an admin');
});

test('401 without a credential, with an untrusted CA, an expired or revoked (CA directory CRL) certificate, or an unmapped DN; nothing written', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const cases: Array<[string, GridCert | undefined, RegExp]> = [
    ['no certificate', undefined, /needs a bearer token/],
    ['untrusted CA', certs.rogue, /client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
    ['expired', certs.expired, /client certificate refused: CERT_HAS_EXPIRED/],
    ['revoked', certs.revoked, /client certificate refused: CERT_REVOKED/],
    ['unmapped DN', certs.bob, /needs a bearer token/],
  ];
  for (const [what, c, why] of cases) {
    const a = client(c);
    const r = await call(a, 'PUT', `/data/vo/${what.replace(/ /g, '-')}.bin`, 'x');
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    assert.match(r.text, why, what);
    assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    assert.ok(!existsSync(stored(`vo/${what.replace(/ /g, '-')}.bin`)), `${what}: nothing written`);
    assert.equal((await call(a, 'GET', '/api/v1/jobs')).status, 401, `${what}: REST API`);
  }
});

test('a bearer token wins over the client certificate', async (t) => {
  if (skipReason) return t.skip(skipReason);
  writeFileSync(join(h.cfg.dataDir, 'storage', 'vo', 'tok.bin'), 'tok');
  const alice = client(certs.alice);
  const readOnly = iss.mint({ aud: AUD, sub: 'tokenuser', scope: 'storage.read:/vo' });
  const put = await call(alice, 'PUT', '/data/vo/by-token.bin', 'x', { authorization: `Bearer ${readOnly}` });
  assert.equal(put.status, 403, 'the token (read-only) decides, not the certificate (create)');
  assert.ok(!existsSync(stored('vo/by-token.bin')));
  const bad = await call(alice, 'GET', '/data/vo/tok.bin', undefined, { authorization: 'Bearer not.a.token' });
  assert.equal(bad.status, 401, 'a bad token is not rescued by the certificate');
});

test('jobs: the owner is the mapped identity; users see their own jobs only', async (t) => {
  if (skipReason) return t.skip(skipReason);
  writeFileSync(join(area, 'in', 'j.bin'), 'job payload');
  const alice = client(certs.alice);
  const r = await call(alice, 'POST', '/api/v1/jobs', JSON.stringify({ files: [{ source: `file://${area}/in/j.bin`, destination: `file://${area}/out/j.bin` }] }), { 'content-type': 'application/json' });
  assert.equal(r.status, 201, r.text);
  const jobId = String(JSON.parse(r.text).jobId);
  let job: Record<string, unknown>;
  for (;;) {
    job = JSON.parse((await call(alice, 'GET', `/api/v1/jobs/${jobId}`)).text);
    if (job['state'] !== 'ACTIVE') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(job['state'], 'FINISHED', JSON.stringify(job));
  assert.equal(job['owner'], 'x509:alice');
  assert.equal(readFileSync(join(area, 'out', 'j.bin'), 'utf8'), 'job payload');
  const other = iss.mint({ aud: AUD, sub: 'eve', scope: 'storage.read:/area' });
  assert.equal((await call(client(), 'GET', `/api/v1/jobs/${jobId}`, undefined, { authorization: `Bearer ${other}` })).status, 403);
  const mine = JSON.parse((await call(alice, 'GET', '/api/v1/jobs')).text) as { jobs: Array<{ jobId: string }> };
  assert.deepEqual(mine.jobs.map((j) => j.jobId), [jobId]);
});

test('a dnPattern rule: its group rights, admin rights, owner x509:<DN>', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const robot = client(certs.robot);
  assert.equal((await call(robot, 'PUT', '/data/vo/robot.bin', 'x')).status, 403, '/vo/robots has no rule in clientCertGroups');
  const pause = await call(robot, 'POST', '/api/v1/admin/pause', '{}', { 'content-type': 'application/json' });
  assert.ok(pause.status < 300, `admin: ${pause.status} ${pause.text}`);
  const resume = await call(robot, 'POST', '/api/v1/admin/resume', '{}', { 'content-type': 'application/json' });
  assert.ok(resume.status < 300, `admin: ${resume.status} ${resume.text}`);
  const jobs = await call(robot, 'GET', '/api/v1/jobs');
  assert.equal(jobs.status, 200, 'an admin lists every job');
});

test('an RFC 3820 proxy certificate maps to its end-entity DN', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const proxy = client(certs.aliceProxy);
  const put = await call(proxy, 'PUT', '/data/vo/by-proxy.bin', 'proxy');
  assert.equal(put.status, 201, put.text);
  assert.equal(readFileSync(stored('vo/by-proxy.bin'), 'utf8'), 'proxy');
});

test('curl --cert over HTTP/2 and on the HTTP/1.1-only listener', async (t) => {
  if (skipReason) return t.skip(skipReason);
  if (!hasTool('curl')) return t.skip('curl not installed');
  const file = join(work, 'curl.bin');
  writeFileSync(file, 'by curl');
  const base = h.gateway.url;
  const h1 = `https://127.0.0.1:${h.gateway.http1Port}`;
  const curl = (url: string, c: GridCert | undefined, extra: string[]) =>
    runTool('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--cacert', testTls().certPath, ...(c ? ['--cert', c.chain, '--key', c.key] : []), ...extra, url]);
  let r = await curl(`${base}/data/vo/curl-h2.bin`, certs.alice, ['--http2', '-T', file]);
  assert.equal(r.stdout, '201 2', r.stderr);
  r = await curl(`${h1}/data/vo/curl-h1.bin`, certs.alice, ['--http1.1', '-T', file]);
  assert.equal(r.stdout, '201 1.1', r.stderr);
  r = await curl(`${h1}/data/vo/curl-h1-proxy.bin`, certs.aliceProxy, ['--http1.1', '-T', file]);
  assert.equal(r.stdout, '201 1.1', r.stderr);
  r = await curl(`${h1}/data/vo/curl-h1-anon.bin`, undefined, ['--http1.1', '-T', file]);
  assert.equal(r.stdout, '401 1.1');
  r = await curl(`${base}/data/vo/curl-h2-expired.bin`, certs.expired, ['--http2', '-T', file]);
  assert.equal(r.stdout, '401 2');
  assert.ok(existsSync(stored('vo/curl-h1-proxy.bin')) && !existsSync(stored('vo/curl-h2-expired.bin')));
});

test('davix with --cert/--key and gfal-copy with X509_USER_PROXY', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const file = join(work, 'tools.bin');
  writeFileSync(file, 'by grid tools');
  const port = new URL(h.gateway.url).port;
  // No BEARER_TOKEN at all: gfal2 sends `Authorization: Bearer` with an empty one when the variable is set but empty.
  const env = { X509_CERT_DIR: testCaDir(), BEARER_TOKEN_FILE: join(work, 'none'), XDG_RUNTIME_DIR: work };
  if (hasTool('davix-put')) {
    const up = await runTool('davix-put', ['--capath', testCaDir(), '--cert', certs.alice.cert, '--key', certs.alice.key, file, `https://localhost:${port}/data/vo/davix.bin`], { env });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(readFileSync(stored('vo/davix.bin'), 'utf8'), 'by grid tools');
    const anon = await runTool('davix-put', ['--capath', testCaDir(), file, `https://localhost:${port}/data/vo/davix-anon.bin`], { env });
    assert.notEqual(anon.code, 0);
    assert.ok(!existsSync(stored('vo/davix-anon.bin')));
  }
  if (hasTool('gfal-copy')) {
    const up = await runTool('gfal-copy', ['-f', `file://${file}`, `davs://localhost:${port}/data/vo/gfal.bin`], { env: { ...env, X509_USER_PROXY: join(work, 'pki', 'x509up') }, timeoutMs: 60_000 });
    assert.equal(up.code, 0, up.stderr + up.stdout);
    assert.equal(readFileSync(stored('vo/gfal.bin'), 'utf8'), 'by grid tools');
  }
  if (!hasTool('davix-put') && !hasTool('gfal-copy')) t.skip('neither davix nor gfal2 installed');
});
