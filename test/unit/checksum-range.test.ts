/**
 * Multi-range transfers: per-range adler32/crc32c combined into the whole-file value whatever the
 * completion order, and the in-order prefix hasher for md5/sha256 with its re-read from a temp file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adler32 } from '../../services/checksum/adler32.js';
import { crc32c } from '../../services/checksum/crc32c.js';
import { createChecksummer, type Sum32Alg } from '../../services/checksum/checksummer.js';
import { ContiguousPrefixHasher, RangeSumCollector } from '../../services/checksum/range-checksums.js';
import type { ChecksumAlg } from '../../services/transfer/types.js';

const hexOf = (alg: Sum32Alg, buf: Uint8Array): string =>
  (alg === 'adler32' ? adler32(buf) : crc32c(buf)).toString(16).padStart(8, '0');

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Random cut points → ranges [s, e) covering [0, size). */
function randomRanges(size: number, count: number): Array<[number, number]> {
  const cuts = new Set<number>([0, size]);
  while (cuts.size < Math.min(count + 1, size + 1)) cuts.add(Math.floor(Math.random() * size));
  const sorted = [...cuts].sort((a, b) => a - b);
  return sorted.slice(1).map((end, i) => [sorted[i]!, end]);
}

for (const alg of ['adler32', 'crc32c'] as Sum32Alg[]) {
  test(`${alg}: ranges completing in random order combine to the whole-file value`, () => {
    for (let round = 0; round < 30; round++) {
      const data = randomBytes(1 + Math.floor(Math.random() * 200_000));
      const ranges = shuffle(randomRanges(data.length, 1 + Math.floor(Math.random() * 40)));
      const collector = new RangeSumCollector(alg);
      for (const [i, [s, e]] of ranges.entries()) {
        assert.equal(collector.isComplete(data.length), false, 'not complete before the last range');
        // Half the ranges arrive as finished values, half are streamed in chunks through beginRange().
        if (i % 2 === 0) {
          collector.add(s, e, alg === 'adler32' ? adler32(data.subarray(s, e)) : crc32c(data.subarray(s, e)));
        } else {
          const r = collector.beginRange(s);
          for (let p = s; p < e; p += 7_777) r.update(data, p, Math.min(e, p + 7_777));
          assert.equal(r.end, e);
          r.finish();
        }
      }
      assert.equal(collector.coveredBytes, data.length);
      assert.equal(collector.isComplete(data.length), true);
      assert.equal(collector.digestHex(data.length), hexOf(alg, data), `round ${round}`);
      assert.equal(collector.snapshot().length, 1, 'adjacent pieces are merged as they arrive');
    }
  });

  test(`${alg}: incomplete or overlapping coverage is refused`, () => {
    const c = new RangeSumCollector(alg);
    c.add(0, 400, 0);
    c.add(600, 1000, 0);
    assert.throws(() => c.digestHex(1000), { code: 'CARGO_ERR_CHECKSUM_STATE' });
    assert.throws(() => c.add(399, 500, 0), { code: 'CARGO_ERR_CHECKSUM_STATE' }, 'overlaps the left piece');
    assert.throws(() => c.add(500, 601, 0), { code: 'CARGO_ERR_CHECKSUM_STATE' }, 'overlaps the right piece');
    assert.throws(() => c.add(100, 200, 0), { code: 'CARGO_ERR_CHECKSUM_STATE' }, 'inside a piece');
    assert.throws(() => c.add(5, 4, 0), { code: 'CARGO_ERR_CHECKSUM_STATE' });
    assert.equal(c.isComplete(1000), false);
    // A collector covering more than the file is not "complete" for that size either.
    const whole = new RangeSumCollector(alg);
    whole.add(0, 1000, 1);
    assert.equal(whole.isComplete(999), false);
    // Empty file: nothing added = complete, value of the empty input.
    assert.equal(new RangeSumCollector(alg).digestHex(0), hexOf(alg, new Uint8Array(0)));
  });

  test(`${alg}: a snapshot (resume checkpoint) restores and continues`, () => {
    const data = randomBytes(50_000);
    const ranges = shuffle(randomRanges(data.length, 12));
    const first = new RangeSumCollector(alg);
    const sum = (s: number, e: number): number =>
      alg === 'adler32' ? adler32(data.subarray(s, e)) : crc32c(data.subarray(s, e));
    for (const [s, e] of ranges.slice(0, 6)) first.add(s, e, sum(s, e));
    const restored = RangeSumCollector.restore(alg, JSON.parse(JSON.stringify(first.snapshot())));
    for (const [s, e] of ranges.slice(6)) restored.add(s, e, sum(s, e));
    assert.equal(restored.digestHex(data.length), hexOf(alg, data));
    assert.throws(() => RangeSumCollector.restore(alg, [[0, 10, 'nothex!!']]), { code: 'CARGO_ERR_CHECKSUM_STATE' });
  });
}

