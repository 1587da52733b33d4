/**
 * The checksum algorithms themselves: published vectors, an independent oracle (zlib's adler32
 * trailer), incremental = one-shot on random splits, and the combine identities that multi-range
 * transfers depend on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { adler32, adler32Combine, adler32Update, ADLER32_INITIAL } from '../../services/checksum/adler32.js';
import { crc32c, crc32cCombine, crc32cUpdate, CRC32C_INITIAL } from '../../services/checksum/crc32c.js';
import { createChecksummer, MultiChecksummer } from '../../services/checksum/checksummer.js';
import type { ChecksumAlg } from '../../services/transfer/types.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Small deterministic PRNG so a failure can be replayed from the printed seed. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** zlib streams end with the big-endian Adler-32 of the uncompressed data (RFC 1950). */
function zlibAdler32(buf: Uint8Array): number {
  const z = deflateSync(buf, { level: 1 });
  return z.readUInt32BE(z.length - 4);
}

/** Textbook definitions, one byte and one bit at a time: slow, obviously right, independent oracles. */
function naiveAdler32(buf: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (const d of buf) {
    a = (a + d) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}
function naiveCrc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const d of buf) {
    c ^= d;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('fast paths (aligned word loads, unrolled blocks) agree with the textbook definitions at every alignment', () => {
  const backing = randomBytes(5000 + 16);
  const ff = new Uint8Array(5000 + 16).fill(0xff);
  for (const source of [backing, ff]) {
    for (let offset = 0; offset < 8; offset++) {
      for (const len of [0, 1, 7, 8, 15, 16, 63, 64, 65, 67, 1023, 1024, 1025, 1031, 4096 + 4, 4099, 5000]) {
        const view = source.subarray(offset, offset + len);
        const msg = `offset=${offset} len=${len} ${source === ff ? '0xff' : 'random'}`;
        assert.equal(adler32(view), naiveAdler32(view), `adler32 ${msg}`);
        assert.equal(crc32c(view), naiveCrc32c(view), `crc32c ${msg}`);
      }
    }
  }
  // Views into a shared ArrayBuffer (Node's Buffer pool) and a SharedArrayBuffer.
  const pooled = Buffer.from('x'.repeat(3) + 'The quick brown fox jumps over the lazy dog, again and again.'.repeat(3));
  assert.equal(adler32(pooled.subarray(3)), naiveAdler32(pooled.subarray(3)));
  assert.equal(crc32c(pooled.subarray(3)), naiveCrc32c(pooled.subarray(3)));
  const shared = new Uint8Array(new SharedArrayBuffer(3000), 1, 2500);
  shared.set(backing.subarray(0, 2500));
  assert.equal(adler32(shared), naiveAdler32(backing.subarray(0, 2500)));
  assert.equal(crc32c(shared), naiveCrc32c(backing.subarray(0, 2500)));
});

test('adler32 known vectors', () => {
  assert.equal(adler32(ascii('Wikipedia')), 0x11e60398);
  assert.equal(adler32(ascii('Wiki')), 0x03da0195);
  assert.equal(adler32(new Uint8Array(0)), 1);
  assert.equal(adler32(ascii('a')), 0x00620062);
  assert.equal(adler32(ascii('abc')), 0x024d0127);
});

test('adler32 matches zlib on sizes around the 5552-byte reduction boundary and worst-case bytes', () => {
  for (const n of [1, 15, 16, 17, 5551, 5552, 5553, 11104, 11105, 100_000, 1 << 20]) {
    const data = randomBytes(n);
    assert.equal(adler32(data), zlibAdler32(data), `random n=${n}`);
    // All 0xff maximises both sums: the case where an unreduced sum could overflow.
    const ff = new Uint8Array(n).fill(0xff);
    assert.equal(adler32(ff), zlibAdler32(ff), `0xff n=${n}`);
  }
});

test('adler32 honours start/end and ignores bytes outside them', () => {
  const data = randomBytes(10_000);
  assert.equal(adler32Update(ADLER32_INITIAL, data, 100, 9000), adler32(data.subarray(100, 9000)));
});

test('crc32c known vectors (RFC 3720 B.4 and the "123456789" check value)', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('crc32c honours start/end on unaligned offsets', () => {
  const data = randomBytes(1000);
  for (const [s, e] of [[0, 1000], [1, 999], [3, 11], [7, 8], [5, 5]] as const) {
    assert.equal(crc32cUpdate(CRC32C_INITIAL, data, s, e), crc32c(data.subarray(s, e)), `[${s}, ${e})`);
  }
});

test('incremental = one-shot for every algorithm on random splits', () => {
  const seed = Date.now() >>> 0;
  const rnd = prng(seed);
  const data = randomBytes(300_000);
  for (const alg of ['adler32', 'crc32c', 'md5', 'sha256'] as ChecksumAlg[]) {
    const whole = createChecksummer(alg);
    whole.update(data);
    const expected = whole.digestHex();
    for (let round = 0; round < 5; round++) {
      const pieces = createChecksummer(alg);
      let pos = 0;
      while (pos < data.length) {
        const len = Math.min(data.length - pos, rnd(20_000));
        pieces.update(data.subarray(pos, pos + len));
        pos += len;
      }
      assert.equal(pieces.digestHex(), expected, `${alg} seed=${seed} round=${round}`);
    }
  }
});

test('adler32Combine / crc32cCombine equal the checksum of the concatenation on random splits', () => {
  const seed = (Date.now() ^ 0x5bd1e995) >>> 0;
  const rnd = prng(seed);
  for (let round = 0; round < 200; round++) {
    const data = randomBytes(1 + rnd(70_000));
    const cut = rnd(data.length + 1);
    const p = data.subarray(0, cut);
    const q = data.subarray(cut);
    const msg = `seed=${seed} round=${round} len=${data.length} cut=${cut}`;
    assert.equal(adler32Combine(adler32(p), adler32(q), q.length), adler32(data), `adler32 ${msg}`);
    assert.equal(crc32cCombine(crc32c(p), crc32c(q), q.length), crc32c(data), `crc32c ${msg}`);
  }
});

test('combine handles empty pieces and multi-gigabyte lengths consistently', () => {
  const data = randomBytes(1000);
  assert.equal(adler32Combine(adler32(data), 1, 0), adler32(data));
  assert.equal(adler32Combine(1, adler32(data), data.length), adler32(data));
  assert.equal(crc32cCombine(crc32c(data), 0, 0), crc32c(data));
  assert.equal(crc32cCombine(0, crc32c(data), data.length), crc32c(data));
  // Associativity with huge lengths (zero-filled pieces have a checksum we can compose cheaply):
  // (A‖Z1)‖Z2 = A‖(Z1‖Z2) where Z are 3 GiB of zeros — exercises lengths beyond 2^31.
  const big = 3 * 2 ** 30;
  const zAdler = (len: number): number => (((len % 65521) << 16) | 1) >>> 0; // adler32 of len zero bytes
  assert.equal(zAdler(5000), adler32(new Uint8Array(5000)));
  const left = adler32Combine(adler32Combine(adler32(data), zAdler(big), big), zAdler(big), big);
  const right = adler32Combine(adler32(data), adler32Combine(zAdler(big), zAdler(big), big), 2 * big);
  assert.equal(left, right);
  // …and one step over 4 GiB + 5 equals four 1 GiB steps and a 5-byte one.
  let adlerSteps = adler32(data);
  for (let k = 0; k < 4; k++) adlerSteps = adler32Combine(adlerSteps, zAdler(2 ** 30), 2 ** 30);
  adlerSteps = adler32Combine(adlerSteps, zAdler(5), 5);
  assert.equal(adler32Combine(adler32(data), zAdler(4 * 2 ** 30 + 5), 4 * 2 ** 30 + 5), adlerSteps);
  const zCrc1 = crc32c(new Uint8Array(4096));
  // crc of 4096·k zeros built by combining, compared two ways.
  let zCrcBig = zCrc1;
  for (let k = 1; k < 8; k++) zCrcBig = crc32cCombine(zCrcBig, zCrc1, 4096);
  assert.equal(zCrcBig, crc32c(new Uint8Array(8 * 4096)));
  const l2 = crc32cCombine(crc32cCombine(crc32c(data), zCrcBig, 8 * 4096), zCrcBig, 8 * 4096);
  const r2 = crc32cCombine(crc32c(data), crc32cCombine(zCrcBig, zCrcBig, 8 * 4096), 16 * 4096);
  assert.equal(l2, r2);
  // One combine step over a length past 2^32 must equal many steps over lengths below 2^31 (where
  // any 32-bit truncation of the length in crc32cCombine would go unnoticed, since it is consistent).
  const zerosGiB = (() => {
    let z = crc32c(new Uint8Array(1 << 20)); // crc32c of 1 MiB of zeros
    for (let len = 1 << 20; len < 2 ** 30; len *= 2) z = crc32cCombine(z, z, len);
    return z; // crc32c of 1 GiB of zeros
  })();
  const big5 = 4 * 2 ** 30 + 5; // 4 GiB + 5 bytes
  let stepwise = crc32c(data);
  let zerosBig = 0; // crc32c of the big run of zeros, built from small steps too
  for (let k = 0; k < 4; k++) {
    stepwise = crc32cCombine(stepwise, zerosGiB, 2 ** 30);
    zerosBig = crc32cCombine(zerosBig, zerosGiB, 2 ** 30);
  }
  stepwise = crc32cCombine(stepwise, crc32c(new Uint8Array(5)), 5);
  zerosBig = crc32cCombine(zerosBig, crc32c(new Uint8Array(5)), 5);
  assert.equal(crc32cCombine(crc32c(data), zerosBig, big5), stepwise);
  assert.throws(() => crc32cCombine(0, 0, -1), { code: 'CARGO_ERR_CHECKSUM_STATE' });
  assert.throws(() => adler32Combine(0, 0, 1.5), { code: 'CARGO_ERR_CHECKSUM_STATE' });
});

test('md5 / sha256 standard vectors through the Checksummer interface', () => {
  const vectors: Array<[ChecksumAlg, string, string]> = [
    ['md5', '', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['md5', 'abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['md5', 'The quick brown fox jumps over the lazy dog', '9e107d9d372bb6826bd81d3542a419d6'],
    ['sha256', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['sha256', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'sha256',
      'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    ],
  ];
  for (const [alg, input, hex] of vectors) {
    const c = createChecksummer(alg);
    c.update(ascii(input));
    assert.equal(c.digestHex(), hex, `${alg}(${JSON.stringify(input)})`);
    assert.equal(c.digestHex(), hex, 'digestHex is repeatable');
    assert.throws(() => c.update(ascii('x')), { code: 'CARGO_ERR_CHECKSUM_STATE' });
  }
});

test('32-bit sums are always 8 lowercase hex digits', () => {
  const a = createChecksummer('adler32');
  a.update(ascii('Wiki'));
  assert.equal(a.digestHex(), '03da0195');
  const c = createChecksummer('crc32c');
  assert.equal(c.digestHex(), '00000000');
  c.update(ascii('123456789'));
  assert.equal(c.digestHex(), 'e3069283');
});

test('MultiChecksummer computes every requested algorithm from one pass', () => {
  const data = randomBytes(123_457);
  const multi = new MultiChecksummer(['sha256', 'adler32', 'crc32c', 'md5', 'adler32']);
  assert.deepEqual(multi.algs, ['sha256', 'adler32', 'crc32c', 'md5']);
  for (let pos = 0; pos < data.length; pos += 10_000) multi.update(data.subarray(pos, pos + 10_000));
  assert.deepEqual(multi.digests(), {
    sha256: createHash('sha256').update(data).digest('hex'),
    md5: createHash('md5').update(data).digest('hex'),
    adler32: zlibAdler32(data).toString(16).padStart(8, '0'),
    crc32c: crc32c(data).toString(16).padStart(8, '0'),
  });
  const onlyAdler = new MultiChecksummer(['adler32']);
  assert.throws(() => onlyAdler.digestHex('md5'), { code: 'CARGO_ERR_CHECKSUM_STATE' });
});
