/**
 * HTTP-TPC between cargoport and a real XRootD HTTPS endpoint (xrootd-server with XrdHttp + XrdHttpTPC):
 * each side pulls from and pushes to the other, driven by `curl -X COPY` and `gfal-copy --copy-mode pull|push`.
 * XRootD pushes into cargoport's HTTP/1.1-only listener (its HTTP/2 uploads are broken, see gateway/http1-listener.ts).
 * XRootD refuses to run as root, so as root the test runs it as the `xrootd` user (Debian package account).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../support/free-port.js';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { hasTool, runTool, testCaDir } from '../support/external-tools.js';
import { testTls } from '../support/tls.js';
import { xrootdHttpTpcConfig } from '../support/xrootd-config.js';
import { createTransferEngine } from '../../services/transfer/engine.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

let cargo: TestStorageServer;
let dir: string;
let xrdPort = 0;
let xrdPid = 0;
let skipReason: string | undefined;
const xrd = (p: string) => `https://localhost:${xrdPort}${p}`;

function xrootdUid(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'xrootd']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'xrootd']).toString().trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  if (!hasTool('xrootd')) {
    skipReason = 'xrootd not installed';
    return;
  }
  const asRoot = userInfo().uid === 0;
  const account = asRoot ? xrootdUid() : undefined;
  if (asRoot && !account) {
    skipReason = 'running as root and no xrootd account to run XRootD as';
    return;
  }
  await engine.reconfigure({ ca: testTls().cert });
  cargo = await startStorageServer({ tpc: { engine, allowLocal: true }, http1: true });
  dir = mkdtempSync(join(tmpdir(), 'cargoport-xrootd-'));
  chmodSync(dir, 0o755);
  for (const d of ['data', 'ca', 'run']) mkdirSync(join(dir, d));
  const tls = testTls();
  copyFileSync(tls.certPath, join(dir, 'cert.pem'));
  copyFileSync(tls.keyPath, join(dir, 'key.pem'));
  copyFileSync(tls.certPath, join(dir, 'ca', 'cargoport-test.pem'));
  execFileSync('openssl', ['rehash', join(dir, 'ca')], { stdio: 'ignore' });
  chmodSync(join(dir, 'key.pem'), 0o600);
  xrdPort = await freePort();
  const rootPort = await freePort();
  writeFileSync(join(dir, 'xrd.cfg'), xrootdHttpTpcConfig(dir, rootPort, xrdPort));
  if (account) execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, dir]);
  writeFileSync(join(dir, 'data', 'hello.bin'), randomBytes(200_000));
  if (account) chownSync(join(dir, 'data', 'hello.bin'), account.uid, account.gid);
  const cmd = `xrootd -c ${dir}/xrd.cfg -l ${dir}/xrd.log`;
  const child = account
    ? spawn('su', ['-s', '/bin/sh', 'xrootd', '-c', cmd], { stdio: 'ignore', detached: true })
    : spawn('sh', ['-c', cmd], { stdio: 'ignore', detached: true });
  child.unref();
  const log = () => (existsSync(join(dir, 'xrd.log')) ? readFileSync(join(dir, 'xrd.log'), 'utf8') : '');
  await waitFor(() => /initialization (completed|failed)/.test(log()) && /:\d+ initialization (completed|failed)/.test(log()), 'xrootd start');
  if (!new RegExp(`:${xrdPort} initialization completed`).test(log())) {
    skipReason = `xrootd failed to start: ${log().slice(-500)}`;
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
  await engine.close();
  await cargo?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ca = () => testTls().certPath;
const cargoDavs = (p: string) => `davs://localhost:${cargo.port}/data${p}`;
const xrdDavs = (p: string) => `davs://localhost:${xrdPort}${p}`;
// When XRootD is the active party, gfal2 without a token sends `Credential: gridsite`, which XRootD refuses
// (400: it accepts only `none`). A bearer token makes gfal2 send `Credential: none` + TransferHeaderAuthorization;
// neither server here checks tokens.
const env = { BEARER_TOKEN: 'interop-test-token' };

test('curl -X COPY: each side pulls from and pushes to the other', async (t) => {
  if (skipReason) return t.skip(skipReason);
  if (!hasTool('curl')) return t.skip('curl not installed');
  const body = randomBytes(1_500_000);
  const local = join(dir, 'payload.bin');
  writeFileSync(local, body);
  await runTool('curl', ['-sS', '--cacert', ca(), '-T', local, '-o', '/dev/null', `${cargo.base}/x/src.bin`]);
  const xPull = await runTool('curl', ['-sS', '--cacert', ca(), '-X', 'COPY', '-H', `Source: ${cargo.base.replace('127.0.0.1', 'localhost')}/x/src.bin`, '-H', 'Credential: none', xrd('/from-cargo.bin')]);
  assert.match(xPull.stdout, /success: Created/, xPull.stdout + xPull.stderr);
  assert.ok(readFileSync(join(dir, 'data', 'from-cargo.bin')).equals(body));
  const cPull = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-X', 'COPY', '-H', `Source: ${xrd('/hello.bin')}`, '-H', 'RequireChecksumVerification: true', `${cargo.base}/x/from-xrootd.bin`]);
  assert.match(cPull.stdout, /success: Created/, cPull.stdout);
  const got = await runTool('curl', ['-sS', '--cacert', ca(), '-o', join(dir, 'back.bin'), `${cargo.base}/x/from-xrootd.bin`]);
  assert.equal(got.code, 0);
  assert.ok(readFileSync(join(dir, 'back.bin')).equals(readFileSync(join(dir, 'data', 'hello.bin'))));
  // Push mode: the server receiving COPY with `Destination` PUTs to the other one.
  const cPush = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-X', 'COPY', '-H', `Destination: ${xrd('/pushed-by-cargo.bin')}`, '-H', 'Credential: none', `${cargo.base}/x/src.bin`]);
  assert.match(cPush.stdout, /success: Created/, cPush.stdout);
  assert.ok(readFileSync(join(dir, 'data', 'pushed-by-cargo.bin')).equals(body), 'cargoport pushed every byte into XRootD');
  const h1 = cargo.http1Origin!.replace('127.0.0.1', 'localhost');
  const xPush = await runTool('curl', ['-sS', '--cacert', ca(), '-X', 'COPY', '-H', `Destination: ${h1}/data/x/pushed-by-xrootd.bin`, '-H', 'Credential: none', xrd('/hello.bin')]);
  assert.match(xPush.stdout, /success: Created/, xPush.stdout + xPush.stderr);
  const back2 = await runTool('curl', ['-sS', '--cacert', ca(), '-o', join(dir, 'back2.bin'), `${cargo.base}/x/pushed-by-xrootd.bin`]);
  assert.equal(back2.code, 0);
  assert.ok(readFileSync(join(dir, 'back2.bin')).equals(readFileSync(join(dir, 'data', 'hello.bin'))), 'XRootD pushed every byte into cargoport');
});

test('gfal-copy --copy-mode pull between cargoport and XRootD, both directions', async (t) => {
  if (skipReason) return t.skip(skipReason);
  if (!hasTool('gfal-copy')) return t.skip('gfal2-util-scripts not installed');
  testCaDir();
  const hello = readFileSync(join(dir, 'data', 'hello.bin'));
  // XRootD → cargoport, pull (cargoport active: GET from XRootD).
  const pull = await runTool('gfal-copy', ['-v', '--copy-mode', 'pull', xrdDavs('/hello.bin'), cargoDavs('/g/pulled.bin')], { env });
  assert.equal(pull.code, 0, pull.stdout + pull.stderr);
  assert.match(pull.stdout + pull.stderr, /3rd pull/);
  // cargoport → XRootD, pull (XRootD active: GET from cargoport over HTTP/2).
  const back = await runTool('gfal-copy', ['-v', '--copy-mode', 'pull', cargoDavs('/g/pulled.bin'), xrdDavs('/back-pull.bin')], { env });
  assert.equal(back.code, 0, back.stdout + back.stderr);
  assert.match(back.stdout + back.stderr, /3rd pull/);
  assert.ok(readFileSync(join(dir, 'data', 'back-pull.bin')).equals(hello));
});

test('gfal-copy --copy-mode push between cargoport and XRootD, both directions', async (t) => {
  if (skipReason) return t.skip(skipReason);
  if (!hasTool('gfal-copy')) return t.skip('gfal2-util-scripts not installed');
  testCaDir();
  const hello = readFileSync(join(dir, 'data', 'hello.bin'));
  // XRootD → cargoport, push (XRootD active: its libcurl PUTs into cargoport). XRootD 5.5.3 over HTTP/2 sends
  // `content-length: N` and then an empty body, which HTTP/2 must reset; the push therefore targets the
  // HTTP/1.1-only listener (gateway.http1Port), where it works (gateway/http1-listener.ts).
  const cargoH1Davs = (p: string) => `davs://localhost:${new URL(cargo.http1Origin!).port}/data${p}`;
  const push = await runTool('gfal-copy', ['-v', '--copy-mode', 'push', xrdDavs('/hello.bin'), cargoH1Davs('/g/pushed.bin')], { env });
  assert.equal(push.code, 0, push.stdout + push.stderr);
  assert.match(push.stdout + push.stderr, /3rd push/);
  const got = await runTool('curl', ['-sS', '--cacert', ca(), '-o', join(dir, 'pushed.bin'), `${cargo.base}/g/pushed.bin`]);
  assert.equal(got.code, 0);
  assert.ok(readFileSync(join(dir, 'pushed.bin')).equals(hello), 'XRootD pushed every byte into cargoport');
  // cargoport → XRootD, push (cargoport active: the transfer engine PUTs to XRootD over HTTP/1.1).
  const back = await runTool('gfal-copy', ['-v', '--copy-mode', 'push', cargoDavs('/g/pushed.bin'), xrdDavs('/back-push.bin')], { env });
  assert.equal(back.code, 0, back.stdout + back.stderr);
  assert.match(back.stdout + back.stderr, /3rd push/);
  assert.ok(readFileSync(join(dir, 'data', 'back-push.bin')).equals(hello), 'cargoport pushed every byte into XRootD');
});
