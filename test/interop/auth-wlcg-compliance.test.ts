/**
 * The critical cases of the WLCG JWT compliance suite (wlcg.md §2, cases 1–28), run the way the suite runs them:
 * `curl -s -L -i -f --show-error -H 'Authorization: Bearer …'`, here over HTTP/2, against a real port configured as
 * the suite expects: a storage area (/wlcg, the issuer's base path) readable and writable by group /wlcg except
 * /protected, which only /wlcg/test may write; capability scopes relative to the storage area. Tokens come from a
 * real issuer started by the test over TLS (discovery + JWKS); `aud` is the endpoint, exactly.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { hasTool, runTool } from '../support/external-tools.js';
import { freePort } from '../support/free-port.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';

const skip = !hasTool('curl') && 'curl not installed';
let iss: TestIssuer;
let h: Harness;
let endpoint = '';
let sa = '';
let suite = '';
let work = '';
const small = () => join(work, 'small.txt');

/** One curl as the suite runs it; the status from the `-i` status line, or from `-f`'s "returned error: NNN". */
async function curl(token: string | undefined, url: string, opts: { method?: string; upload?: string } = {}): Promise<{ status: number; body: string }> {
  const args = ['--max-time', '10', '-s', '-L', '-i', '-f', '--show-error', '--http2', '--cacert', testTls().certPath];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  if (opts.method) args.push('-X', opts.method);
  if (opts.upload) args.push('--upload-file', opts.upload);
  args.push(url);
  const r = await runTool('curl', args, { timeoutMs: 15_000 });
  const err = /returned error: (\d{3})/.exec(r.stderr);
  if (err) return { status: Number(err[1]), body: '' };
  const statuses = [...r.stdout.matchAll(/^HTTP\/2 (\d{3})/gm)].map((m) => Number(m[1]));
  assert.ok(statuses.length > 0, `curl ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stdout, /^HTTP\/2 /, 'the exchange ran over HTTP/2');
  const at = r.stdout.indexOf('\r\n\r\n');
  return { status: statuses[statuses.length - 1]!, body: at === -1 ? '' : r.stdout.slice(at + 4) };
}

const tok = (claims: Record<string, unknown>) => iss.mint({ aud: endpoint, ...claims });
const DEFAULT = { scope: 'storage.read:/ storage.modify:/ openid' };

before(async () => {
  if (skip) return;
  const port = await freePort();
  endpoint = `https://localhost:${port}`;
  iss = await startTestIssuer(endpoint);
  work = mkdtempSync(join(tmpdir(), 'cp-wlcg-'));
  writeFileSync(small(), 'a small file\nof two lines\n');
  h = await startHarness({
    gateway: { host: '127.0.0.1', port },
    auth: {
      insecureOpen: false, allowAddresses: [], issuerCaFile: testTls().certPath, audiences: [endpoint],
      issuers: [{
        issuer: iss.issuer, name: 'wlcg', basePath: '/wlcg',
        groups: [
          { group: '/wlcg', path: '/', rights: ['read'] },
          { group: '/wlcg', path: '/wlcg-jwt-compliance', rights: ['modify'] },
          { group: '/wlcg/test', path: '/', rights: ['read'] },
          { group: '/wlcg/test', path: '/protected', rights: ['modify'] },
        ],
      }],
    },
  });
  mkdirSync(join(h.cfg.dataDir, 'storage', 'wlcg', 'protected'), { recursive: true });
  sa = `${endpoint}/data/wlcg`;
  // Suite setup: HEAD the base and suite directories, MKCOL what is missing (404 → MKCOL must succeed).
  const t = tok(DEFAULT);
  suite = `${sa}/wlcg-jwt-compliance/${randomUUID()}`;
  for (const dir of [`${sa}/wlcg-jwt-compliance`, suite]) {
    const head = await curl(t, dir, { method: 'HEAD' }).catch(() => ({ status: 0 }));
    if (head.status === 404) assert.match(String((await curl(t, dir, { method: 'MKCOL' })).status), /^20[01]$/);
  }
});
after(async () => {
  if (skip) return;
  await h?.close();
  await iss?.close();
  rmSync(work, { recursive: true, force: true });
  if (h) rmSync(h.cfg.dataDir, { recursive: true, force: true });
});

const u = () => `${suite}/${randomUUID()}`;

