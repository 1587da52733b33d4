/**
 * Outbound tokens (auth.outbound, services/auth/outbound-tokens.ts) against real servers: a test OIDC issuer over TLS
 * that answers client-credentials grants (short-lived tokens), and a source HTTP/2 server that checks every
 * request's token — signature by the issuer's key, not expired, the scope for that path — and answers 401 otherwise.
 *
 * The long-transfer case runs through the jobs layer (a real port: gateway, worker, Redis): the source is slowed down
 * and cuts its responses, so the body comes in continuations spread over more than one token lifetime; it finishes
 * only if the worker's credential provider fetched a new token before the old one expired. The control case sends a
 * token that is never refreshed the same way and fails with the server's 401 — so the server really refuses expired
 * tokens and the first case cannot pass without the refresh.
 */
import assert from 'node:assert/strict';
import { verify as verifySig } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../config/load.js';
import { isCargoError } from '../../errors/cargo-error.js';
import { FileTokenSource, narrowScope, parseOutboundTokens } from '../../services/auth/outbound-tokens.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { makeRandomFiles, sameContent, tempDir } from '../support/fixtures.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startStorageServer } from '../support/storage-server.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';

const KiB = 1024;
const AUD = 'https://source.example.org';

/** Tokens the source server accepted and refused, by token. */
interface Seen { accepted: Set<string>; refused: string[] }

/** A JWT check as a storage endpoint makes it: RS256 by the issuer's key, not expired, read scope on the path. */
function checkToken(issuer: TestIssuer, seen: Seen, method: string, path: string, headers: IncomingHttpHeaders): boolean {
  const m = /^Bearer (\S+)$/.exec(String(headers['authorization'] ?? ''));
  if (!m) return false;
  const token = m[1]!;
  const [h, p, s] = token.split('.');
  const ok = (() => {
    if (!h || !p || !s) return false;
    if (!verifySig('sha256', Buffer.from(`${h}.${p}`), issuer.rsa.publicKey, Buffer.from(s, 'base64url'))) return false;
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { exp: number; scope?: string };
    if (claims.exp * 1000 <= Date.now()) return false;
    if (claims.scope === undefined) return true; // a token without scopes (the control's static token)
    const file = decodeURIComponent(new URL(path, 'https://x').pathname);
    return claims.scope.split(' ').includes(`storage.read:${file}`) || method !== 'GET';
  })();
  if (ok) seen.accepted.add(token);
  else seen.refused.push(token);
  return ok;
}

