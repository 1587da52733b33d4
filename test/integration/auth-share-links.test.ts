/**
 * Issue 13, share links: a real port with authorisation on, users' tokens from a real issuer over TLS. A user who
 * may read a file or folder asks for a link the way dCache and XRootD clients do (POST with Content-Type
 * application/macaroon-request), and anyone can then use it with curl (Authorization: Bearer, ?authz=,
 * ?access_token=) and gfal-copy; links expire, are revoked, run out of downloads, are paced by their rate cap,
 * never reach outside their path, never write, never make further links. `cargoport share` end to end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';
import { hasTool, runTool, testCaDir } from '../support/external-tools.js';
import { rateSlope, type RateSample } from '../support/rate-slope.js';
import { parseShareRequest } from '../../services/auth/share-links.js';
import { queryToken, redactUrl } from '../../gateway/auth.js';

const AUD = 'https://cargoport.test';
const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
let iss: TestIssuer;
let h: Harness;
let storageRoot: string;

before(async () => {
  iss = await startTestIssuer(AUD);
  h = await startHarness({
    auth: {
      insecureOpen: false,
      allowAddresses: [],
      issuerCaFile: testTls().certPath,
      audiences: [AUD],
      clockSkewSec: 0,
      shareMaxValiditySec: 86400,
      issuers: [{ issuer: iss.issuer, name: 'test', basePath: '/', adminGroups: ['/wlcg/ops'] }],
    },
  });
  storageRoot = join(h.cfg.dataDir, 'storage');
  mkdirSync(join(storageRoot, 'a', 'sub'), { recursive: true });
  mkdirSync(join(storageRoot, 'ab'), { recursive: true });
  mkdirSync(join(storageRoot, 'b'), { recursive: true });
  writeFileSync(join(storageRoot, 'a', 'one.txt'), 'one\n');
  writeFileSync(join(storageRoot, 'a', 'sub', 'two.txt'), 'two\n');
  writeFileSync(join(storageRoot, 'ab', 'x.txt'), 'not shared\n');
  writeFileSync(join(storageRoot, 'b', 'secret.txt'), 'secret\n');
  writeFileSync(join(storageRoot, 'a', 'big.bin'), Buffer.alloc(1536 * 1024, 7));
});
after(async () => {
  await h?.close();
  await iss?.close();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const alice = () => iss.mint({ sub: 'alice', scope: 'storage.read:/a storage.read:/ab storage.modify:/alice' });
const bob = () => iss.mint({ sub: 'bob', scope: 'storage.read:/b' });
const ops = () => iss.mint({ sub: 'ops', scope: 'storage.read:/nothing', 'wlcg.groups': ['/wlcg/ops'] });

interface ShareAnswer {
  macaroon: string;
  uri: { targetWithMacaroon: string; baseUri: string; target: string };
  id: string;
  expiresAt: string;
}

async function share(path: string, body: unknown, token: string | null = alice()): Promise<{ status: number; body: ShareAnswer & { code?: string } }> {
  return h.api<ShareAnswer & { code?: string }>('POST', `/data${path}`, JSON.stringify(body), {
    'content-type': 'application/macaroon-request', ...(token ? bearer(token) : {}),
  });
}

function curl(args: string[]): Promise<{ code: number; status: number; body: string }> {
  return new Promise((res) => {
    execFile('curl', ['-s', '--http2', '--cacert', testTls().certPath, '-o', '-', '-w', '\n%{http_code}', ...args], { maxBuffer: 16 << 20 }, (err, stdout) => {
      const out = String(stdout);
      const nl = out.lastIndexOf('\n');
      res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, status: Number(out.slice(nl + 1)), body: out.slice(0, nl) });
    });
  });
}

test('the macaroon request answers dCache\'s shape; the link reads with curl as Bearer, ?authz= and ?access_token=', async () => {
  const r = await share('/a/one.txt', { caveats: ['activity:DOWNLOAD,LIST'], validity: 'PT1H' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const { macaroon, uri } = r.body;
  assert.equal(uri.target, `${h.gateway.url}/data/a/one.txt`);
  assert.equal(uri.baseUri, `${h.gateway.url}/data/`);
  assert.equal(uri.targetWithMacaroon, `${uri.target}?authz=${macaroon}`);
  assert.ok(Date.parse(r.body.expiresAt) > Date.now() + 3500_000);
  // The token is a WLCG token of the port's share issuer with exactly one read scope.
  const claims = JSON.parse(Buffer.from(macaroon.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  assert.equal(claims['scope'], 'storage.read:/a/one.txt');
  assert.equal(claims['jti'], r.body.id);

  assert.deepEqual(await curl(['-H', `Authorization: Bearer ${macaroon}`, uri.target]), { code: 0, status: 200, body: 'one\n' });
  assert.deepEqual(await curl([uri.targetWithMacaroon]), { code: 0, status: 200, body: 'one\n' });
  assert.deepEqual(await curl([`${uri.target}?access_token=${macaroon}`]), { code: 0, status: 200, body: 'one\n' });
  assert.deepEqual(await curl([`${uri.target}?authz=Bearer%20${macaroon}`]), { code: 0, status: 200, body: 'one\n' });
  // Without it: 401.
  assert.equal((await curl([uri.target])).status, 401);
  // A query token is for storage URLs only: the API ignores it (anonymous, and an unknown query parameter).
  const api = await curl([`${h.gateway.url}/api/v1/jobs?authz=${macaroon}`]);
  assert.ok(api.status === 400 || api.status === 401, String(api.status));
});

test('path escape refused: a link for /a reads /a/… only, never /ab, /b or /a/../b', async () => {
  const r = await share('/a', { caveats: ['activity:DOWNLOAD,LIST'], validity: 'PT10M' });
  assert.equal(r.status, 200);
  const t = r.body.macaroon;
  assert.equal(r.body.uri.target, `${h.gateway.url}/data/a/`);
  assert.equal((await h.api('GET', '/data/a/one.txt', undefined, bearer(t))).body, 'one\n');
  assert.equal((await h.api('GET', '/data/a/sub/two.txt', undefined, bearer(t))).body, 'two\n');
  const listing = await h.api<{ entries: Array<{ name: string }> }>('GET', '/data/a/', undefined, { ...bearer(t), accept: 'application/json' });
  assert.equal(listing.status, 200);
  assert.ok(listing.body.entries.some((e) => e.name === 'one.txt'));
  assert.equal((await h.api('PROPFIND', '/data/a/', undefined, { ...bearer(t), depth: '1' })).status, 207);
  // Opened in a browser with ?authz=, the listing's links carry the link on, and open.
  const html = await curl([r.body.uri.targetWithMacaroon]);
  assert.equal(html.status, 200);
  const href = /href="([^"]*one\.txt[^"]*)"/.exec(html.body)?.[1];
  assert.equal(href, `/data/a/one.txt?authz=${t}`);
  assert.deepEqual(await curl([`${h.gateway.url}${href}`]), { code: 0, status: 200, body: 'one\n' });
  for (const p of ['/data/ab/x.txt', '/data/b/secret.txt', '/data/ab', '/data/']) {
    assert.equal((await h.api('GET', p, undefined, bearer(t))).status, 403, p);
  }
  for (const p of ['/data/a/../b/secret.txt', '/data/a/%2e%2e/b/secret.txt', '/data/a/..%2fb/secret.txt']) {
    const s = (await curl(['--path-as-is', '-H', `Authorization: Bearer ${t}`, `${h.gateway.url}${p}`]));
    assert.ok(s.status === 400 || s.status === 403, `${p}: ${s.status}`);
    assert.doesNotMatch(s.body, /^secret$/m);
  }
});

test('a link never writes, deletes or makes further links, and is not an identity for the API', async () => {
  const t = (await share('/a', { validity: 'PT10M' })).body.macaroon;
  assert.equal((await h.api('PUT', '/data/a/new.txt', 'x', bearer(t))).status, 403);
  assert.equal((await h.api('DELETE', '/data/a/one.txt', undefined, bearer(t))).status, 403);
  assert.equal((await h.api('MKCOL', '/data/a/newdir', undefined, bearer(t))).status, 403);
  assert.equal((await h.api('MOVE', '/data/a/one.txt', undefined, { ...bearer(t), destination: `${h.gateway.url}/data/a/moved.txt` })).status, 403);
  assert.equal(existsSync(join(storageRoot, 'a', 'new.txt')), false);
  assert.equal(existsSync(join(storageRoot, 'a', 'one.txt')), true);
  const again = await share('/a/one.txt', { validity: 'PT1M' }, t);
  assert.equal(again.status, 403);
  assert.equal(again.body.code, 'CARGO_ERR_FORBIDDEN');
  for (const [m, p] of [['GET', '/api/v1/jobs'], ['GET', '/api/v1/shares'], ['POST', '/api/v1/jobs']] as const) {
    const r = await h.api(m, p, m === 'POST' ? { files: [{ source: `${h.gateway.url}/data/a/one.txt`, destination: 'https://example.org/x' }] } : undefined, bearer(t));
    assert.equal(r.status, 403, `${m} ${p}`);
  }
});

test('who may ask, for what: identified with read, read activities only, validity within the maximum', async () => {
  assert.equal((await share('/a/one.txt', { validity: 'PT1M' }, null)).status, 401);
  const noRead = await share('/b/secret.txt', { validity: 'PT1M' }, alice());
  assert.equal(noRead.status, 403);
  // Authorisation before existence: 403 for a path the caller may not read, 404 only when it may.
  assert.equal((await share('/b/missing', { validity: 'PT1M' }, alice())).status, 403);
  assert.equal((await share('/a/missing', { validity: 'PT1M' }, alice())).status, 404);
  for (const [body, field] of [
    [{ caveats: ['activity:DOWNLOAD,UPLOAD'], validity: 'PT1H' }, 'caveats'],
    [{ caveats: ['activity:DELETE'] }, 'caveats'],
    [{ caveats: ['activity:MANAGE'] }, 'caveats'],
    [{ caveats: ['ip:10.0.0.0/8'] }, 'caveats'],
    [{ validity: 'P2D' }, 'validity'],
    [{ validity: 'soon' }, 'validity'],
    [{ downloads: 0 }, 'downloads'],
    [{ rateBytesPerSec: -1 }, 'rateBytesPerSec'],
    [{ other: 1 }, 'other'],
  ] as const) {
    const r = await share('/a/one.txt', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.code, 'CARGO_ERR_BAD_SHARE_REQUEST', JSON.stringify(body));
    assert.equal((r.body as unknown as { field?: string }).field, field);
  }
  // Any other POST on the storage endpoint stays 405.
  assert.equal((await h.api('POST', '/data/a/one.txt', 'x', { ...bearer(alice()), 'content-type': 'text/plain' })).status, 405);
  // A LIST-only link lists and stats but downloads nothing.
  const listOnly = (await share('/a', { caveats: ['activity:LIST,READ_METADATA'] })).body.macaroon;
  assert.equal((await h.api('GET', '/data/a/', undefined, bearer(listOnly))).status, 200);
  assert.equal((await h.api('HEAD', '/data/a/one.txt', undefined, bearer(listOnly))).status, 200);
  assert.equal((await h.api('GET', '/data/a/one.txt', undefined, bearer(listOnly))).status, 403);
});

test('expiry: a link stops working when its validity is over', async () => {
  const r = await share('/a/one.txt', { validity: 'PT2S' });
  assert.equal(r.status, 200);
  assert.equal((await curl([r.body.uri.targetWithMacaroon])).status, 200);
  await new Promise((res) => setTimeout(res, Date.parse(r.body.expiresAt) - Date.now() + 1100));
  const after = await h.api('GET', '/data/a/one.txt', undefined, bearer(r.body.macaroon));
  assert.equal(after.status, 401);
  assert.match(String(after.headers['www-authenticate']), /invalid_token.*expired/);
});

test('revocation: the maker or an administrator; listing shows one\'s own links', async () => {
  const a = await share('/a/one.txt', { validity: 'PT1H' });
  const b = await share('/b/secret.txt', { validity: 'PT1H' }, bob());
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  const mine = await h.api<Array<{ id: string; owner: string; path: string }>>('GET', '/api/v1/shares', undefined, bearer(alice()));
  assert.equal(mine.status, 200);
  assert.ok(mine.body.some((s) => s.id === a.body.id && s.owner === 'test:alice' && s.path === '/a/one.txt'));
  assert.ok(!mine.body.some((s) => s.id === b.body.id), 'bob\'s link is not listed to alice');
  const all = await h.api<Array<{ id: string }>>('GET', '/api/v1/shares', undefined, bearer(ops()));
  assert.ok(all.body.some((s) => s.id === a.body.id) && all.body.some((s) => s.id === b.body.id));
  // Nothing in Redis holds a token.
  for (const k of await h.redis.keys(`${h.cfg.redis.prefix}:share*`)) {
    const dump = JSON.stringify(k.endsWith(':shares') ? await h.redis.zrange(k, 0, -1) : await h.redis.hgetall(k));
    assert.ok(!dump.includes(a.body.macaroon.split('.')[2]!) && !dump.includes(b.body.macaroon.split('.')[2]!));
  }

  assert.equal((await h.api('DELETE', `/api/v1/shares/${a.body.id}`, undefined, bearer(bob()))).status, 404, 'not bob\'s');
  assert.equal((await curl([a.body.uri.targetWithMacaroon])).status, 200, 'still valid');
  const rv = await h.api<{ revoked: boolean }>('DELETE', `/api/v1/shares/${a.body.id}`, undefined, bearer(alice()));
  assert.equal(rv.status, 200);
  assert.equal(rv.body.revoked, true);
  const gone = await h.api('GET', '/data/a/one.txt', undefined, bearer(a.body.macaroon));
  assert.equal(gone.status, 401);
  assert.match(String(gone.headers['www-authenticate']), /revoked/);
  assert.equal((await curl([a.body.uri.targetWithMacaroon])).status, 401);
  // An administrator revokes anyone's.
  assert.equal((await h.api('DELETE', `/api/v1/shares/${b.body.id}`, undefined, bearer(ops()))).status, 200);
  assert.equal((await h.api('GET', '/data/b/secret.txt', undefined, bearer(b.body.macaroon))).status, 401);
  assert.equal((await h.api('DELETE', '/api/v1/shares/nosuchid', undefined, bearer(ops()))).status, 404);
});

test('download count: N downloads, then 403 CARGO_ERR_SHARE_EXHAUSTED; HEAD and later ranges are not downloads', async () => {
  const r = await share('/a/one.txt', { validity: 'PT1H', downloads: 2 });
  const t = r.body.macaroon;
  assert.equal((await h.api('HEAD', '/data/a/one.txt', undefined, bearer(t))).status, 200);
  assert.equal((await h.api('GET', '/data/a/one.txt', undefined, bearer(t))).status, 200);
  assert.equal((await h.api('GET', '/data/a/one.txt', undefined, { ...bearer(t), range: 'bytes=2-' })).status, 206);
  assert.equal((await curl([r.body.uri.targetWithMacaroon])).status, 200);
  const third = await h.api<{ code: string }>('GET', '/data/a/one.txt', undefined, bearer(t));
  assert.equal(third.status, 403);
  assert.equal(third.body.code, 'CARGO_ERR_SHARE_EXHAUSTED');
  const listed = await h.api<Array<{ id: string; used: number; downloads: number }>>('GET', '/api/v1/shares', undefined, bearer(alice()));
  const rec = listed.body.find((s) => s.id === r.body.id)!;
  assert.equal(rec.used, 2);
  assert.equal(rec.downloads, 2);
});

test('rate cap: a link\'s downloads are paced at its byte rate (measured as a slope, not a duration)', async () => {
  const cap = 512 * 1024;
  const t = (await share('/a/big.bin', { validity: 'PT1H', rateBytesPerSec: cap })).body.macaroon;
  const agent = new Agent({ allowH2: true, connect: { ca: testTls().cert } });
  try {
    const res = await request(`${h.gateway.url}/data/a/big.bin`, { dispatcher: agent, headers: bearer(t) });
    assert.equal(res.statusCode, 200);
    const t0 = performance.now();
    let n = 0;
    const samples: RateSample[] = [];
    for await (const c of res.body) {
      n += (c as Buffer).length;
      samples.push([performance.now() - t0, n]);
    }
    assert.equal(n, 1536 * 1024);
    // Past the first burst (250 ms of rate) the slope is the cap.
    const steady = samples.filter(([, b]) => b > cap / 2);
    const slope = rateSlope(steady);
    assert.ok(slope < cap * 1.25 && slope > cap * 0.5, `slope ${Math.round(slope)} B/s vs cap ${cap}`);
  } finally {
    await agent.close();
  }
});

test('cargoport share / shares list / shares revoke end to end; gfal-copy and davix-get download with the link', async () => {
  const work = mkdtempSync(join(tmpdir(), 'cp-share-cli-'));
  try {
    const configFile = join(work, 'config.yaml');
    writeFileSync(configFile, `dataDir: ${work}\ngateway:\n  port: 0\n  tlsCert: ${testTls().certPath}\n`);
    const cli = join(repoRoot, 'bin', 'cargoport.js');
    const token = alice();
    const run = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
      execFile(process.execPath, [cli, '--config', configFile, ...args, '--url', h.gateway.url, '--token', token], { env: { PATH: process.env['PATH'] ?? '', HOME: work } }, (err, stdout, stderr) => res({ code: err ? Number(err.code) : 0, stdout, stderr }));
    });
    const made = await run('share', '/a/one.txt', '--for', '1h', '--downloads', '5', '--rate', '10M');
    assert.equal(made.code, 0, made.stderr);
    const url = made.stdout.trim();
    assert.match(url + made.stderr, new RegExp(`^${h.gateway.url.replace(/[.]/g, '\\.')}/data/a/one\\.txt\\?authz=[A-Za-z0-9_.-]+$`));
    assert.deepEqual(await curl([url]), { code: 0, status: 200, body: 'one\n' });
    if (hasTool('gfal-copy')) {
      const dest = join(work, 'got.txt');
      const g = await runTool('gfal-copy', ['-f', url.replace(/^https:/, 'davs:'), `file://${dest}`], { timeoutMs: 60_000 });
      assert.equal(g.code, 0, g.stderr);
      assert.equal(readFileSync(dest, 'utf8'), 'one\n');
    }
    if (hasTool('davix-get')) {
      const dest = join(work, 'davix.txt');
      const d = await runTool('davix-get', ['--capath', testCaDir(), url, dest], { timeoutMs: 60_000 });
      assert.equal(d.code, 0, d.stderr);
      assert.equal(readFileSync(dest, 'utf8'), 'one\n');
    }
    const list = await run('shares', 'list');
    assert.equal(list.code, 0, list.stderr);
    const line = list.stdout.split('\n').find((l) => l.includes('/a/one.txt') && l.includes('/5'))!;
    assert.ok(line, list.stdout);
    assert.match(line, /rate 10000000 B\/s/);
    const id = line.split(/\s+/)[0]!;
    const rv = await run('shares', 'revoke', id);
    assert.equal(rv.code, 0, rv.stderr);
    assert.equal(rv.stdout.trim(), `revoked ${id}`);
    assert.equal((await curl([url])).status, 401);
    const bad = await run('share', '/a/one.txt', '--for', '30d');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /CARGO_ERR_BAD_SHARE_REQUEST|longer than/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('units: request parsing, query tokens only on storage URLs, log redaction', () => {
  assert.deepEqual(parseShareRequest({ caveats: ['activity:DOWNLOAD,LIST'], validity: 'PT1H' }, 7200), { download: true, validitySec: 3600 });
  assert.deepEqual(parseShareRequest({}, 600), { download: true, validitySec: 600 });
  assert.equal(parseShareRequest({ caveats: ['activity:DOWNLOAD,LIST', 'activity:LIST'] }, 600).download, false, 'caveats narrow each other');
  assert.equal(queryToken('/data/x?authz=abc', '/data'), 'abc');
  assert.equal(queryToken('/data/x?a=1&access_token=abc', '/data'), 'abc');
  assert.equal(queryToken('/data/x?authz=Bearer%20abc', '/data'), 'abc');
  assert.equal(queryToken('/api/v1/jobs?authz=abc', '/data'), undefined);
  assert.equal(queryToken('/database?authz=abc', '/data'), undefined);
  assert.equal(redactUrl('/data/x?a=1&authz=abc.def&access_token=x'), '/data/x?a=1&authz=REDACTED&access_token=REDACTED');
});