test('ContiguousPrefixHasher hashes only the contiguous prefix and buffers nothing', () => {
  const data = randomBytes(100_000);
  const h = new ContiguousPrefixHasher(createChecksummer('sha256'));
  assert.equal(h.offer(30_000, data.subarray(30_000, 40_000)), false, 'ahead of the prefix: skipped');
  assert.equal(h.hashedUpTo, 0);
  assert.equal(h.offer(0, data.subarray(0, 10_000)), true);
  assert.equal(h.hashedUpTo, 10_000);
  assert.equal(h.offer(5_000, data.subarray(5_000, 8_000)), false, 'entirely behind: ignored');
  assert.equal(h.offer(5_000, data.subarray(5_000, 20_000)), true, 'overlapping: only the new tail is hashed');
  assert.equal(h.hashedUpTo, 20_000);
  assert.equal(h.offer(20_000, data.subarray(20_000, 20_000)), false, 'empty chunk');
  // The 30k–40k chunk was not remembered: feeding the rest in order gives the right digest.
  h.offer(20_000, data.subarray(20_000));
  const whole = createChecksummer('sha256');
  whole.update(data);
  assert.equal(h.digestHex(), whole.digestHex());
});

for (const alg of ['md5', 'sha256', 'adler32'] as ChecksumAlg[]) {
  test(`${alg}: out-of-order ranges + re-read of the skipped part from the temp file give the file digest`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cargoport-checksum-'));
    try {
      const data = randomBytes(3 * 1024 * 1024 + 123);
      const path = join(dir, 'part');
      await writeFile(path, data); // what the engine's streams wrote, in whatever order
      const ranges = randomRanges(data.length, 8);
      const order = [ranges[0]!, ...shuffle(ranges.slice(1))];
      const h = new ContiguousPrefixHasher(createChecksummer(alg));
      for (const [s, e] of order) for (let p = s; p < e; p += 65_536) h.offer(p, data.subarray(p, Math.min(e, p + 65_536)));
      assert.ok(h.hashedUpTo >= ranges[0]![1], 'the first range, delivered first, was hashed on the fly');
      const handle = await open(path, 'r');
      try {
        // Two catch-ups racing each other and a late on-the-fly offer must not double-hash anything.
        const scratch = new Uint8Array(100_000);
        const a = h.hashFromFile(handle, data.length, scratch);
        const b = h.hashFromFile(handle, data.length);
        h.offer(h.hashedUpTo, data.subarray(h.hashedUpTo, h.hashedUpTo + 1000));
        await Promise.all([a, b]);
        assert.equal(h.hashedUpTo, data.length);
        await assert.rejects(h.hashFromFile(handle, data.length + 10), { code: 'CARGO_ERR_CHECKSUM_STATE' }, 'file too short');
      } finally {
        await handle.close();
      }
      const whole = createChecksummer(alg);
      whole.update(data);
      assert.equal(h.digestHex(), whole.digestHex());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
