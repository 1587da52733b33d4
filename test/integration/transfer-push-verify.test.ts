/**
 * A push is only a success if the destination really holds the bytes: a server that answers 201 but stores
 * nothing (XRootD 5.5 does this when it cannot parse the length header) must make the transfer fail loudly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { defaultMultiStreamPolicy } from '../../services/transfer/pull/multi-stream.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

describe('transfer engine: push verification', () => {
  let dst: H2FileServer;
  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
    dst = await startH2FileServer({ root: tempDir('push-verify-dst') });
  });
  after(async () => {
    await dst.close();
    await engine.close();
  });

  test('a destination that stores an empty file despite 201 → CARGO_ERR_SIZE_MISMATCH; a good one passes', async () => {
    const dir = tempDir('push-verify-src');
    const [f] = makeRandomFiles(dir, 1, 200_000, 200_000);
    const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });
    dst.faults.dropPutBody = true;
    await assert.rejects(
      engine.transfer({ source: `file://${dir}/${f!.name}`, destination: dst.url(`/bad/${f!.name}`), verify: 'none', overwrite: true }, ctl()),
      (e: Error & { code?: string; field?: string }) => e.code === 'CARGO_ERR_SIZE_MISMATCH' && e.field === 'destination' && /reports 0 bytes where 200000 were sent/.test(e.message),
    );
    dst.faults.dropPutBody = false;
    const ok = await engine.transfer({ source: `file://${dir}/${f!.name}`, destination: dst.url(`/good/${f!.name}`), verify: 'none', overwrite: true }, ctl());
    assert.equal(ok.bytes, 200_000);
  });

  test('the ranged (multi-connection) push gets the same check', async () => {
    const dir = tempDir('push-verify-ranged');
    const [f] = makeRandomFiles(dir, 1, 9 * 1024 * 1024, 9 * 1024 * 1024);
    const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });
    await engine.configureEndpoint(dst.origin, { rangedUpload: true });
    await engine.reconfigure({ multiStream: { enabled: true, minFileBytes: 2 * 1024 * 1024, rangeBytes: 1024 * 1024 } });
    const before = dst.requests.length;
    try {
      dst.faults.dropPutBody = true;
      await assert.rejects(
        engine.transfer({ source: `file://${dir}/${f!.name}`, destination: dst.url(`/ranged-bad/${f!.name}`), verify: 'none', overwrite: true, connections: 2, streams: 2 }, ctl()),
        (e: Error & { code?: string }) => e.code === 'CARGO_ERR_SIZE_MISMATCH',
      );
      dst.faults.dropPutBody = false;
      const ok = await engine.transfer({ source: `file://${dir}/${f!.name}`, destination: dst.url(`/ranged-good/${f!.name}`), verify: 'none', overwrite: true, connections: 2, streams: 2 }, ctl());
      assert.ok(ok.connections * ok.streams > 1, 'the ranged path was taken');
      const ranged = dst.requests.slice(before).filter((r) => r.method === 'PUT' && r.headers['content-range']);
      assert.ok(ranged.length >= 2 * 9, 'both pushes were ranged PUTs');
    } finally {
      dst.faults.dropPutBody = false;
      await engine.configureEndpoint(dst.origin, undefined);
      await engine.reconfigure({ multiStream: defaultMultiStreamPolicy });
    }
  });
});

describe('transfer engine: ranged stream-through to a cargoport peer', () => {
  let src: H2FileServer;
  let dst: H2FileServer;
  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
    src = await startH2FileServer({ root: tempDir('st-src') });
    dst = await startH2FileServer({ root: tempDir('st-dst') });
  });
  after(async () => {
    await src.close();
    await dst.close();
    await engine.close();
  });

  test('remote → cargoport peer: ranged GETs (If-Range) become ranged PUT parts; the source digest is verified', async () => {
    const [f] = makeRandomFiles(src.root, 1, 9 * 1024 * 1024, 9 * 1024 * 1024, 'st');
    const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });
    await engine.configureEndpoint(dst.origin, { rangedUpload: true });
    await engine.reconfigure({ multiStream: { enabled: true, minFileBytes: 2 * 1024 * 1024, rangeBytes: 1024 * 1024 } });
    const srcBefore = src.requests.length;
    const dstBefore = dst.requests.length;
    try {
      const r = await engine.transfer({ source: src.url(`/${f!.name}`), destination: dst.url(`/through/${f!.name}`), verify: 'source', overwrite: true, connections: 2, streams: 2 }, ctl());
      assert.equal(r.bytes, 9 * 1024 * 1024);
      assert.equal(r.checksum?.value, f!.adler32, 'combined from the parts, equal to the source Digest');
      assert.ok(r.connections * r.streams > 1, 'the ranged path was taken');
      const gets = src.requests.slice(srcBefore).filter((q) => q.method === 'GET');
      assert.ok(gets.length >= 9 && gets.every((q) => /^bytes=\d+-\d+$/.test(String(q.headers['range'])) && q.headers['if-range']), 'closed ranges guarded by If-Range');
      const parts = dst.requests.slice(dstBefore).filter((q) => q.method === 'PUT' && q.headers['content-range']);
      assert.ok(parts.length >= 9, `${parts.length} ranged PUT parts`);
      assert.ok(readFileSync(join(dst.root, 'through', f!.name)).equals(readFileSync(join(src.root, f!.name))));
    } finally {
      await engine.configureEndpoint(dst.origin, undefined);
      await engine.reconfigure({ multiStream: defaultMultiStreamPolicy });
    }
  });
});

describe('transfer engine: a stream-through that cannot be verified leaves nothing at the destination', () => {
  let src: H2FileServer;
  let dst: H2FileServer;
  const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });
  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
    src = await startH2FileServer({ root: tempDir('nv-src') });
    dst = await startH2FileServer({ root: tempDir('nv-dst') });
  });
  after(async () => {
    src.faults.noDigest = false;
    src.faults.wrongDigest = false;
    await src.close();
    await dst.close();
    await engine.close();
  });

  test('verify source against a source that announces no checksum: refused before any byte is written', async () => {
    const [f] = makeRandomFiles(src.root, 1, 100_000, 100_000, 'nd');
    const before = dst.requests.length;
    src.faults.noDigest = true;
    try {
      await assert.rejects(
        engine.transfer({ source: src.url(`/${f!.name}`), destination: dst.url(`/nd/${f!.name}`), verify: 'source', overwrite: false, connections: 1, streams: 1 }, ctl()),
        (e: Error & { code?: string; field?: string }) => e.code === 'CARGO_ERR_CHECKSUM_UNAVAILABLE' && e.field === 'source',
      );
    } finally {
      src.faults.noDigest = false;
    }
    assert.deepEqual(dst.requests.slice(before).map((r) => r.method).filter((m) => m === 'PUT'), [], 'no upload started');
    assert.equal(existsSync(join(dst.root, 'nd', f!.name)), false);
  });

  test('a source checksum mismatch found after the upload removes the uploaded file; the retry (no overwrite) then succeeds', async () => {
    const [f] = makeRandomFiles(src.root, 1, 100_000, 100_000, 'wd');
    const target = dst.url(`/wd/${f!.name}`);
    const before = dst.requests.length;
    src.faults.wrongDigest = true;
    try {
      await assert.rejects(
        engine.transfer({ source: src.url(`/${f!.name}`), destination: target, verify: 'source', overwrite: false, connections: 1, streams: 1 }, ctl()),
        (e: Error & { code?: string }) => e.code === 'CARGO_ERR_CHECKSUM_MISMATCH',
      );
    } finally {
      src.faults.wrongDigest = false;
    }
    const methods = dst.requests.slice(before).map((r) => r.method);
    assert.ok(methods.includes('PUT') && methods.includes('DELETE'), `uploaded, then removed: ${methods.join(' ')}`);
    assert.equal(existsSync(join(dst.root, 'wd', f!.name)), false, 'nothing unverified stays published');
    const ok = await engine.transfer({ source: src.url(`/${f!.name}`), destination: target, verify: 'source', overwrite: false, connections: 1, streams: 1 }, ctl());
    assert.equal(ok.checksum?.value, f!.adler32);
    assert.ok(readFileSync(join(dst.root, 'wd', f!.name)).equals(readFileSync(join(src.root, f!.name))));
  });

  test('the ranged (multi-connection) stream-through to a cargoport peer removes an assembled file it cannot verify', async () => {
    const [f] = makeRandomFiles(src.root, 1, 5 * 1024 * 1024, 5 * 1024 * 1024, 'rwd');
    const target = dst.url(`/rwd/${f!.name}`);
    await engine.configureEndpoint(dst.origin, { rangedUpload: true });
    await engine.reconfigure({ multiStream: { enabled: true, minFileBytes: 2 * 1024 * 1024, rangeBytes: 1024 * 1024 } });
    const before = dst.requests.length;
    src.faults.wrongDigest = true;
    try {
      await assert.rejects(
        engine.transfer({ source: src.url(`/${f!.name}`), destination: target, verify: 'source', overwrite: false, connections: 2, streams: 2 }, ctl()),
        (e: Error & { code?: string }) => e.code === 'CARGO_ERR_CHECKSUM_MISMATCH',
      );
      const methods = dst.requests.slice(before).map((r) => r.method);
      assert.ok(methods.filter((m) => m === 'PUT').length >= 5 && methods.includes('DELETE'), `parts uploaded, then removed: ${methods.join(' ')}`);
      assert.equal(existsSync(join(dst.root, 'rwd', f!.name)), false, 'nothing unverified stays published');
      src.faults.wrongDigest = false;
      const ok = await engine.transfer({ source: src.url(`/${f!.name}`), destination: target, verify: 'source', overwrite: false, connections: 2, streams: 2 }, ctl());
      assert.ok(ok.connections * ok.streams > 1, 'the ranged path was taken');
      assert.ok(readFileSync(join(dst.root, 'rwd', f!.name)).equals(readFileSync(join(src.root, f!.name))));
    } finally {
      src.faults.wrongDigest = false;
      await engine.configureEndpoint(dst.origin, undefined);
      await engine.reconfigure({ multiStream: defaultMultiStreamPolicy });
    }
  });
});
