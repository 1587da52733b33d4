/**
 * HTTP-TPC with WLCG tokens between the port (authorisation on) and a real XRootD 5.5 HTTPS endpoint that enforces
 * tokens itself (libXrdAccSciTokens from xrootd-scitokens-plugins, trusting the issuer this test starts), plus
 * scitags through XRootD. Each side holds its own token; the active party's comes in `Authorization`, the passive
 * party's in `TransferHeaderAuthorization`, which the active party sends on as `Authorization`:
 * - XRootD pulls from / pushes into the port: the port's storage endpoint enforces the token XRootD forwards (no
 *   forwarded token: 401, the copy fails and nothing is written);
 * - the port pulls from / pushes to XRootD (curl -X COPY to the port, and the port's own TPC client): XRootD enforces
 *   the token the port forwards (none: XRootD refuses, the copy fails).
 * - Scitags: the port's outgoing COPY to XRootD carries `TransferHeaderSciTag`; XRootD 5.5 passes it on as `SciTag`
 *   on its request to the passive party (the port), whose storage endpoint then announces the flow: a firefly with
 *   the tag's experiment and activity reaches the collector. XRootD 5.5's own marking (`xrootd.pmark`, fireflies)
 *   keys on the `scitag.flow` CGI only; `http.header2cgi SciTag scitag.flow` makes it honour the `SciTag` header of
 *   requests it serves, so a `SciTag: 144` COPY to the port pulling from XRootD yields XRootD's own fireflies for
 *   ATLAS / activity 16. XRootD's TPC client marks nothing of its own (a COPY with only `SciTag` yields no firefly).
 *
 * scitokens-cpp 0.7 fetches issuer keys with libcurl against the system CA store only; the test issuer's CA is a
 * test one, so the issuer's JWKS is put into scitokens-cpp's own key cache (SQLite under $XDG_CACHE_HOME of the
 * XRootD process) the way the library itself stores it: signatures, claims, audience and scopes are still checked
 * by XRootD. Skips when xrootd, the SciTokens plugin, sqlite3 or curl is absent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePort } from '../support/free-port.js';
import { hasTool, runTool, testCaDir } from '../support/external-tools.js';
import { startFireflyCollector, type FireflyCollector } from '../support/firefly-collector.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';
import { xrootdHttpTpcConfig } from '../support/xrootd-config.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { parseOutboundTokens } from '../../services/auth/outbound-tokens.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';

const PLUGIN = '/usr/lib/x86_64-linux-gnu/libXrdAccSciTokens-5.so';
const ANY_AUD = 'https://wlcg.cern.ch/jwt/v1/any';
let iss: TestIssuer;
let h: Harness;
let collector: FireflyCollector;
/** Where XRootD's own fireflies (xrootd.pmark ffdest) go. */
let xrdCollector: FireflyCollector;
let dir = '';
let xrdPort = 0;
let xrdPid = 0;
let cargoAud = '';
let xrdAud = '';
let skipReason: string | undefined;
const xrd = (p: string) => `https://localhost:${xrdPort}${p}`;
const cargo = (p: string) => `https://localhost:${new URL(h.gateway.url).port}/data${p}`;
const cargoH1 = (p: string) => `https://localhost:${h.gateway.http1Port}/data${p}`;
const xrdLog = () => (existsSync(join(dir, 'xrd.log')) ? readFileSync(join(dir, 'xrd.log'), 'utf8') : '');

function pluginPath(): string | undefined {
  for (const p of [PLUGIN, '/usr/lib64/libXrdAccSciTokens-5.so', '/usr/lib/libXrdAccSciTokens-5.so']) if (existsSync(p)) return p;
  return undefined;
}

function xrootdAccount(): { uid: number; gid: number } | undefined {
  try {
    return { uid: Number(execFileSync('id', ['-u', 'xrootd']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'xrootd']).toString().trim()) };
  } catch {
    return undefined;
  }
}