describe('outbound tokens', () => {
  let issuer: TestIssuer;
  let src: H2FileServer;
  const seen: Seen = { accepted: new Set(), refused: [] };
  const dirs: string[] = [];
  before(async () => {
    issuer = await startTestIssuer(AUD);
    issuer.clients['cargoport'] = 'client-secret-1';
    const root = tempDir('otok-src');
    dirs.push(root);
    src = await startH2FileServer({ root, authorize: (method, path, headers) => checkToken(issuer, seen, method, path, headers) });
  });
  after(async () => {
    await src.close();
    await issuer.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /**
   * A body of 256 KiB in 16 KiB chunks at 32 KiB/s, cut after 64 KiB three times (the engine continues a cut body
   * at most three times per attempt): four GETs, each cut one after at least three pauses of 0.5 s, so the second
   * starts at least 1.5 s and the third at least 3 s after the first. Tokens live 2 s (exp in whole seconds: they
   * expire 1-2 s after minting), and are refreshed half-way through their lifetime.
   */
  const slowWithCuts = () => {
    src.faults.bytesPerSec = 32 * KiB;
    src.faults.resetAfter = { count: 3, afterBytes: 64 * KiB };
  };

  test('a job longer than its token lifetime completes: the worker fetches a fresh client-credentials token, narrowly scoped', async () => {
    issuer.tokenLifetimeSec = 2;
    const [f] = makeRandomFiles(src.root, 1, 256 * KiB, 256 * KiB, 'long');
    const dst = tempDir('otok-dst');
    dirs.push(dst);
    let h: Harness | undefined;
    try {
      h = await startHarness({
        auth: {
          issuerCaFile: testTls().certPath,
          outbound: [{ prefix: src.origin, name: 'src-cc', source: 'client-credentials', issuer: issuer.issuer, clientId: 'cargoport', clientSecret: 'client-secret-1' }],
        },
      });
      const grantsBefore = issuer.grants.length;
      seen.accepted.clear();
      seen.refused.length = 0;
      slowWithCuts();
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: [{ source: src.url(`/${f!.name}`), destination: `file://${dst}/${f!.name}`, checksum: `adler32:${f!.adler32}` }],
        params: { retries: 0 },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const job = await h.waitJob(r.body.jobId);
      const file = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
      assert.equal(job['state'], 'FINISHED', JSON.stringify(file));
      assert.ok(sameContent(join(src.root, f!.name), join(dst, f!.name)));
      assert.deepEqual(seen.refused, [], 'no request carried an expired or wrong token');
      assert.ok(seen.accepted.size >= 2, `the token was refreshed during the transfer (${seen.accepted.size} tokens)`);
      const grants = issuer.grants.slice(grantsBefore);
      assert.ok(grants.length >= 2);
      assert.ok(grants.every((g) => g.scope === `storage.read:/${f!.name}`), `narrowest scope asked: ${JSON.stringify(grants)}`);
      // The tokens are nowhere in what the port shows or stores.
      const shown = JSON.stringify([job, file, (await h.api('GET', `/api/v1/jobs/${r.body.jobId}/files`)).body]);
      const keys = await h.redis.keys(`${h.cfg.redis.prefix}*`);
      const stored: string[] = [];
      for (const k of keys) {
        const type = await h.redis.type(k);
        if (type === 'string') stored.push(String(await h.redis.get(k)));
        else if (type === 'hash') stored.push(JSON.stringify(await h.redis.hgetall(k)));
        else if (type === 'list') stored.push(JSON.stringify(await h.redis.lrange(k, 0, -1)));
        else if (type === 'zset') stored.push(JSON.stringify(await h.redis.zrange(k, 0, -1)));
        else if (type === 'set') stored.push(JSON.stringify(await h.redis.smembers(k)));
        else if (type === 'stream') stored.push(JSON.stringify(await h.redis.xrange(k, '-', '+')));
      }
      for (const t of seen.accepted) {
        const sig = t.split('.')[2]!;
        assert.ok(!shown.includes(sig), 'no token in the job or file status');
        assert.ok(!stored.some((s) => s.includes(sig)), 'no token in Redis');
      }
    } finally {
      src.faults.bytesPerSec = undefined;
      src.faults.resetAfter = undefined;
      await h?.close();
    }
  });

  test('control: the same transfer with a token that is not refreshed fails: the source refuses the expired token', async () => {
    const [f] = makeRandomFiles(src.root, 1, 256 * KiB, 256 * KiB, 'ctrl');
    const dst = tempDir('otok-ctrl');
    dirs.push(dst);
    const now = Math.floor(Date.now() / 1000);
    const token = issuer.mint({ iat: now, nbf: now, exp: now + 2, scope: null });
    const tokens = parseOutboundTokens([{ prefix: src.origin, source: 'static', token }]);
    const engine = createTransferEngine({ ca: testTls().cert });
    seen.refused.length = 0;
    slowWithCuts();
    try {
      const creds = tokens.forTransfer({ source: src.url(`/${f!.name}`), destination: `file://${dst}/${f!.name}`, overwrite: false })!;
      // The continuation refused with 401 leaves the cut to the attempt: it fails (with the reset), never finishes.
      await assert.rejects(
        engine.transfer(
          { source: src.url(`/${f!.name}`), destination: `file://${dst}/${f!.name}`, verify: 'none', overwrite: false },
          { signal: new AbortController().signal, gate: new PauseGate(), credentials: creds.provider },
        ),
        (e: unknown) => isCargoError(e) && !e.message.includes(token.split('.')[2]!),
      );
      assert.ok(seen.refused.length > 0 && seen.refused.every((t) => t === token), 'the expired token was refused');
    } finally {
      src.faults.bytesPerSec = undefined;
      src.faults.resetAfter = undefined;
      await engine.close();
      await tokens.close();
    }
  });

  test('HTTP-TPC pull: the COPY carries the destination\'s token, TransferHeaderAuthorization the source\'s, each narrowly scoped', async () => {
    issuer.tokenLifetimeSec = 3600;
    const [f] = makeRandomFiles(src.root, 1, 64 * KiB, 64 * KiB, 'tpc');
    const tpcEngine = createTransferEngine({ ca: testTls().cert });
    const engine = createTransferEngine({ ca: testTls().cert });
    // The destination, a cargoport storage endpoint, allows what the COPY's token scopes allow (scopes for its /data).
    const decided: string[] = [];
    const dst = await startStorageServer({
      tpc: { engine: tpcEngine, allowLocal: true },
      authorize: (request, action, path) => {
        const m = /^Bearer (\S+)$/.exec(String(request.headers['authorization'] ?? ''));
        const scope = m ? (JSON.parse(Buffer.from(m[1]!.split('.')[1] ?? '', 'base64url').toString('utf8')) as { scope?: string }).scope ?? '' : '';
        decided.push(`${action} ${path} ${scope}`);
        return scope.split(' ').some((sc) => sc === `storage.create:${path}` || sc === `storage.modify:${path}`);
      },
    });
    const tokens = parseOutboundTokens([
      { prefix: src.origin, source: 'client-credentials', issuer: issuer.issuer, clientId: 'cargoport', clientSecret: 'client-secret-1' },
      { prefix: dst.base, source: 'client-credentials', issuer: issuer.issuer, clientId: 'cargoport', clientSecret: 'client-secret-1' },
    ], { ca: [testTls().cert.toString()] });
    seen.refused.length = 0;
    seen.accepted.clear();
    try {
      const source = src.url(`/${f!.name}`);
      const destination = `${dst.base}/in/${f!.name}`;
      const creds = tokens.forTransfer({ source, destination, overwrite: false })!;
      const res = await engine.transfer(
        { source, destination, verify: 'none', overwrite: false, copyMode: 'pull', checksum: { alg: 'adler32', value: f!.adler32 } },
        { signal: new AbortController().signal, gate: new PauseGate(), credentials: creds.provider },
      );
      assert.equal(res.protocol, 'tpc-pull');
      assert.ok(sameContent(join(src.root, f!.name), join(dst.permanentDir, 'in', f!.name)));
      assert.deepEqual(seen.refused, [], 'the source accepted the token the destination brought');
      const gets = src.requests.filter((r) => r.method === 'GET' && r.path === `/${f!.name}`);
      assert.ok(gets.length >= 1 && gets.every((r) => String(r.headers['authorization']).startsWith('Bearer ')), 'the pull carried a token');
      const srcScopes = gets.map((r) => (JSON.parse(Buffer.from(String(r.headers['authorization']).split('.')[1]!, 'base64url').toString('utf8')) as { scope: string }).scope);
      assert.ok(srcScopes.every((sc) => sc === `storage.read:/${f!.name}`), `source token scopes: ${srcScopes.join(', ')}`);
      assert.ok(decided.some((d) => d === `create /in/${f!.name} storage.create:/in/${f!.name}`), `the COPY's token: ${decided.join('; ')}`);
    } finally {
      await engine.close();
      await tpcEngine.close();
      await dst.close();
      await tokens.close();
    }
  });

  test('client credentials: one grant per scope while fresh, a wrong secret is CARGO_ERR_OUTBOUND_TOKEN without the secret', async () => {
    issuer.tokenLifetimeSec = 3600;
    const ca = [testTls().cert.toString()];
    const entry = { prefix: `${src.origin}/data`, source: 'client-credentials', issuer: issuer.issuer, clientId: 'cargoport' };
    const tokens = parseOutboundTokens([{ ...entry, clientSecret: 'client-secret-1' }], { ca });
    const wrong = parseOutboundTokens([{ ...entry, clientSecret: 'not-the-secret-xyz' }], { ca });
    try {
      const before = issuer.grants.length;
      const c = tokens.forTransfer({ source: `${src.origin}/data/a/b.dat`, destination: `${src.origin}/data/c/d.dat`, overwrite: false })!;
      const a1 = await c.provider({ url: `${src.origin}/data/a/b.dat`, role: 'source', method: 'GET' });
      const a2 = await c.provider({ url: `${src.origin}/data/a/b.dat`, role: 'source', method: 'GET' });
      const d1 = await c.provider({ url: `${src.origin}/data/c/d.dat`, role: 'destination', method: 'PUT' });
      assert.equal(a1['authorization'], a2['authorization'], 'cached while fresh');
      assert.notEqual(a1['authorization'], d1['authorization']);
      assert.deepEqual(issuer.grants.slice(before).map((g) => g.scope), ['storage.read:/a/b.dat', 'storage.create:/c/d.dat']);
      assert.equal(await c.provider({ url: 'https://elsewhere.example.org/x', role: 'source', method: 'GET' }).then((h) => h['authorization']), undefined, 'no token for an endpoint not configured');
      const w = wrong.forTransfer({ source: `${src.origin}/data/x`, destination: 'file:///tmp/x', overwrite: false })!;
      await assert.rejects(w.provider({ url: `${src.origin}/data/x`, role: 'source', method: 'GET' }), (e: unknown) =>
        isCargoError(e) && e.code === 'CARGO_ERR_OUTBOUND_TOKEN' && e.retryable && !e.message.includes('not-the-secret-xyz') && /client-credentials grant/.test(e.message));
    } finally {
      await tokens.close();
      await wrong.close();
    }
  });

  test('a token file is re-read when it changes; an empty one is an error naming the file, not a token', async () => {
    const dir = tempDir('otok-file');
    dirs.push(dir);
    const path = join(dir, 'token');
    writeFileSync(path, 'first-token-aaaa\n');
    const s = new FileTokenSource('f', path, 60_000, 10);
    assert.equal(await s.token(), 'first-token-aaaa');
    writeFileSync(path, 'second-token-bbbbbb\n');
    let got = await s.token();
    for (let i = 0; got !== 'second-token-bbbbbb'; i++) {
      assert.ok(i < 500, 'the new token was picked up');
      await sleep(10);
      got = await s.token();
    }
    writeFileSync(path, '');
    let err: unknown;
    for (let i = 0; err === undefined; i++) {
      assert.ok(i < 500, 'the empty file was noticed');
      await sleep(10);
      err = await s.token().then(() => undefined, (e: unknown) => e);
    }
    assert.ok(isCargoError(err) && err.code === 'CARGO_ERR_OUTBOUND_TOKEN' && err.message.includes(path) && !err.message.includes('second-token'));
  });

  test('narrowest scopes; configuration errors name the key, never the secret', () => {
    const q = (url: string, role: 'source' | 'destination', method: string, overwrite = false) => narrowScope({ url, role, method }, '/data', overwrite);
    assert.equal(q('https://h/data/a%20b/c.dat', 'source', 'GET'), 'storage.read:/a b/c.dat');
    assert.equal(q('https://h/data/d/e.dat', 'destination', 'PUT'), 'storage.create:/d/e.dat');
    assert.equal(q('https://h/data/d/e.dat', 'destination', 'PUT', true), 'storage.modify:/d/e.dat');
    assert.equal(q('https://h/data/d/e.dat', 'destination', 'DELETE'), 'storage.modify:/d/e.dat');
    assert.equal(q('https://h/data/d', 'destination', 'MKCOL'), 'storage.create:/d');
    assert.equal(q('https://h/other/x', 'source', 'GET'), undefined, 'outside the base path: no scope asked');
    assert.throws(() => q('https://h/data/a%2F..%2F..%2Fx', 'source', 'GET'), (e: unknown) => isCargoError(e));
    assert.throws(() => parseOutboundTokens([{ prefix: 'https://h', source: 'static', token: 'sekrit-value', extra: 1 }]),
      (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_CONFIG' && /auth\.outbound\[0\]\.extra/.test(e.message) && !e.message.includes('sekrit'));
    assert.throws(() => parseOutboundTokens([{ prefix: 'https://user:sekrit@h', source: 'static', token: 't' }]),
      (e: unknown) => isCargoError(e) && !e.message.includes('sekrit'));
    // A malformed auth.outbound is refused at load without quoting it (it may hold tokens and secrets).
    assert.throws(() => loadConfig({ env: { CARGOPORT_AUTH_OUTBOUND: '[{"source":"static","token":"sekrit-value"' } }),
      (e: unknown) => e instanceof Error && /CARGOPORT_AUTH_OUTBOUND/.test(e.message) && !e.message.includes('sekrit'));
    assert.throws(() => loadConfig({ env: {}, overrides: { auth: { outbound: { token: 'sekrit-value' } } } }),
      (e: unknown) => e instanceof Error && /auth\.outbound/.test(e.message) && !e.message.includes('sekrit'));
    const t = parseOutboundTokens([{ prefix: 'https://h:8443/data', source: 'static', token: 'a' }, { prefix: 'https://h:8443/data/deep', source: 'static', token: 'b' }]);
    assert.equal(t.match('https://h:8443/data/deep/x')?.prefix, 'https://h:8443/data/deep', 'longest prefix');
    assert.equal(t.match('https://h:8443/database/x'), undefined, 'whole path components only');
    assert.equal(t.match('https://h:8443/data/x')?.prefix, 'https://h:8443/data');
  });
});
