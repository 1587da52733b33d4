/**
 * RFC 8693 token exchange as an outbound token source (auth.outbound `source: token-exchange`), against a real OIDC
 * issuer over TLS that answers token-exchange and refresh_token grants, and a source HTTP/2 server that checks every
 * request's token (signature by the issuer's key, not expired, the read scope for that file, the submitter's `sub`).
 *
 * A real port (gateway + worker, authorisation on): alice submits with her token; the gateway exchanges it once for
 * a grant covering the job's file, sealed in Redis; the worker refreshes it per request for `storage.read:/file`.
 * The source is slowed down and cuts its responses so the body spans more than one exchanged token's lifetime (2 s):
 * the job finishes only because the worker refreshed before expiry. Neither alice's token nor any exchanged or
 * refresh token is in Redis, the job's status or the file's.
 */
import assert from 'node:assert/strict';
import { verify as verifySig } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http2';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TokenSealer } from '../../services/auth/token-seal.js';
import { makeRandomFiles, sameContent, tempDir } from '../support/fixtures.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';

const KiB = 1024;
const SRC_AUD = 'https://source.example.org';
const PORT_AUD = 'https://cargoport.test';

let issuer: TestIssuer;
let src: H2FileServer;
const accepted = new Set<string>();
const refused: string[] = [];
const dirs: string[] = [];

function checkToken(method: string, path: string, headers: IncomingHttpHeaders): boolean {
  const m = /^Bearer (\S+)$/.exec(String(headers['authorization'] ?? ''));
  if (!m) return false;
  const token = m[1]!;
  const [h, p, s] = token.split('.');
  const ok = (() => {
    if (!h || !p || !s) return false;
    if (!verifySig('sha256', Buffer.from(`${h}.${p}`), issuer.rsa.publicKey, Buffer.from(s, 'base64url'))) return false;
    const c = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { exp: number; scope?: string; sub: string; aud: string };
    if (c.exp * 1000 <= Date.now() || c.sub !== 'alice' || c.aud !== SRC_AUD) return false;
    const file = decodeURIComponent(new URL(path, 'https://x').pathname);
    return (c.scope ?? '').split(' ').includes(`storage.read:${file}`) || method !== 'GET';
  })();
  if (ok) accepted.add(token);
  else refused.push(token);
  return ok;
}

