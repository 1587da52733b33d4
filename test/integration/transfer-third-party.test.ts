/**
 * Remote → remote by HTTP third-party copy (copyMode): the port asks one cargoport storage endpoint to copy
 * from/to another (COPY, pull or push) and checks the destination itself afterwards; `auto` falls back from pull to
 * push to streaming when the active party refuses COPY (a plain web server answers 405), and remembers refusals.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { adler32 } from '../../services/checksum/adler32.js';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';
import type { TransferRequest } from '../../services/transfer/types.js';
import { startHarness } from '../support/port-harness.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });
const hex = (b: Buffer) => adler32(b).toString(16).padStart(8, '0');

describe('transfer engine: HTTP third-party copy as the client', () => {
  let a: TestStorageServer;
  let b: TestStorageServer;
  let plain: H2FileServer;
  const activeCopies: Array<{ server: string; mode: string }> = [];
  const body = randomBytes(3 * 1024 * 1024 + 17);

  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
    const tpc = (server: string) => ({ engine, allowLocal: true, markerIntervalMs: 50, onTransfer: (i: { mode: string }) => activeCopies.push({ server, mode: i.mode }) });
    a = await startStorageServer({ tpc: tpc('a') });
    b = await startStorageServer({ tpc: tpc('b') });
    plain = await startH2FileServer({ root: tempDir('tpc-plain') });
    writeFileSync(join(a.permanentDir, 'src.bin'), body);
    writeFileSync(join(plain.root, 'plain.bin'), body);
  });
  after(async () => {
    await engine.close();
    await a.close();
    await b.close();
    await plain.close();
  });

  const req = (source: string, destination: string, extra: Partial<TransferRequest>): TransferRequest =>
    ({ source, destination, verify: 'none', overwrite: false, ...extra });

  test('pull: the destination storage copies from the source; the port verifies size and checksum', async () => {
    activeCopies.length = 0;
    const r = await engine.transfer(req(`${a.base}/src.bin`, `${b.base}/pulled.bin`, { copyMode: 'pull', verify: 'both' }), ctl());
    assert.equal(r.protocol, 'tpc-pull');
    assert.equal(r.bytes, body.length);
    assert.equal(r.checksum?.value, hex(body));
    assert.deepEqual(activeCopies, [{ server: 'b', mode: 'pull' }], 'b was the active party');
    assert.ok(readFileSync(join(b.permanentDir, 'pulled.bin')).equals(body));
  });

  test('push: the source storage copies to the destination; a wrong expected checksum fails the transfer', async () => {
    activeCopies.length = 0;
    const r = await engine.transfer(req(`${a.base}/src.bin`, `${b.base}/pushed.bin`, { copyMode: 'push', checksum: { alg: 'adler32', value: hex(body) } }), ctl());
    assert.equal(r.protocol, 'tpc-push');
    assert.deepEqual(activeCopies, [{ server: 'a', mode: 'push' }]);
    assert.ok(readFileSync(join(b.permanentDir, 'pushed.bin')).equals(body));
    await assert.rejects(
      engine.transfer(req(`${a.base}/src.bin`, `${b.base}/pushed-2.bin`, { copyMode: 'push', checksum: { alg: 'adler32', value: '00000001' } }), ctl()),
      (e: Error & { code?: string }) => e.code === 'CARGO_ERR_CHECKSUM_MISMATCH',
    );
    // The copied file failed the port's check: it is removed, so the retry (no overwrite) does not meet it.
    assert.equal(existsSync(join(b.permanentDir, 'pushed-2.bin')), false, 'nothing unverified stays at the destination');
    const retry = await engine.transfer(req(`${a.base}/src.bin`, `${b.base}/pushed-2.bin`, { copyMode: 'push', checksum: { alg: 'adler32', value: hex(body) } }), ctl());
    assert.equal(retry.protocol, 'tpc-push');
    assert.ok(readFileSync(join(b.permanentDir, 'pushed-2.bin')).equals(body));
  });

  test('auto: a destination that refuses COPY → push from the source; nothing does COPY → streamed; refusals remembered', async () => {
    engine.forgetCopyRefusals();
    activeCopies.length = 0;
    const before = plain.requests.length;
    const r1 = await engine.transfer(req(`${a.base}/src.bin`, plain.url('/auto-1.bin'), { copyMode: 'auto' }), ctl());
    assert.equal(r1.protocol, 'tpc-push', 'pull refused by the plain server (405), push done by a');
    assert.ok(readFileSync(join(plain.root, 'auto-1.bin')).equals(body));
    const copies = plain.requests.slice(before).filter((q) => q.method === 'COPY').length;
    assert.equal(copies, 1, 'one COPY asked of the plain server');
    const r2 = await engine.transfer(req(`${a.base}/src.bin`, plain.url('/auto-2.bin'), { copyMode: 'auto' }), ctl());
    assert.equal(r2.protocol, 'tpc-push');
    assert.equal(plain.requests.slice(before).filter((q) => q.method === 'COPY').length, 1, 'the refusal was remembered');
    const r3 = await engine.transfer(req(plain.url('/plain.bin'), `${b.base}/streamed.bin`, { copyMode: 'auto', verify: 'none' }), ctl());
    // b (destination) does COPY: pull mode works here, the plain server only needs to answer GET.
    assert.equal(r3.protocol, 'tpc-pull');
    const r4 = await engine.transfer(req(plain.url('/plain.bin'), plain.url('/copy-of-plain.bin'), { copyMode: 'auto' }), ctl());
    assert.ok(r4.protocol === 'h2' || r4.protocol === 'http/1.1', `streamed through the port (${r4.protocol})`);
    assert.ok(readFileSync(join(plain.root, 'copy-of-plain.bin')).equals(body));
  });

  test('without a copyMode in the request, the destination endpoint\'s setting applies', async () => {
    engine.forgetCopyRefusals();
    await engine.configureEndpoint(b.origin, { copyMode: 'pull' });
    try {
      const r = await engine.transfer(req(`${a.base}/src.bin`, `${b.base}/by-endpoint.bin`, {}), ctl());
      assert.equal(r.protocol, 'tpc-pull');
      const explicit = await engine.transfer(req(`${a.base}/src.bin`, `${b.base}/by-job.bin`, { copyMode: 'streamed' }), ctl());
      assert.ok(explicit.protocol === 'h2', `the job's own mode wins (${explicit.protocol})`);
    } finally {
      await engine.configureEndpoint(b.origin, undefined);
    }
  });

  test('an explicit mode the active party refuses is a clear, final error', async () => {
    engine.forgetCopyRefusals();
    await assert.rejects(
      engine.transfer(req(plain.url('/plain.bin'), plain.url('/never.bin'), { copyMode: 'pull' }), ctl()),
      (e: Error & { code?: string; retryable?: boolean }) => e.code === 'CARGO_ERR_TPC_UNSUPPORTED' && e.retryable === false && /HTTP 405/.test(e.message),
    );
  });

  test('a job with params.copyMode runs as a third-party copy through the port (attempt protocol tpc-pull)', async () => {
    engine.forgetCopyRefusals();
    const h = await startHarness();
    try {
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: [{ source: `${a.base}/src.bin`, destination: `${b.base}/from-job.bin` }],
        params: { copyMode: 'auto', verifyChecksum: 'both' },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const job = await h.waitJob(r.body.jobId);
      assert.equal(job['state'], 'FINISHED', JSON.stringify(job));
      const file = (await h.api<{ attempts: Array<{ protocol?: string; outcome?: string; bytes?: number }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
      assert.equal(file.attempts[0]?.protocol, 'tpc-pull');
      assert.equal(file.attempts[0]?.bytes, body.length);
      assert.ok(readFileSync(join(b.permanentDir, 'from-job.bin')).equals(body));
    } finally {
      await h.close();
    }
  });
});
