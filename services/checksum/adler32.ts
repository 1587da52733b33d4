/**
 * Adler-32 (RFC 1950), incremental and allocation-free: the checksum WLCG storage (dCache, XRootD,
 * EOS, FTS) compares by default, so it runs on every byte the port moves.
 *
 * State is the 32-bit checksum itself (b << 16 | a); start from ADLER32_INITIAL (= 1).
 */
import { ChecksumStateError } from './checksum-errors.js';
import { LITTLE_ENDIAN, wordView } from './word-view.js';
import { nativeAdler32, NATIVE_SUM_MIN_BYTES } from './native-sums.js';

/** Largest prime below 2^16. */
const ADLER_MOD = 65521;
/**
 * Largest n such that 255·n·(n+1)/2 + (n+1)·(MOD−1) < 2^32: that many bytes can be summed before
 * `b` must be reduced, so the costly modulo runs once per 5552 bytes instead of once per byte.
 * (Intermediate `b` may pass 2^31; JS numbers hold it exactly.)
 */
const ADLER_NMAX = 5552;

export const ADLER32_INITIAL = 1;

/** Below this many bytes the word path's setup is not worth it. */
const WORD_PATH_MIN = 64;
/**
 * Words per block in the word path: 16-bit lanes summing 256 bytes each stay below 65 536
 * (255 · 256 = 65 280), so the packed lane sums can be taken apart exactly at the block's end.
 */
const WORDS_PER_BLOCK = 256;

/**
 * Feed `buf[start, end)` into a running Adler-32 and return the new state (unsigned 32-bit).
 * Pass ADLER32_INITIAL for the first call. No allocation in the steady state (see word-view.ts).
 */
export function adler32Update(state: number, buf: Uint8Array, start = 0, end = buf.length): number {
  if (nativeAdler32 !== undefined && end - start >= NATIVE_SUM_MIN_BYTES) return nativeAdler32(state, buf, start, end);
  return adler32UpdateJs(state, buf, start, end);
}

/** The pure-JS Adler-32: the fallback without the native addon, and the reference the tests compare it with. */
export function adler32UpdateJs(state: number, buf: Uint8Array, start = 0, end = buf.length): number {
  if (LITTLE_ENDIAN && end - start >= WORD_PATH_MIN) return adler32Words(state, buf, start, end);
  return adler32Bytes(state, buf, start, end);
}