before(async () => {
  const plugin = pluginPath();
  if (!hasTool('xrootd')) skipReason = 'xrootd not installed';
  else if (!plugin) skipReason = 'libXrdAccSciTokens (xrootd-scitokens-plugins) not installed';
  else if (!hasTool('sqlite3')) skipReason = 'sqlite3 not installed (needed to seed the scitokens key cache)';
  else if (!hasTool('curl')) skipReason = 'curl not installed';
  const account = userInfo().uid === 0 ? xrootdAccount() : undefined;
  if (!skipReason && userInfo().uid === 0 && !account) skipReason = 'running as root and no xrootd account to run XRootD as';
  if (skipReason) return;

  xrdPort = await freePort();
  xrdAud = `https://localhost:${xrdPort}`;
  const gwPort = await freePort();
  cargoAud = `https://localhost:${gwPort}`;
  iss = await startTestIssuer(cargoAud);
  collector = await startFireflyCollector('udp4', '127.0.0.1');
  xrdCollector = await startFireflyCollector('udp4', '127.0.0.1');
  h = await startHarness({
    gateway: { host: '127.0.0.1', port: gwPort, http1Port: 0 },
    auth: {
      // The WLCG "any" audience too: gfal-copy sends one token to both sides.
      insecureOpen: false, allowAddresses: ['loopback'], issuerCaFile: testTls().certPath, audiences: [cargoAud, ANY_AUD],
      issuers: [{ issuer: iss.issuer, name: 'vo', basePath: '/' }],
    },
    marking: { collectors: [`127.0.0.1:${collector.port}`], firefliesToPeer: false, ongoingIntervalMs: 0 },
  });
  mkdirSync(join(h.cfg.dataDir, 'storage', 'vo'), { recursive: true });

  dir = mkdtempSync(join(tmpdir(), 'cargoport-xrd-tok-'));
  chmodSync(dir, 0o755);
  for (const d of ['data', 'ca', 'run', 'cache/scitokens']) mkdirSync(join(dir, d), { recursive: true });
  const tls = testTls();
  copyFileSync(tls.certPath, join(dir, 'cert.pem'));
  copyFileSync(tls.keyPath, join(dir, 'key.pem'));
  chmodSync(join(dir, 'key.pem'), 0o600);
  copyFileSync(tls.certPath, join(dir, 'ca', 'cargoport-test.pem'));
  execFileSync('openssl', ['rehash', join(dir, 'ca')], { stdio: 'ignore' });
  // scitokens-cpp's key cache, as the library writes it: {jwks, next_update, expires} per issuer.
  const now = Math.floor(Date.now() / 1000);
  const jwks = { keys: [{ ...(iss.rsa.publicKey.export({ format: 'jwk' }) as object), kid: iss.rsa.kid, alg: 'RS256', use: 'sig' }] };
  const entry = JSON.stringify({ jwks, next_update: now + 3600, expires: now + 86400 }).replace(/'/g, "''");
  execFileSync('sqlite3', [join(dir, 'cache', 'scitokens', 'scitokens_cpp.sqllite'),
    `CREATE TABLE IF NOT EXISTS keycache (issuer text UNIQUE PRIMARY KEY NOT NULL,keys text NOT NULL); INSERT INTO keycache VALUES ('${iss.issuer}', '${entry}');`]);
  copyFileSync(fileURLToPath(new URL('../../services/marking/scitags-registry.json', import.meta.url)), join(dir, 'scitags.json'));
  writeFileSync(join(dir, 'scitokens.cfg'), ['[Global]', `audience = ${xrdAud}`, '', '[Issuer cargoport-test]', `issuer = ${iss.issuer}`, 'base_path = /', ''].join('\n'));
  const rootPort = await freePort();
  writeFileSync(join(dir, 'xrd.cfg'), xrootdHttpTpcConfig(dir, rootPort, xrdPort, [
    'http.header2cgi Authorization authz',
    'ofs.authorize 1',
    `ofs.authlib ${plugin} config=${dir}/scitokens.cfg`,
    // XRootD's own scitags marking: fireflies for flows whose request has scitag.flow, which the SciTag header becomes.
    `xrootd.pmark defsfile ${dir}/scitags.json ffdest 127.0.0.1:${xrdCollector.port} domain any use firefly`,
    'http.header2cgi SciTag scitag.flow',
    'scitokens.trace all',
    'http.trace all',
    'tpc.trace all',
  ]));
  writeFileSync(join(dir, 'data', 'hello.bin'), randomBytes(300_000));
  if (account) execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, dir]);
  const cmd = `XDG_CACHE_HOME=${dir}/cache xrootd -c ${dir}/xrd.cfg -l ${dir}/xrd.log`;
  const child = account
    ? spawn('su', ['-s', '/bin/sh', 'xrootd', '-c', cmd], { stdio: 'ignore', detached: true })
    : spawn('sh', ['-c', cmd], { stdio: 'ignore', detached: true });
  child.unref();
  for (let i = 0; i < 200 && !/:\d+ initialization (completed|failed)/.test(xrdLog()); i++) await new Promise((r) => setTimeout(r, 50));
  if (!new RegExp(`:${xrdPort} initialization completed`).test(xrdLog())) {
    skipReason = `xrootd with the SciTokens plugin failed to start: ${xrdLog().slice(-600)}`;
    return;
  }
  const pidFile = [join(dir, 'run', 'xrootd.pid'), join(dir, 'run', 'anon', 'xrootd.pid')].find(existsSync);
  if (pidFile) xrdPid = Number(readFileSync(pidFile, 'utf8').trim());
});

