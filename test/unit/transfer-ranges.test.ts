/**
 * Range bookkeeping for multi-stream pulls: merging done ranges, finding the gaps to fetch, and combining
 * per-range adler32/crc32c into the whole-file value.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Sum32Checksummer } from '../../services/checksum/checksummer.js';
import { combineRangeSums, missingRanges, normaliseRanges } from '../../services/transfer/multi-stream.js';
import { contiguousPrefix } from '../../services/transfer/local-part-file.js';

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
