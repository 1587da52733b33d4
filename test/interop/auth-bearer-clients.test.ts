/**
 * gfal2 (gfal-copy) and davix (davix-put / davix-get) with a WLCG bearer token in `BEARER_TOKEN` (WLCG token
 * discovery; gfal2 reads it itself, davix 0.8 does not, so it is given as `-H "Authorization: Bearer $BEARER_TOKEN"`
 * as the WLCG davix instructions do) against the port's storage endpoint with authorisation on: tokens from a real issuer started by the
 * test over TLS, scopes relative to the issuer's base path. Without a token, and beyond the token's scopes, the same
 * commands fail and nothing is written. Each test skips with a reason when its tool is not installed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { hasTool, runTool, testCaDir } from '../support/external-tools.js';
import { freePort } from '../support/free-port.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';

let iss: TestIssuer;
let h: Harness;
let endpoint = '';
let work = '';
let local = '';
let payload: Buffer;
let storageRoot = '';

const tok = (scope: string) => iss.mint({ aud: endpoint, scope });
/** The environment of a client run: the token (or none: BEARER_TOKEN cleared, no discovery file either). */
const envWith = (token: string | undefined): Record<string, string> => ({
  BEARER_TOKEN: token ?? '', BEARER_TOKEN_FILE: join(work, 'no-such-token-file'), XDG_RUNTIME_DIR: work,
});

before(async () => {
  const port = await freePort();
  endpoint = `https://localhost:${port}`;
  iss = await startTestIssuer(endpoint);
  work = mkdtempSync(join(tmpdir(), 'cp-bearer-'));
  payload = randomBytes(2 * 1024 * 1024 + 77);
  local = join(work, 'payload.bin');
  writeFileSync(local, payload);
  h = await startHarness({
    gateway: { host: '127.0.0.1', port },
    auth: {
      insecureOpen: false, allowAddresses: [], issuerCaFile: testTls().certPath, audiences: [endpoint],
      issuers: [{ issuer: iss.issuer, name: 'vo', basePath: '/vo' }],
    },
  });
  storageRoot = join(h.cfg.dataDir, 'storage', 'vo');
  mkdirSync(join(storageRoot, 'up'), { recursive: true });
  testCaDir();
});
after(async () => {
  await h?.close();
  await iss?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('gfal-copy with BEARER_TOKEN: upload and download; no token and a read-only token are refused', async (t) => {
  if (!hasTool('gfal-copy')) return t.skip('gfal2-util-scripts not installed');
  const url = `davs://localhost:${new URL(endpoint).port}/data/vo/up/gfal.bin`;
  const none = await runTool('gfal-copy', ['-f', `file://${local}`, url], { env: envWith(undefined), timeoutMs: 60_000 });
  assert.notEqual(none.code, 0, 'no token: refused');
  const readOnly = await runTool('gfal-copy', ['-f', `file://${local}`, url], { env: envWith(tok('storage.read:/')), timeoutMs: 60_000 });
  assert.notEqual(readOnly.code, 0, 'read-only token: the upload is refused');
  assert.ok(!existsSync(join(storageRoot, 'up', 'gfal.bin')), 'nothing written by the refused uploads');
  const up = await runTool('gfal-copy', ['-f', `file://${local}`, url], { env: envWith(tok('storage.modify:/up')), timeoutMs: 60_000 });
  assert.equal(up.code, 0, up.stderr);
  assert.ok(readFileSync(join(storageRoot, 'up', 'gfal.bin')).equals(payload));
  const out = join(work, 'gfal-down.bin');
  const down = await runTool('gfal-copy', ['-f', url, `file://${out}`], { env: envWith(tok('storage.read:/up')), timeoutMs: 60_000 });
  assert.equal(down.code, 0, down.stderr);
  assert.ok(readFileSync(out).equals(payload));
});

/** davix with the token of BEARER_TOKEN as its Authorization header (davix 0.8 has no token discovery). */
const davix = (cmd: string, args: string[], token: string | undefined) =>
  runTool(cmd, ['--capath', testCaDir(), ...(token ? ['-H', `Authorization: Bearer ${token}`] : []), ...args], { env: envWith(token) });

test('davix-put / davix-get with BEARER_TOKEN; without it 401', async (t) => {
  if (!hasTool('davix-get')) return t.skip('davix not installed');
  const url = `${endpoint}/data/vo/up/davix.bin`;
  const up = await davix('davix-put', [local, url], tok('storage.create:/up'));
  assert.equal(up.code, 0, up.stderr);
  assert.ok(readFileSync(join(storageRoot, 'up', 'davix.bin')).equals(payload));
  const out = join(work, 'davix-down.bin');
  const get = await davix('davix-get', [url, out], tok('storage.read:/up/davix.bin'));
  assert.equal(get.code, 0, get.stderr);
  assert.ok(readFileSync(out).equals(payload));
  const out2 = join(work, 'davix-anon.bin');
  const anon = await davix('davix-get', [url, out2], undefined);
  assert.notEqual(anon.code, 0);
  assert.match(anon.stderr + anon.stdout, /401|[Uu]nauthori[sz]ed|[Pp]ermission/);
});