before(async () => {
  issuer = await startTestIssuer(SRC_AUD);
  issuer.clients['cargoport'] = 'client-secret-x';
  const root = tempDir('xtok-src');
  dirs.push(root);
  src = await startH2FileServer({ root, authorize: (method, path, headers) => checkToken(method, path, headers) });
});
after(async () => {
  await src.close();
  await issuer.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function portWith(dst: string, clientSecret: string): Promise<Harness> {
  return startHarness({
    auth: {
      insecureOpen: false,
      issuerCaFile: testTls().certPath,
      audiences: [PORT_AUD],
      issuers: [{ issuer: issuer.issuer, name: 'test' }],
      localAreas: [{ dir: dst, path: '/dst' }],
      outbound: [{ prefix: src.origin, name: 'src-x', source: 'token-exchange', issuer: issuer.issuer, clientId: 'cargoport', clientSecret, audience: SRC_AUD }],
    },
  });
}

async function redisDump(h: Harness): Promise<string[]> {
  const out: string[] = [];
  for (const k of await h.redis.keys(`${h.cfg.redis.prefix}*`)) {
    const type = await h.redis.type(k);
    if (type === 'string') out.push(`${k}=${String(await h.redis.get(k))}`);
    else if (type === 'hash') out.push(JSON.stringify(await h.redis.hgetall(k)));
    else if (type === 'list') out.push(JSON.stringify(await h.redis.lrange(k, 0, -1)));
    else if (type === 'zset') out.push(JSON.stringify(await h.redis.zrange(k, 0, -1)));
    else if (type === 'set') out.push(JSON.stringify(await h.redis.smembers(k)));
    else if (type === 'stream') out.push(JSON.stringify(await h.redis.xrange(k, '-', '+')));
  }
  return out;
}

test('a job longer than its exchanged token\'s lifetime completes: exchanged once at submission, refreshed per request, narrowly scoped, for the submitter', async () => {
  issuer.tokenLifetimeSec = 2;
  const [f] = makeRandomFiles(src.root, 1, 256 * KiB, 256 * KiB, 'long');
  const dst = tempDir('xtok-dst');
  dirs.push(dst);
  const h = await portWith(dst, 'client-secret-x');
  try {
    const alice = issuer.mint({ sub: 'alice', aud: PORT_AUD, scope: 'storage.create:/dst' });
    const auth = { authorization: `Bearer ${alice}` };
    const grantsBefore = issuer.grants.length;
    const exchangesBefore = issuer.exchanges.length;
    // 256 KiB at 32 KiB/s, cut after 64 KiB three times: four GETs over more than 2 s (see outbound-tokens.test).
    src.faults.bytesPerSec = 32 * KiB;
    src.faults.resetAfter = { count: 3, afterBytes: 64 * KiB };
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: [{ source: src.url(`/${f!.name}`), destination: `file://${dst}/${f!.name}`, checksum: `adler32:${f!.adler32}` }],
      params: { retries: 0 },
    }, auth);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    let job: Record<string, unknown> = {};
    for (let i = 0; i < 600; i++) {
      job = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${r.body.jobId}`, undefined, auth)).body;
      if (job['state'] !== 'ACTIVE') break;
      await sleep(100);
    }
    const file = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`, undefined, auth)).body;
    assert.equal(job['state'], 'FINISHED', JSON.stringify(file));
    assert.ok(sameContent(join(src.root, f!.name), join(dst, f!.name)));
    assert.deepEqual(refused, [], 'no request carried an expired, foreign or wrongly scoped token');
    assert.ok(accepted.size >= 2, `the exchanged grant was refreshed during the transfer (${accepted.size} tokens)`);
    // One exchange, at submission, for alice, with the file's narrow scope and the source's audience.
    assert.deepEqual(issuer.exchanges.slice(exchangesBefore), [{ clientId: 'cargoport', subject: 'alice', scope: `storage.read:/${f!.name}`, audience: SRC_AUD }]);
    const refreshes = issuer.grants.slice(grantsBefore).filter((g) => g.grant === 'refresh_token');
    assert.ok(refreshes.length >= 2, `refreshes: ${JSON.stringify(refreshes)}`);
    assert.ok(refreshes.every((g) => g.scope === `storage.read:/${f!.name}`));
    // No token in clear in Redis or what the port shows: the grant is sealed (and opens only with the port's key and this job's id).
    const stored = await redisDump(h);
    const shown = JSON.stringify([job, file]);
    for (const t of [alice, ...accepted]) {
      const sig = t.split('.')[2]!;
      assert.ok(!stored.some((s) => s.includes(sig)), 'no token in Redis');
      assert.ok(!shown.includes(sig), 'no token in the job or file status');
    }
    const sealed = stored.find((s) => s.includes(':xgrant:'))!;
    assert.ok(sealed, 'the sealed grant is stored under the job');
    assert.doesNotMatch(sealed, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}.*[0-9a-f]{8}-[0-9a-f]{4}/, 'no refresh token (a UUID at this issuer) in clear');
    const value = sealed.slice(sealed.indexOf('=') + 1);
    const sealer = TokenSealer.fromConfig(h.cfg.auth, h.cfg.dataDir);
    assert.match(sealer.open(value, `${r.body.jobId}/src-x`), /refreshToken/);
    assert.throws(() => sealer.open(value, 'another-job/src-x'), /does not open/);
  } finally {
    src.faults.bytesPerSec = undefined;
    src.faults.resetAfter = undefined;
    await h.close();
  }
});

test('a failing exchange refuses the submission (502 CARGO_ERR_OUTBOUND_TOKEN, no secret or token in the answer) and creates no job', async () => {
  issuer.tokenLifetimeSec = 3600;
  const [f] = makeRandomFiles(src.root, 1, 4 * KiB, 4 * KiB, 'bad');
  const dst = tempDir('xtok-bad');
  dirs.push(dst);
  const h = await portWith(dst, 'wrong-secret');
  try {
    const alice = issuer.mint({ sub: 'alice', aud: PORT_AUD, scope: 'storage.create:/dst' });
    const r = await h.api<{ code: string; detail: string }>('POST', '/api/v1/jobs', {
      files: [{ source: src.url(`/${f!.name}`), destination: `file://${dst}/${f!.name}` }],
    }, { authorization: `Bearer ${alice}` });
    assert.equal(r.status, 502, JSON.stringify(r.body));
    assert.equal(r.body.code, 'CARGO_ERR_OUTBOUND_TOKEN');
    assert.ok(!JSON.stringify(r.body).includes('wrong-secret') && !JSON.stringify(r.body).includes(alice.split('.')[2]!));
    const jobs = await h.api<{ jobs: unknown[] }>('GET', '/api/v1/jobs', undefined, { authorization: `Bearer ${alice}` });
    assert.deepEqual(jobs.body.jobs, []);
  } finally {
    await h.close();
  }
});
