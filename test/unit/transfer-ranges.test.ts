/**
 * Range bookkeeping for multi-stream pulls: merging done ranges, finding the gaps to fetch, and combining
 * per-range adler32/crc32c into the whole-file value.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Sum32Checksummer } from '../../services/checksum/checksummer.js';
import { combineRangeSums, missingRanges, normaliseRanges, sameRepresentation } from '../../services/transfer/pull/multi-stream.js';
import { contiguousPrefix } from '../../services/transfer/local/local-part-file.js';
import { contentLength, ifRangeValidator, splitValidator } from '../../services/transfer/http/http-requests.js';

describe('range bookkeeping', () => {
  it('normalises: sorts, merges touching/overlapping ranges, clips to the size, drops empties', () => {
    assert.deepEqual(normaliseRanges([[50, 60], [0, 10], [10, 20], [15, 30], [70, 70], [90, 200]], 100),
      [[0, 30], [50, 60], [90, 100]]);
  });

  it('lists the gaps cut into pieces', () => {
    assert.deepEqual(missingRanges([[0, 30], [50, 60]], 100, 25), [[30, 50], [60, 85], [85, 100]]);
    assert.deepEqual(missingRanges([], 10, 4), [[0, 4], [4, 8], [8, 10]]);
    assert.deepEqual(missingRanges([[0, 10]], 10, 4), []);
  });

  it('contiguous prefix stops at the first gap', () => {
    assert.equal(contiguousPrefix([[0, 10], [10, 20], [25, 30]]), 20);
    assert.equal(contiguousPrefix([[5, 10]]), 0);
  });

  for (const alg of ['adler32', 'crc32c'] as const) {
    it(`combines ${alg} range sums in any order into the whole-file value`, () => {
      const data = randomBytes(100_003);
      const whole = new Sum32Checksummer(alg);
      whole.update(data);
      const cuts = [0, 1, 4096, 50_000, 50_001, 99_999, data.length];
      const sums: Array<{ start: number; end: number; state: number }> = [];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const s = new Sum32Checksummer(alg);
        s.update(data.subarray(cuts[i], cuts[i + 1]));
        sums.push({ start: cuts[i]!, end: cuts[i + 1]!, state: s.state });
      }
      sums.reverse();
      assert.equal(combineRangeSums(alg, sums, data.length), whole.state);
      assert.throws(() => combineRangeSums(alg, sums.slice(1), data.length), /gap|cover/);
    });
  }
});

describe('validators for ranges (If-Range)', () => {
  const at = (iso: string) => new Date(iso).toUTCString();
  it('splits on a strong ETag, or on a Last-Modified at least a second older than Date', () => {
    assert.equal(splitValidator({ etag: '"abc"', 'last-modified': at('2026-01-01T00:00:00Z'), date: at('2026-01-01T00:00:00Z') }), '"abc"');
    assert.equal(splitValidator({ 'last-modified': at('2026-01-01T00:00:00Z'), date: at('2026-01-01T00:00:01Z') }), at('2026-01-01T00:00:00Z'));
    assert.equal(splitValidator({}), undefined, 'no validator at all: the caller decides');
  });
  it('a file modified within the last second (weak ETag, Last-Modified = Date) is changing: not split', () => {
    // What Apache sends for a file written less than a second ago.
    const lm = at('2026-01-01T00:00:00Z');
    assert.equal(splitValidator({ etag: 'W/"1312d00-661c703c924ac"', 'last-modified': lm, date: lm }), 'changing');
    assert.equal(splitValidator({ etag: 'W/"x"' }), 'changing');
    assert.equal(splitValidator({ etag: 'W/"x"', 'last-modified': lm, date: at('2026-01-01T00:00:05Z') }), 'changing', 'a weak ETag on a recent file');
    assert.equal(splitValidator({ 'last-modified': lm }), 'changing', 'no Date: the date cannot be shown strong');
  });
  it('a weak ETag on a file untouched for a minute: split, with no If-Range (the ranges\' validators are compared)', () => {
    assert.equal(splitValidator({ etag: 'W/"x"', 'last-modified': at('2026-01-01T00:00:00Z'), date: at('2026-01-01T00:01:00Z') }), undefined);
  });
  it('never puts a weak ETag into If-Range', () => {
    assert.equal(ifRangeValidator('W/"x"', 'Thu, 01 Jan 2026 00:00:00 GMT'), 'Thu, 01 Jan 2026 00:00:00 GMT');
    assert.equal(ifRangeValidator('"x"', 'Thu, 01 Jan 2026 00:00:00 GMT'), '"x"');
    assert.equal(ifRangeValidator('W/"x"', undefined), undefined);
  });
});

describe('sameRepresentation (each range of a split file)', () => {
  const plan = { size: 100, etag: '"e1"', lastModified: 'Thu, 01 Jan 2026 00:00:00 GMT' };
  it('accepts the same size and validators, and is lenient where a side lacks a header', () => {
    assert.ok(sameRepresentation({ size: 100, headers: { etag: '"e1"', 'last-modified': plan.lastModified } }, plan));
    assert.ok(sameRepresentation({ size: undefined, headers: {} }, plan));
    assert.ok(sameRepresentation({ size: 100, headers: { etag: 'W/"e1"' } }, plan), 'weak and strong forms of one tag');
  });
  it('refuses another size, ETag or Last-Modified', () => {
    assert.equal(sameRepresentation({ size: 101, headers: {} }, plan), false);
    assert.equal(sameRepresentation({ size: 100, headers: { etag: '"e2"' } }, plan), false);
    assert.equal(sameRepresentation({ size: 100, headers: { 'last-modified': 'Fri, 02 Jan 2026 00:00:00 GMT' } }, plan), false);
  });
});

describe('Content-Length of a whole answer', () => {
  it('digits, or the same digits repeated; anything else is not a length', () => {
    assert.equal(contentLength('1000'), 1000);
    assert.equal(contentLength('1000, 1000'), 1000);
    assert.equal(contentLength('0'), 0);
    for (const bad of ['-5', '1e3', '10.5', '1000, 999', '', 'abc', '99999999999999999']) assert.ok(Number.isNaN(contentLength(bad)), bad);
  });
});
