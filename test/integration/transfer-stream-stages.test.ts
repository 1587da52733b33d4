/**
 * Stream stages (the processing seam): bytes pass through transforms between source and destination. Real zstd
 * (zstd-napi) on a push and a pull; the source checksum is of the source bytes; a failing stage is a fatal
 * CARGO_ERR_STAGE_FAILED that publishes nothing; a source that fails under the stages stays a retryable network
 * error.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CompressStream, DecompressStream, decompress, compress } from 'zstd-napi';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import type { StreamStage } from '../../services/transfer/stream-stage.js';
import { adler32 } from '../../services/checksum/adler32.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const zstdCompress: StreamStage = { name: 'zstd-compress', create: () => new CompressStream() };
const zstdDecompress: StreamStage = { name: 'zstd-decompress', create: () => new DecompressStream() };
const hex = (n: number) => n.toString(16).padStart(8, '0');
const ctl = (stages: StreamStage[]) => ({ signal: new AbortController().signal, gate: new PauseGate(), stages });

describe('transfer engine: stream stages', () => {
  let srv: H2FileServer;
  // Compressible but not trivial: random words.
  const words = Array.from({ length: 500 }, () => randomBytes(6).toString('hex'));
  const original = Buffer.from(Array.from({ length: 400_000 }, (_, i) => words[(i * 7919) % words.length]).join(' '));

  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
    srv = await startH2FileServer({ root: tempDir('stages-srv') });
  });
  after(async () => {
    await srv.close();
    await engine.close();
  });

  test('push through zstd-compress: the destination holds the compressed bytes; the checksum is the source\'s', async () => {
    const dir = tempDir('stages-push');
    writeFileSync(join(dir, 'data.txt'), original);
    const r = await engine.transfer({
      source: `file://${dir}/data.txt`, destination: srv.url('/pushed.txt.zst'), verify: 'none', overwrite: true,
      checksum: { alg: 'adler32', value: hex(adler32(original)) },
    }, ctl([zstdCompress]));
    const stored = readFileSync(join(srv.root, 'pushed.txt.zst'));
    assert.ok(stored.length < original.length / 2, `compressed (${stored.length} of ${original.length} bytes)`);
    assert.equal(r.bytes, stored.length, 'bytes counts what the destination received');
    assert.equal(r.checksum?.value, hex(adler32(original)), 'checksum of the source bytes, verified against the given value');
    assert.ok(decompress(stored).equals(original));
  });

  test('pull through zstd-decompress; a wrong expected checksum of the source still fails', async () => {
    const packed = compress(original);
    writeFileSync(join(srv.root, 'packed.zst'), packed);
    const dir = tempDir('stages-pull');
    const r = await engine.transfer({
      source: srv.url('/packed.zst'), destination: `file://${dir}/unpacked.txt`, verify: 'source', overwrite: false,
    }, ctl([zstdDecompress]));
    assert.ok(readFileSync(join(dir, 'unpacked.txt')).equals(original));
    assert.equal(r.bytes, original.length);
    assert.equal(r.checksum?.value, hex(adler32(packed)), 'verified against the source Digest of the compressed bytes');
    await assert.rejects(
      engine.transfer({
        source: srv.url('/packed.zst'), destination: `file://${dir}/again.txt`, verify: 'none', overwrite: false,
        checksum: { alg: 'adler32', value: hex(adler32(original)) },
      }, ctl([zstdDecompress])),
      (e: Error & { code?: string }) => e.code === 'CARGO_ERR_CHECKSUM_MISMATCH',
    );
    assert.equal(existsSync(join(dir, 'again.txt')), false);
  });

  test('a failing stage → CARGO_ERR_STAGE_FAILED, not retryable, nothing published, no part file', async () => {
    writeFileSync(join(srv.root, 'not-zstd.bin'), randomBytes(100_000));
    const dir = tempDir('stages-fail');
    await assert.rejects(
      engine.transfer({ source: srv.url('/not-zstd.bin'), destination: `file://${dir}/out.bin`, verify: 'none', overwrite: false }, ctl([zstdDecompress])),
      (e: Error & { code?: string; retryable?: boolean }) =>
        e.code === 'CARGO_ERR_STAGE_FAILED' && e.retryable === false && /zstd-decompress/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir), []);
    const srcDir = tempDir('stages-fail-push');
    writeFileSync(join(srcDir, 'x.bin'), randomBytes(50_000));
    await assert.rejects(
      engine.transfer({ source: `file://${srcDir}/x.bin`, destination: srv.url('/never.bin'), verify: 'none', overwrite: true }, ctl([zstdDecompress])),
      (e: Error & { code?: string }) => e.code === 'CARGO_ERR_STAGE_FAILED',
    );
  });

  test('a source cut under the stages stays a retryable network error', async () => {
    writeFileSync(join(srv.root, 'big.zst'), compress(randomBytes(500_000)));
    const dir = tempDir('stages-cut');
    srv.faults.resetAfter = { count: 10, afterBytes: 20_000 };
    try {
      await assert.rejects(
        engine.transfer({ source: srv.url('/big.zst'), destination: `file://${dir}/out.txt`, verify: 'none', overwrite: false }, ctl([zstdDecompress])),
        (e: Error & { code?: string; retryable?: boolean }) => e.code === 'CARGO_ERR_NETWORK' && e.retryable === true,
      );
    } finally {
      srv.faults.resetAfter = undefined;
    }
    assert.deepEqual(readdirSync(dir), [], 'a staged transfer keeps no part file: a retry starts over');
  });
});
