/**
 * Interop with the real clients WLCG sites run, against real cargoport storage endpoints (HTTP/2 + TLS,
 * HTTP/1.1 fallback for davix/gfal2): curl --http2, davix-put/get/ls, gfal-copy/ls/stat/sum, HTTP-TPC pull and
 * push between two instances driven by gfal-copy and curl -X COPY, and gfal2's Tape REST calls.
 * Each test skips with a reason when its tool is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { hasTool, runTool, testCaDir } from '../support/external-tools.js';
import { testTls } from '../support/tls.js';
import { adler32 } from '../../services/checksum/adler32.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { NearlineBackend } from '../../services/storage/nearline-backend.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

let a: TestStorageServer; // nearline permanent storage (tape emulation)
let b: TestStorageServer; // posix permanent storage
let work: string;
let payload: Buffer;
let local: string;
const ca = () => testTls().certPath;
const davs = (srv: TestStorageServer, p: string) => `davs://127.0.0.1:${srv.port}/data${p}`;

before(async () => {
  await engine.reconfigure({ ca: testTls().cert });
  const tpc = { engine, allowLocal: true };
  a = await startStorageServer({ tpc, nearline: { recallLatencyMs: 300 } });
  b = await startStorageServer({ tpc });
  work = mkdtempSync(join(tmpdir(), 'cargoport-interop-'));
  payload = randomBytes(3 * 1024 * 1024 + 123);
  local = join(work, 'payload.bin');
  writeFileSync(local, payload);
  testCaDir();
});
after(async () => {
  await engine.close();
  await a.close();
  await b.close();
  rmSync(work, { recursive: true, force: true });
});

const adlerHex = (buf: Buffer) => adler32(buf).toString(16).padStart(8, '0');

test('curl --http2: upload, download, range, HEAD on a collection', async (t) => {
  if (!hasTool('curl')) return t.skip('curl not installed');
  const up = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-T', local, '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `${b.base}/curl/up.bin`]);
  assert.equal(up.stdout, '201 2');
  const out = join(work, 'curl-down.bin');
  const down = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-o', out, '-w', '%{http_code} %{http_version}', `${b.base}/curl/up.bin`]);
  assert.equal(down.stdout, '200 2');
  assert.ok(readFileSync(out).equals(payload));
  const range = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-r', '100-199', '-o', out, '-w', '%{http_code}', `${b.base}/curl/up.bin`]);
  assert.equal(range.stdout, '206');
  assert.ok(readFileSync(out).equals(payload.subarray(100, 200)));
  const head = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-I', '-o', '/dev/null', '-w', '%{http_code}', `${b.base}/curl`]);
  assert.equal(head.stdout, '200');
  const bad = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-r', '99999999-', '-o', '/dev/null', '-w', '%{http_code}', `${b.base}/curl/up.bin`]);
  assert.equal(bad.stdout, '416');
});

test('davix-put, davix-get, davix-ls', async (t) => {
  if (!hasTool('davix-put')) return t.skip('davix not installed');
  const put = await runTool('davix-put', ['--capath', testCaDir(), local, `${b.base}/davix/f.bin`]);
  assert.equal(put.code, 0, put.stderr);
  const out = join(work, 'davix-down.bin');
  const get = await runTool('davix-get', ['--capath', testCaDir(), `${b.base}/davix/f.bin`, out]);
  assert.equal(get.code, 0, get.stderr);
  assert.ok(readFileSync(out).equals(payload));
  const ls = await runTool('davix-ls', ['--capath', testCaDir(), '-l', davs(b, '/davix/')]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`${payload.length}\\s+\\S+ \\S+ f\\.bin`));
});

test('gfal-copy up/down, gfal-ls, gfal-stat, gfal-sum ADLER32', async (t) => {
  if (!hasTool('gfal-copy')) return t.skip('gfal2-util-scripts not installed');
  const up = await runTool('gfal-copy', ['-f', `file://${local}`, davs(b, '/gfal/f.bin')]);
  assert.equal(up.code, 0, up.stderr);
  const out = join(work, 'gfal-down.bin');
  const down = await runTool('gfal-copy', ['-f', davs(b, '/gfal/f.bin'), `file://${out}`]);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(readFileSync(out).equals(payload));
  const ls = await runTool('gfal-ls', ['-l', davs(b, '/gfal/')]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`${payload.length} .* f\\.bin`));
  const stat = await runTool('gfal-stat', [davs(b, '/gfal/f.bin')]);
  assert.equal(stat.code, 0, stat.stderr);
  assert.match(stat.stdout, new RegExp(`Size: ${payload.length}\\s+regular file`));
  const sum = await runTool('gfal-sum', [davs(b, '/gfal/f.bin'), 'ADLER32']);
  assert.equal(sum.code, 0, sum.stderr);
  assert.equal(sum.stdout.trim().split(/\s+/).pop(), adlerHex(payload));
});

test('HTTP-TPC with gfal-copy --copy-mode pull and push between two instances', async (t) => {
  if (!hasTool('gfal-copy')) return t.skip('gfal2-util-scripts not installed');
  await runTool('gfal-copy', ['-f', `file://${local}`, davs(b, '/tpc/src.bin')]);
  for (const mode of ['pull', 'push']) {
    const dst = davs(a, `/tpc/${mode}.bin`);
    const r = await runTool('gfal-copy', ['-v', '--copy-mode', mode, '--checksum', 'ADLER32', davs(b, '/tpc/src.bin'), dst]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`TRANSFER:TYPE\\s+3rd ${mode}`), 'a real third-party copy, not streamed');
    const sum = await runTool('gfal-sum', [dst, 'ADLER32']);
    assert.equal(sum.stdout.trim().split(/\s+/).pop(), adlerHex(payload));
  }
});

test('HTTP-TPC with curl -X COPY (pull and push): 202, markers, success: Created', async (t) => {
  if (!hasTool('curl')) return t.skip('curl not installed');
  await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-T', local, '-o', '/dev/null', `${b.base}/ctpc/src.bin`]);
  const pull = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-X', 'COPY', '-H', `Source: ${b.base}/ctpc/src.bin`, '-H', 'Credential: none', '-w', '\n%{http_code}', `${a.base}/ctpc/pulled.bin`]);
  assert.match(pull.stdout, /Perf Marker\nTimestamp: \d+\nStripe Index: 0\nStripe Bytes Transferred: \d+\nTotal Stripe Count: 1\nEnd\n/);
  assert.match(pull.stdout, /success: Created\n\n202$/);
  const push = await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-X', 'COPY', '-H', `Destination: ${b.base}/ctpc/pushed.bin`, '-w', '\n%{http_code}', `${a.base}/ctpc/pulled.bin`]);
  assert.match(push.stdout, /success: Created\n\n202$/);
  const out = join(work, 'ctpc.bin');
  await runTool('curl', ['-sS', '--http2', '--cacert', ca(), '-o', out, `${b.base}/ctpc/pushed.bin`]);
  assert.ok(readFileSync(out).equals(payload));
});

test('gfal2 Tape REST: gfal-archivepoll and gfal-bringonline against the nearline emulator', async (t) => {
  if (!hasTool('gfal-bringonline')) return t.skip('gfal2-util-scripts not installed');
  const put = await runTool('curl', ['-sS', '--cacert', ca(), '-T', local, '-o', '/dev/null', '-w', '%{http_code}', `${a.base}/tape/f.bin`]);
  assert.equal(put.stdout, '201');
  (a.storage.permanent as NearlineBackend).evict('/tape/f.bin'); // migrated: on tape only
  const poll = await runTool('gfal-archivepoll', [davs(a, '/tape/f.bin')]);
  assert.match(poll.stdout, /READY/, poll.stdout + poll.stderr);
  const before = await runTool('curl', ['-sS', '--cacert', ca(), '-o', '/dev/null', '-w', '%{http_code}', `${a.base}/tape/f.bin`]);
  assert.equal(before.stdout, '409', 'not readable while only on tape');
  const bring = await runTool('gfal-bringonline', ['--polling-timeout', '60', davs(a, '/tape/f.bin')]);
  assert.match(bring.stdout, /f\.bin READY/, bring.stdout + bring.stderr);
  const afterGet = await runTool('curl', ['-sS', '--cacert', ca(), '-o', '/dev/null', '-w', '%{http_code}', `${a.base}/tape/f.bin`]);
  assert.equal(afterGet.stdout, '200');
  const missing = await runTool('gfal-bringonline', ['--polling-timeout', '30', davs(a, '/tape/missing.bin')]);
  assert.match(missing.stdout + missing.stderr, /FAILED/);
});
