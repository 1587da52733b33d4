/**
 * The native Adler-32 / CRC-32C (native/sums) against the JS implementations and the textbook
 * definitions: every alignment, lengths around the vector widths and the 5552-byte reduction
 * boundary, worst-case bytes, arbitrary incoming states, and argument checks that keep C from
 * reading outside the buffer. CI must run the native path (the engine's CPU budget depends on it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { adler32Update, adler32UpdateJs, ADLER32_INITIAL } from '../../services/checksum/adler32.js';
import { crc32cUpdate, crc32cUpdateJs, CRC32C_INITIAL } from '../../services/checksum/crc32c.js';
import { nativeAdler32, nativeCrc32c, nativeSumsStatus } from '../../services/checksum/native-sums.js';

function naiveAdler32(state: number, buf: Uint8Array): number {
  let a = state & 0xffff;
  let b = state >>> 16;
  for (const d of buf) {
    a = (a + d) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}
function naiveCrc32c(crc: number, buf: Uint8Array): number {
  let c = ~crc >>> 0;
  for (const d of buf) {
    c ^= d;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

const status = nativeSumsStatus();
const skipReason = status.adler32 && status.crc32c ? false : `native sums not in use: ${status.detail}`;

test('CI runs the native checksums', { skip: process.env.CI === 'true' ? false : 'only enforced under CI=true' }, () => {
  assert.ok(status.adler32 && status.crc32c, `native/sums must load in CI: ${status.detail}`);
});

test('native, JS and textbook sums agree at every alignment, around every block boundary', { skip: skipReason }, () => {
  const random = randomBytes(3 * 5552 + 64);
  const ff = new Uint8Array(random.length).fill(0xff);
  const lengths = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 5535, 5536, 5537, 5551, 5552, 5553, 11104, 11105, 3 * 5552];
  // Incoming states: the initial ones, and ones with both Adler halves at their maximum (65520).
  const adlerStates = [ADLER32_INITIAL, 0xfff0fff0, 0x12345678 % 65521];
  const crcStates = [CRC32C_INITIAL, 0xffffffff, 0x89abcdef];
  for (const source of [random, ff]) {
    for (let offset = 0; offset < 33; offset += offset < 8 ? 1 : 8) {
      for (const len of lengths) {
        const view = source.subarray(offset, offset + len);
        const msg = `offset=${offset} len=${len} ${source === ff ? '0xff' : 'random'}`;
        for (const s of adlerStates) {
          const want = naiveAdler32(s, view);
          assert.equal(nativeAdler32!(s, view, 0, view.length), want, `native adler32 ${msg} state=${s}`);
          assert.equal(adler32UpdateJs(s, view), want, `JS adler32 ${msg} state=${s}`);
          assert.equal(adler32Update(s, view), want, `adler32Update ${msg} state=${s}`);
        }
        for (const s of crcStates) {
          const want = naiveCrc32c(s, view);
          assert.equal(nativeCrc32c!(s, view, 0, view.length), want, `native crc32c ${msg} state=${s}`);
          assert.equal(crc32cUpdateJs(s, view), want, `JS crc32c ${msg} state=${s}`);
          assert.equal(crc32cUpdate(s, view), want, `crc32cUpdate ${msg} state=${s}`);
        }
      }
    }
  }
});

test('native sums of a multi-MiB buffer equal the JS ones, and start/end select the bytes', { skip: skipReason }, () => {
  const data = randomBytes(8 * 1024 * 1024 + 13);
  assert.equal(nativeAdler32!(ADLER32_INITIAL, data, 0, data.length), adler32UpdateJs(ADLER32_INITIAL, data));
  assert.equal(nativeCrc32c!(CRC32C_INITIAL, data, 0, data.length), crc32cUpdateJs(CRC32C_INITIAL, data));
  assert.equal(nativeAdler32!(ADLER32_INITIAL, data, 1000, 900_001), adler32UpdateJs(ADLER32_INITIAL, data.subarray(1000, 900_001)));
  assert.equal(nativeCrc32c!(CRC32C_INITIAL, data, 7, 70_007), crc32cUpdateJs(CRC32C_INITIAL, data.subarray(7, 70_007)));
});

test('native sums refuse arguments that would read outside the buffer', { skip: skipReason }, () => {
  const buf = new Uint8Array(100);
  for (const fn of [nativeAdler32!, nativeCrc32c!]) {
    assert.throws(() => fn(1, buf, 0, 101), TypeError);
    assert.throws(() => fn(1, buf, 50, 49), TypeError);
    assert.throws(() => fn(1, buf, -1, 10), TypeError);
    assert.throws(() => fn(1, new Uint16Array(10) as unknown as Uint8Array, 0, 10), TypeError);
    assert.throws(() => (fn as unknown as (...a: unknown[]) => number)(1, buf), TypeError);
  }
});