/** Byte-at-a-time: short inputs, unaligned heads/tails, big-endian hosts. */
function adler32Bytes(state: number, buf: Uint8Array, start: number, end: number): number {
  let a = state & 0xffff;
  let b = state >>> 16;
  let i = start;
  while (i < end) {
    const runEnd = Math.min(end, i + ADLER_NMAX);
    // Unrolled by 16: the loop overhead and bounds checks dominate otherwise.
    const unrolledEnd = i + ((runEnd - i) & ~15);
    while (i < unrolledEnd) {
      a += buf[i]!; b += a;
      a += buf[i + 1]!; b += a;
      a += buf[i + 2]!; b += a;
      a += buf[i + 3]!; b += a;
      a += buf[i + 4]!; b += a;
      a += buf[i + 5]!; b += a;
      a += buf[i + 6]!; b += a;
      a += buf[i + 7]!; b += a;
      a += buf[i + 8]!; b += a;
      a += buf[i + 9]!; b += a;
      a += buf[i + 10]!; b += a;
      a += buf[i + 11]!; b += a;
      a += buf[i + 12]!; b += a;
      a += buf[i + 13]!; b += a;
      a += buf[i + 14]!; b += a;
      a += buf[i + 15]!; b += a;
      i += 16;
    }
    while (i < runEnd) {
      a += buf[i++]!;
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * Word path (little-endian): reads aligned 32-bit words, 4 per step, and splits each word into two
 * packed pairs of 16-bit lanes — y = d0 | d2<<16, z = d1 | d3<<16 — so one addition sums two bytes.
 *
 * For a block of n = 4m bytes following state (a, b):
 *   a' = a + Σd
 *   b' = b + n·a + Σ_k (n − k)·d_k
 *      = b + n·a + 4·Σ_j (running byte sum after word j) − Σ_j (d1 + 2·d2 + 3·d3)_j
 * where the last term comes from the lane sums: Σd1 + 3·Σd3 = lanes of Z, 2·Σd2 = high lane of Y.
 * Sums are reduced once per block of 1 KiB (the lane limit), which costs less than the loads saved.
 */
function adler32Words(state: number, buf: Uint8Array, start: number, end: number): number {
  let i = start;
  let a = state & 0xffff;
  let b = state >>> 16;
  // Unaligned head, byte by byte (at most 3 bytes).
  while (i < end && ((buf.byteOffset + i) & 3) !== 0) {
    a += buf[i++]!;
    b += a;
  }
  a %= ADLER_MOD;
  b %= ADLER_MOD;

  const words = wordView(buf, end);
  let k = (buf.byteOffset + i) >>> 2;
  const kFirst = k;
  const kEnd = k + (((end - i) >>> 2) & ~3); // whole groups of 4 words
  while (k < kEnd) {
    const blockEnd = Math.min(kEnd, k + WORDS_PER_BLOCK);
    const n = (blockEnd - k) * 4;
    let laneY = 0; // Σ(d0 | d2<<16)
    let laneZ = 0; // Σ(d1 | d3<<16)
    let sum = 0; // running byte sum within the block
    let weighted = 0; // Σ over words of the running byte sum after that word
    while (k < blockEnd) {
      const w0 = words[k]!;
      const w1 = words[k + 1]!;
      const w2 = words[k + 2]!;
      const w3 = words[k + 3]!;
      k += 4;
      const y0 = w0 & 0x00ff00ff, z0 = (w0 >>> 8) & 0x00ff00ff;
      const y1 = w1 & 0x00ff00ff, z1 = (w1 >>> 8) & 0x00ff00ff;
      const y2 = w2 & 0x00ff00ff, z2 = (w2 >>> 8) & 0x00ff00ff;
      const y3 = w3 & 0x00ff00ff, z3 = (w3 >>> 8) & 0x00ff00ff;
      laneY += y0 + y1 + y2 + y3;
      laneZ += z0 + z1 + z2 + z3;
      const x0 = y0 + z0, x1 = y1 + z1, x2 = y2 + z2, x3 = y3 + z3;
      const s0 = (x0 & 0xffff) + (x0 >>> 16);
      const s1 = (x1 & 0xffff) + (x1 >>> 16);
      const s2 = (x2 & 0xffff) + (x2 >>> 16);
      const s3 = (x3 & 0xffff) + (x3 >>> 16);
      weighted += 4 * sum + 4 * s0 + 3 * s1 + 2 * s2 + s3;
      sum += s0 + s1 + s2 + s3;
    }
    const positional = (laneZ & 0xffff) + 3 * (laneZ >>> 16) + 2 * (laneY >>> 16);
    b = (b + n * a + 4 * weighted - positional) % ADLER_MOD;
    a = (a + sum) % ADLER_MOD;
  }
  i += (k - kFirst) * 4;
  // Tail (< 16 bytes).
  return adler32Bytes(((b << 16) | a) >>> 0, buf, i, end);
}

/**
 * Adler-32 of the concatenation P‖Q from adler32(P) = `a`, adler32(Q) = `b` and Q's length `lenB`
 * (any safe integer). Lets ranges fetched in parallel be checksummed independently and joined.
 *
 * With a = 1 + ΣP, and Q starting from sum `aP` instead of 1, every one of Q's `lenB` prefix sums
 * grows by (aP − 1), so: A = aP + aQ − 1, B = bP + bQ + lenB·(aP − 1)   (all mod 65521).
 */
export function adler32Combine(a: number, b: number, lenB: number): number {
  if (!Number.isSafeInteger(lenB) || lenB < 0) throw new ChecksumStateError(`adler32Combine: bad length ${lenB}`);
  const lenMod = lenB % ADLER_MOD;
  const aP = a & 0xffff;
  const bP = a >>> 16;
  const aQ = b & 0xffff;
  const bQ = b >>> 16;
  // + ADLER_MOD keeps the operands non-negative before %, since JS % keeps the dividend's sign.
  const sumA = (aP + aQ + ADLER_MOD - 1) % ADLER_MOD;
  const sumB = (bP + bQ + lenMod * ((aP + ADLER_MOD - 1) % ADLER_MOD)) % ADLER_MOD;
  return ((sumB << 16) | sumA) >>> 0;
}

/** One-shot convenience (tests, small buffers). */
export function adler32(buf: Uint8Array): number {
  return adler32Update(ADLER32_INITIAL, buf);
}
