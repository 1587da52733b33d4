/**
 * Content codings (services/transfer/content-coding.ts): which codings a Content-Encoding header names, that each
 * decodable one decodes back to the bytes (gzip, x-gzip, deflate, br, zstd, and two applied in a row), that an
 * unknown one is refused naming it, and what a result reports.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { compress as zstdCompress } from 'zstd-napi';
import { codingReport, contentCodings, decodingStages } from '../../services/transfer/content-coding.js';
import { TransferError } from '../../services/transfer/transfer-errors.js';

async function decode(bytes: Buffer, codings: string[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline([
    Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]),
    ...decodingStages(codings).map((s) => s.create()),
    new Writable({ write(c: Buffer, _e, done) { out.push(c); done(); } }),
  ]);
  return Buffer.concat(out);
}

describe('content codings', () => {
  test('the header names codings in the order applied, without identity, case-insensitively', () => {
    assert.deepEqual(contentCodings({}), []);
    assert.deepEqual(contentCodings({ 'content-encoding': 'identity' }), []);
    assert.deepEqual(contentCodings({ 'content-encoding': 'GZIP' }), ['gzip']);
    assert.deepEqual(contentCodings({ 'content-encoding': 'gzip, br' }), ['gzip', 'br']);
    assert.deepEqual(contentCodings({ 'content-encoding': ['deflate', ' zstd '] }), ['deflate', 'zstd']);
  });

  const data = randomBytes(300_000);
  const encoders: Record<string, (b: Buffer) => Buffer> = {
    gzip: gzipSync, 'x-gzip': gzipSync, deflate: deflateSync, br: brotliCompressSync, zstd: (b) => zstdCompress(b),
  };
  for (const [coding, encode] of Object.entries(encoders)) {
    test(`${coding} decodes back to the bytes`, async () => {
      assert.ok((await decode(encode(data), [coding])).equals(data));
    });
  }

  test('two codings are undone last-applied first', async () => {
    assert.ok((await decode(brotliCompressSync(gzipSync(data)), ['gzip', 'br'])).equals(data));
  });

  test('a coding the port cannot decode is refused, naming it and the keep mode', () => {
    assert.throws(() => decodingStages(['gzip', 'compress']), (e: unknown) => {
      assert.ok(e instanceof TransferError);
      assert.equal(e.code, 'CARGO_ERR_CONTENT_ENCODING');
      assert.equal(e.retryable, false);
      assert.match(e.message, /"compress" cannot be decoded.*"keep"/);
      return true;
    });
  });

  test('corrupt input fails the decoding stream', async () => {
    await assert.rejects(decode(Buffer.from('not gzip at all'), ['gzip']));
  });

  test('a result reports the coding; a warning only when the encoded bytes were kept', () => {
    assert.deepEqual(codingReport([], false), {});
    assert.deepEqual(codingReport(['gzip'], true), { contentEncoding: 'gzip' });
    const kept = codingReport(['gzip', 'br'], false);
    assert.equal(kept.contentEncoding, 'gzip, br');
    assert.match(kept.warnings![0]!, /Content-Encoding: gzip, br although none was asked for/);
  });
});