test('basic_authz.robot (cases 1–15)', { skip }, async () => {
  const openid = tok({ scope: 'openid' });
  assert.equal((await curl(openid, u())).status, 403, '1 read denied to a minimum-privilege token');
  assert.equal((await curl(openid, u(), { upload: small() })).status, 403, '2 write denied');
  const groups = tok({ scope: 'openid', 'wlcg.groups': ['/wlcg'] });
  assert.equal((await curl(groups, u())).status, 404, '3 read granted to wlcg.groups');
  assert.match(String((await curl(groups, u(), { upload: small() })).status), /^20[01]$/, '4 write granted to wlcg.groups');
  const dflt = tok(DEFAULT);
  let f = u();
  assert.match(String((await curl(dflt, f, { upload: small() })).status), /^20[01]$/, '5 write with storage.modify:/');
  assert.match(String((await curl(dflt, f, { method: 'DELETE' })).status), /^20[04]$/, '6 delete with storage.modify:/');
  assert.match(String((await curl(dflt, u(), { method: 'MKCOL' })).status), /^20[01]$/, '7 MKCOL with storage.modify:/');
  const read = tok({ scope: 'storage.read:/' });
  assert.equal((await curl(read, u())).status, 404, '8 read with storage.read:/');
  assert.equal((await curl(read, u(), { upload: small() })).status, 403, '9 write denied with storage.read:/');
  f = u();
  await curl(dflt, f, { upload: small() });
  assert.equal((await curl(tok({ scope: 'storage.modify:/' }), f)).status, 403, '10 storage.modify does not imply storage.read');
  const create = tok({ scope: 'storage.create:/' });
  assert.equal((await curl(create, f)).status, 403, '11 storage.create does not imply storage.read');
  assert.equal((await curl(create, f, { upload: small() })).status, 403, '12 storage.create does not overwrite');
  assert.equal((await curl(create, f, { method: 'DELETE' })).status, 403, '13 storage.create does not delete');
  const p = `${sa}/protected/${randomUUID()}`;
  assert.equal((await curl(groups, p)).status, 404, '14 default groups read /protected');
  assert.equal((await curl(groups, p, { upload: small() })).status, 403, '14 default groups do not write /protected');
  const test15 = tok({ scope: 'openid', 'wlcg.groups': ['/wlcg', '/wlcg/test'] });
  assert.equal((await curl(test15, p)).status, 404, '15');
  assert.match(String((await curl(test15, p, { upload: small() })).status), /^20[01]$/, '15 /wlcg/test writes /protected');
  assert.match(String((await curl(test15, p, { method: 'DELETE' })).status), /^20[04]$/, '15 and deletes');
});

test('audience.robot (cases 16–21, strict variants included)', { skip }, async () => {
  const id = randomUUID();
  assert.equal((await curl(tok({ scope: 'openid storage.read:/', aud: id }), u())).status, 401, '16/17 random audience');
  assert.equal((await curl(tok({ scope: 'openid storage.read:/', aud: endpoint }), u())).status, 404, '18 correct audience');
  assert.equal((await curl(tok({ scope: 'openid storage.read:/', aud: [endpoint, id] }), u())).status, 404, '19 correct audience among several');
  assert.equal((await curl(tok({ scope: 'openid storage.read:/', aud: ['https://fake.audience:8443', id] }), u())).status, 401, '20/21 invalid audiences');
});

test('path_enforced_authz.robot (cases 22–28)', { skip }, async () => {
  const rel = suite.slice(sa.length);
  const r22 = tok({ scope: 'storage.read:/wlcg-jwt-compliance' });
  assert.equal((await curl(r22, `${sa}/not-found-${randomUUID()}`)).status, 403, '22 outside the scope path');
  assert.equal((await curl(r22, `${suite}/not-found-${randomUUID()}`)).status, 404, '22 inside');
  const m23 = tok({ scope: 'storage.modify:/wlcg-jwt-compliance' });
  assert.equal((await curl(m23, `${sa}/not-found-${randomUUID()}`, { upload: small() })).status, 403, '23 outside');
  assert.match(String((await curl(m23, `${suite}/nf-${randomUUID()}`, { upload: small() })).status), /^20[01]$/, '23 inside');
  const dflt = tok(DEFAULT);
  assert.match(String((await curl(dflt, `${suite}/foobar`, { method: 'MKCOL' })).status), /^20[01]$/);
  assert.match(String((await curl(dflt, `${suite}/foobar/file`, { upload: small() })).status), /^20[01]$/);
  const got = await curl(tok({ scope: `storage.read:${rel}/foobar` }), `${suite}/foobar/file`);
  assert.equal(got.status, 200, '24 storage.read:/…/foobar reads into /foobar');
  assert.equal(got.body, 'a small file\nof two lines\n');
  assert.equal((await curl(tok({ scope: `storage.read:${rel}/foo` }), `${suite}/foobar/file`)).status, 403, '25 /foo is not /foobar');
  const dir = `${suite}/create-dir-${randomUUID()}`;
  assert.match(String((await curl(dflt, dir, { method: 'MKCOL' })).status), /^20[01]$/);
  const dirRel = dir.slice(sa.length);
  assert.match(String((await curl(tok({ scope: `storage.create:${dirRel}` }), `${dir}/foobar`, { method: 'MKCOL' })).status), /^20[01]$/, '26 MKCOL with storage.create');
  assert.equal((await curl(tok({ scope: `storage.create:${dirRel.slice(0, -1)}` }), `${dir}/foobar2`, { method: 'MKCOL' })).status, 403, '27 partial path');
  assert.equal((await curl(tok({ scope: 'storage.read:/foobar' }), `${suite}/foobar/file`)).status, 403, '28 scope paths are absolute from the issuer root');
  assert.equal((await curl(tok({ scope: 'storage.read:/foo' }), `${suite}/foobar/file`)).status, 403, '28');
  assert.match(String((await curl(dflt, `${suite}/foobar/file`, { method: 'DELETE' })).status), /^20[04]$/);
  assert.match(String((await curl(dflt, `${suite}/foobar`, { method: 'DELETE' })).status), /^20[04]$/);
});