after(async () => {
  if (xrdPid) {
    try {
      process.kill(xrdPid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await h?.close();
  await iss?.close();
  await collector?.close();
  await xrdCollector?.close();
  if (h) rmSync(h.cfg.dataDir, { recursive: true, force: true });
  if (dir && !process.env.KEEP_XRD) rmSync(dir, { recursive: true, force: true });
});

const xrdToken = (scope: string) => iss.mint({ aud: xrdAud, sub: 'xrd-user', scope });
const cargoToken = (scope: string) => iss.mint({ aud: cargoAud, sub: 'cargo-user', scope });
const bearer = (t: string) => `Bearer ${t}`;
const curl = (args: string[]) => runTool('curl', ['-sS', '--cacert', testTls().certPath, ...args], { timeoutMs: 60_000 });
const stored = (p: string) => join(h.cfg.dataDir, 'storage', p);

async function putToCargo(path: string, body: Buffer): Promise<void> {
  const f = join(dir, 'upload.tmp');
  writeFileSync(f, body);
  const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: ${bearer(cargoToken('storage.modify:/vo'))}`, '-T', f, cargo(path)]);
  assert.equal(r.stdout, '201', r.stderr);
}

test('XRootD enforces our issuer\'s tokens (SciTokens plugin): no token 403, wrong audience 403, scoped token 200', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const get = (auth?: string) => curl(['-o', '/dev/null', '-w', '%{http_code}', ...(auth ? ['-H', `Authorization: ${auth}`] : []), xrd('/hello.bin')]);
  assert.notEqual((await get()).stdout, '200', 'anonymous refused');
  assert.notEqual((await get(bearer(cargoToken('storage.read:/')))).stdout, '200', 'a token for another audience refused');
  assert.notEqual((await get(bearer(xrdToken('storage.read:/other')))).stdout, '200', 'a token for another path refused');
  assert.equal((await get(bearer(xrdToken('storage.read:/')))).stdout, '200', xrdLog().slice(-1500));
});

test('XRootD pulls from and pushes into the port, the port\'s token passed through TransferHeaderAuthorization', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const body = randomBytes(1_200_000);
  await putToCargo('/vo/src.bin', body);
  // Pull: COPY to XRootD with Source = the port; XRootD GETs from the port with the forwarded token.
  const pull = (extra: string[]) => curl(['-X', 'COPY', '-H', `Authorization: ${bearer(xrdToken('storage.modify:/'))}`, '-H', `Source: ${cargo('/vo/src.bin')}`, '-H', 'Credential: none', ...extra, xrd('/from-cargo.bin')]);
  const refused = await pull([]);
  assert.doesNotMatch(refused.stdout, /success/, 'without a token for the port, the port refuses XRootD\'s GET');
  assert.ok(!existsSync(join(dir, 'data', 'from-cargo.bin')) || readFileSync(join(dir, 'data', 'from-cargo.bin')).length === 0);
  const ok = await pull(['-H', `TransferHeaderAuthorization: ${bearer(cargoToken('storage.read:/vo/src.bin'))}`]);
  assert.match(ok.stdout, /success: Created/, ok.stdout + ok.stderr + xrdLog().slice(-1500));
  assert.ok(readFileSync(join(dir, 'data', 'from-cargo.bin')).equals(body));
  // Push: COPY to XRootD with Destination = the port's HTTP/1.1 listener (XRootD 5.5's HTTP/2 PUT is broken).
  const push = (extra: string[], name: string) => curl(['-X', 'COPY', '-H', `Authorization: ${bearer(xrdToken('storage.read:/'))}`, '-H', `Destination: ${cargoH1(`/vo/${name}`)}`, '-H', 'Credential: none', ...extra, xrd('/hello.bin')]);
  const pushRefused = await push([], 'pushed-anon.bin');
  assert.doesNotMatch(pushRefused.stdout, /success/);
  assert.ok(!existsSync(stored('vo/pushed-anon.bin')), 'nothing written without the port\'s token');
  const pushReadOnly = await push(['-H', `TransferHeaderAuthorization: ${bearer(cargoToken('storage.read:/vo'))}`], 'pushed-ro.bin');
  assert.doesNotMatch(pushReadOnly.stdout, /success/);
  assert.ok(!existsSync(stored('vo/pushed-ro.bin')), 'nothing written with a read-only token');
  const pushed = await push(['-H', `TransferHeaderAuthorization: ${bearer(cargoToken('storage.create:/vo/pushed.bin'))}`], 'pushed.bin');
  assert.match(pushed.stdout, /success: Created/, pushed.stdout + pushed.stderr);
  assert.ok(readFileSync(stored('vo/pushed.bin')).equals(readFileSync(join(dir, 'data', 'hello.bin'))));
});

test('the port pulls from and pushes to XRootD, XRootD\'s token passed through TransferHeaderAuthorization', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const body = randomBytes(700_000);
  await putToCargo('/vo/to-push.bin', body);
  const pull = (extra: string[], name: string) => curl(['--http2', '-X', 'COPY', '-H', `Authorization: ${bearer(cargoToken(`storage.create:/vo/${name}`))}`, '-H', `Source: ${xrd('/hello.bin')}`, ...extra, cargo(`/vo/${name}`)]);
  const refused = await pull([], 'pulled-anon.bin');
  assert.doesNotMatch(refused.stdout, /success/, 'XRootD refuses the port\'s GET without a token');
  assert.ok(!existsSync(stored('vo/pulled-anon.bin')));
  const ok = await pull(['-H', `TransferHeaderAuthorization: ${bearer(xrdToken('storage.read:/hello.bin'))}`], 'pulled.bin');
  assert.match(ok.stdout, /success: Created/, ok.stdout + ok.stderr);
  assert.ok(readFileSync(stored('vo/pulled.bin')).equals(readFileSync(join(dir, 'data', 'hello.bin'))));
  const push = (extra: string[], name: string) => curl(['--http2', '-X', 'COPY', '-H', `Authorization: ${bearer(cargoToken('storage.read:/vo/to-push.bin'))}`, '-H', `Destination: ${xrd(`/${name}`)}`, ...extra, cargo('/vo/to-push.bin')]);
  const pushRefused = await push(['-H', `TransferHeaderAuthorization: ${bearer(xrdToken('storage.read:/'))}`], 'pushed-ro.bin');
  assert.doesNotMatch(pushRefused.stdout, /success/, 'XRootD refuses a PUT with a read-only token');
  // XRootD 5.5 + SciTokens answers the port's verification (HEAD with Want-Digest: adler32) only with read rights.
  const pushed = await push(['-H', `TransferHeaderAuthorization: ${bearer(xrdToken('storage.create:/pushed-by-port.bin storage.read:/pushed-by-port.bin'))}`], 'pushed-by-port.bin');
  assert.match(pushed.stdout, /success: Created/, pushed.stdout + pushed.stderr);
  assert.ok(readFileSync(join(dir, 'data', 'pushed-by-port.bin')).equals(body));
});

test('the port\'s own TPC client: COPY to XRootD with outbound tokens and a scitag; XRootD forwards the tag to the port', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const body = randomBytes(900_000);
  await putToCargo('/vo/tagged.bin', body);
  const tokens = parseOutboundTokens([
    // read too: the port checks the destination's size after the copy (XRootD's stat needs read with SciTokens).
    { prefix: xrdAud, source: 'static', token: xrdToken('storage.create:/tagged.bin storage.read:/tagged.bin') },
    { prefix: cargoAud, source: 'static', token: cargoToken('storage.read:/vo/tagged.bin') },
  ]);
  const engine = createTransferEngine({ ca: testTls().cert });
  collector.received.length = 0;
  try {
    const source = cargo('/vo/tagged.bin');
    const destination = xrd('/tagged.bin');
    const creds = tokens.forTransfer({ source, destination, overwrite: false })!;
    const res = await engine.transfer(
      { source, destination, verify: 'none', overwrite: false, copyMode: 'pull', flow: { experiment: 2, activity: 16 } },
      { signal: new AbortController().signal, gate: new PauseGate(), credentials: creds.provider },
    );
    assert.equal(res.protocol, 'tpc-pull');
    assert.ok(readFileSync(join(dir, 'data', 'tagged.bin')).equals(body));
  } finally {
    await engine.close();
    await tokens.close();
  }
  // XRootD's GET to the port carried SciTag: 144 (it came as TransferHeaderSciTag): the port's storage endpoint,
  // the passive party and data supplier (src = the gateway's port), announced that flow. Without the forwarded
  // header the endpoint has no tag for the GET (no path defaults here) and announces nothing.
  assert.match(xrdLog(), /got hdr line: transferheaderscitag: 144/i, 'XRootD received TransferHeaderSciTag');
  const gw = Number(new URL(h.gateway.url).port);
  const served = () => collector.received.map((f) => f.body).filter((b) => b['flow-id']?.['src-port'] === gw);
  for (let i = 0; i < 100 && !served().some((b) => b['flow-lifecycle']?.state === 'end'); i++) await new Promise((r) => setTimeout(r, 50));
  const mine = served();
  assert.ok(mine.length >= 2, `server-side fireflies of XRootD's GET: ${JSON.stringify(collector.received.map((f) => f.body)).slice(0, 1500)}`);
  for (const b of mine) assert.deepEqual([b['context']?.['experiment-id'], b['context']?.['activity-id']], [2, 16], 'ATLAS (2), activity 16 = flow 144');
  const end = mine.find((b) => b['flow-lifecycle']?.state === 'end');
  assert.ok(end && end['usage']?.sent >= body.length, 'the end firefly counts the bytes served to XRootD');
});

test('a SciTag: 144 COPY to the port pulling from XRootD: XRootD sends its own fireflies for ATLAS / activity 16', async (t) => {
  if (skipReason) return t.skip(skipReason);
  xrdCollector.received.length = 0;
  collector.received.length = 0;
  const r = await curl(['--http2', '-X', 'COPY', '-H', 'SciTag: 144', '-H', `Authorization: ${bearer(cargoToken('storage.create:/vo/tag-pull.bin'))}`,
    '-H', `Source: ${xrd('/hello.bin')}`, '-H', `TransferHeaderAuthorization: ${bearer(xrdToken('storage.read:/hello.bin'))}`, cargo('/vo/tag-pull.bin')]);
  assert.match(r.stdout, /success: Created/, r.stdout + r.stderr);
  const fromXrd = () => xrdCollector.received.map((f) => f.body).filter((b) => b['flow-id']?.['src-port'] === xrdPort);
  for (let i = 0; i < 100 && !fromXrd().some((b) => b['flow-lifecycle']?.state === 'end'); i++) await new Promise((res) => setTimeout(res, 50));
  const mine = fromXrd();
  assert.ok(mine.some((b) => b['flow-lifecycle']?.state === 'start') && mine.some((b) => b['flow-lifecycle']?.state === 'end'),
    `XRootD's fireflies: ${JSON.stringify(xrdCollector.received.map((f) => f.body)).slice(0, 1000)}`);
  for (const b of mine) assert.deepEqual([b['context']?.['experiment-id'], b['context']?.['activity-id']], [2, 16]);
  assert.match(xrdCollector.received[0]!.header, /^<134>1 \S+ \S+ xrootd - firefly-json - /, 'RFC 5424 header, app xrootd');
  // The port marks its side too (the data connection it opened to XRootD; dst-port = XRootD's).
  for (let i = 0; i < 100 && !collector.received.some((f) => f.body['flow-id']?.['dst-port'] === xrdPort); i++) await new Promise((res) => setTimeout(res, 50));
  const ours = collector.received.map((f) => f.body).filter((b) => b['flow-id']?.['dst-port'] === xrdPort);
  assert.ok(ours.length > 0 && ours.every((b) => b['context']?.['experiment-id'] === 2 && b['context']?.['activity-id'] === 16));
});

test('gfal-copy with BEARER_TOKEN (one token, audience any): pull and push between the port and XRootD, both active', async (t) => {
  if (skipReason) return t.skip(skipReason);
  if (!hasTool('gfal-copy')) return t.skip('gfal2-util-scripts not installed');
  testCaDir();
  const body = randomBytes(500_000);
  await putToCargo('/vo/gfal-src.bin', body);
  const hello = readFileSync(join(dir, 'data', 'hello.bin'));
  const port = new URL(h.gateway.url).port;
  const cargoDavs = (p: string) => `davs://localhost:${port}/data${p}`;
  const cargoH1Davs = (p: string) => `davs://localhost:${h.gateway.http1Port}/data${p}`;
  const xrdDavs = (p: string) => `davs://localhost:${xrdPort}${p}`;
  const gfal = (token: string | undefined, mode: string, src: string, dst: string) => runTool('gfal-copy', ['-v', '--copy-mode', mode, src, dst], {
    env: { ...(token ? { BEARER_TOKEN: token } : {}), BEARER_TOKEN_FILE: join(dir, 'no-token'), XDG_RUNTIME_DIR: dir }, timeoutMs: 90_000,
  });
  const token = iss.mint({ aud: ANY_AUD, sub: 'gfal-user', scope: 'storage.read:/ storage.modify:/' });
  // The port pulls from XRootD (the port active; XRootD checks the forwarded token).
  let r = await gfal(token, 'pull', xrdDavs('/hello.bin'), cargoDavs('/vo/gfal-pulled.bin'));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /3rd pull/);
  assert.ok(readFileSync(stored('vo/gfal-pulled.bin')).equals(hello));
  // XRootD pulls from the port (XRootD active; the port checks the forwarded token).
  r = await gfal(token, 'pull', cargoDavs('/vo/gfal-src.bin'), xrdDavs('/gfal-from-port.bin'));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(readFileSync(join(dir, 'data', 'gfal-from-port.bin')).equals(body));
  // The port pushes to XRootD.
  r = await gfal(token, 'push', cargoDavs('/vo/gfal-src.bin'), xrdDavs('/gfal-pushed-by-port.bin'));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /3rd push/);
  assert.ok(readFileSync(join(dir, 'data', 'gfal-pushed-by-port.bin')).equals(body));
  // XRootD pushes into the port (its HTTP/1.1 listener).
  r = await gfal(token, 'push', xrdDavs('/hello.bin'), cargoH1Davs('/vo/gfal-pushed-by-xrd.bin'));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(readFileSync(stored('vo/gfal-pushed-by-xrd.bin')).equals(hello));
  // Refusals (no token, read-only, wrong audience) are covered with curl above; each gfal-copy run costs ~10 s here.
});
