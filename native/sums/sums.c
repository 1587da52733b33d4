/*
 * Native Adler-32 and CRC-32C for the byte path.
 *
 * Why: the engine checksums every byte it moves on the main thread. The JS implementations cost
 * ~0.84 (adler32) and ~1.0 (crc32c) CPU-seconds per GiB on this project's machines — as much as
 * curl spends receiving and writing the same GiB. The CPU's vector unit (AVX2 / SSSE3) and
 * SSE4.2's crc32 instruction do it for a few hundredths of that.
 *
 * Only hardware paths live here: a function is exported only when the running CPU has the
 * instructions it needs (checked once at load). Without them services/checksum keeps its JS code,
 * which stays the reference implementation the tests compare against.
 *
 * State conventions match the JS side exactly: adler32 takes and returns (b << 16 | a); crc32c takes
 * and returns the finished (post-inverted) CRC value, so states can be combined and passed around.
 */
#include <node_api.h>
#include <stdint.h>
#include <stddef.h>
#include <immintrin.h>
#include <stdio.h>

#define ADLER_MOD 65521u
/* Largest n with 255·n(n+1)/2 + (n+1)(MOD−1) < 2^32 (as in zlib): bytes summed before reducing. */
#define ADLER_NMAX 5552u

static uint32_t adler32_scalar(uint32_t state, const uint8_t *p, size_t len) {
  uint32_t a = state & 0xffff, b = state >> 16;
  while (len > 0) {
    size_t n = len < ADLER_NMAX ? len : ADLER_NMAX;
    len -= n;
    while (n--) {
      a += *p++;
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  return (b << 16) | a;
}

/* Sum of the eight 32-bit lanes, widened so the caller's arithmetic cannot wrap. */
__attribute__((target("avx2"))) static uint64_t lanes_sum_avx2(__m256i v) {
  uint32_t l[8];
  _mm256_storeu_si256((__m256i *)l, v);
  return (uint64_t)l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}

/*
 * 32 bytes d0..d31 fed from state (a, b) give a' = a + Σd and b' = b + 32a + Σ(32−i)·di.
 * Over k chunks the 32a terms add up to 32·(k·a0 + Σ over chunks of the bytes before it), so the
 * loop keeps three vectors: the running byte sum (vs1), the sum of vs1 before each chunk (vs1_prefix)
 * and the weighted sums (vs2, via maddubs with weights 32..1 then madd with 1s). Reduction mod 65521
 * happens once per NMAX bytes, as in the scalar code.
 */
__attribute__((target("avx2"))) static uint32_t adler32_avx2(uint32_t state, const uint8_t *p, size_t len) {
  uint32_t a = state & 0xffff, b = state >> 16;
  const __m256i weights = _mm256_setr_epi8(32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                           16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i zero = _mm256_setzero_si256();
  while (len >= 32) {
    size_t chunks = len / 32;
    if (chunks > ADLER_NMAX / 32) chunks = ADLER_NMAX / 32;
    len -= chunks * 32;
    uint64_t b64 = b + (uint64_t)chunks * 32 * a;
    __m256i vs1 = zero, vs1_prefix = zero, vs2 = zero;
    for (size_t k = 0; k < chunks; k++, p += 32) {
      const __m256i d = _mm256_loadu_si256((const __m256i *)p);
      vs1_prefix = _mm256_add_epi32(vs1_prefix, vs1);
      vs1 = _mm256_add_epi32(vs1, _mm256_sad_epu8(d, zero));
      vs2 = _mm256_add_epi32(vs2, _mm256_madd_epi16(_mm256_maddubs_epi16(d, weights), ones16));
    }
    b64 += 32 * lanes_sum_avx2(vs1_prefix) + lanes_sum_avx2(vs2);
    a = (uint32_t)((a + lanes_sum_avx2(vs1)) % ADLER_MOD);
    b = (uint32_t)(b64 % ADLER_MOD);
  }
  return len > 0 ? adler32_scalar((b << 16) | a, p, len) : (b << 16) | a;
}

/* Same scheme with 16-byte vectors, for CPUs with SSSE3 but no AVX2. */
__attribute__((target("ssse3"))) static uint32_t adler32_ssse3(uint32_t state, const uint8_t *p, size_t len) {
  uint32_t a = state & 0xffff, b = state >> 16;
  const __m128i weights = _mm_setr_epi8(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
  const __m128i ones16 = _mm_set1_epi16(1);
  const __m128i zero = _mm_setzero_si128();
  while (len >= 16) {
    size_t chunks = len / 16;
    if (chunks > ADLER_NMAX / 16) chunks = ADLER_NMAX / 16;
    len -= chunks * 16;
    uint64_t b64 = b + (uint64_t)chunks * 16 * a;
    __m128i vs1 = zero, vs1_prefix = zero, vs2 = zero;
    for (size_t k = 0; k < chunks; k++, p += 16) {
      const __m128i d = _mm_loadu_si128((const __m128i *)p);
      vs1_prefix = _mm_add_epi32(vs1_prefix, vs1);
      vs1 = _mm_add_epi32(vs1, _mm_sad_epu8(d, zero));
      vs2 = _mm_add_epi32(vs2, _mm_madd_epi16(_mm_maddubs_epi16(d, weights), ones16));
    }
    uint32_t l1[4], lp[4], l2[4];
    _mm_storeu_si128((__m128i *)l1, vs1);
    _mm_storeu_si128((__m128i *)lp, vs1_prefix);
    _mm_storeu_si128((__m128i *)l2, vs2);
    b64 += 16 * ((uint64_t)lp[0] + lp[1] + lp[2] + lp[3]) + ((uint64_t)l2[0] + l2[1] + l2[2] + l2[3]);
    a = (uint32_t)((a + (uint64_t)l1[0] + l1[1] + l1[2] + l1[3]) % ADLER_MOD);
    b = (uint32_t)(b64 % ADLER_MOD);
  }
  return len > 0 ? adler32_scalar((b << 16) | a, p, len) : (b << 16) | a;
}

/* SSE4.2 crc32 instruction (it computes exactly CRC-32C), 8 bytes per step. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c = (uint32_t)~crc;
  while (len > 0 && ((uintptr_t)p & 7) != 0) {
    c = _mm_crc32_u8((uint32_t)c, *p++);
    len--;
  }
  while (len >= 8) {
    uint64_t w;
    __builtin_memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    len -= 8;
  }
  while (len-- > 0) c = _mm_crc32_u8((uint32_t)c, *p++);
  return ~(uint32_t)c;
}

typedef uint32_t (*sum_fn)(uint32_t, const uint8_t *, size_t);

/*
 * JS signature: fn(state: number, buf: Uint8Array, start: number, end: number) => number.
 * The caller (services/checksum/native-sums.ts) has already checked 0 <= start <= end <= length.
 */
static napi_value call_sum(napi_env env, napi_callback_info info, sum_fn fn) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "expected (state, buf, start, end)");
    return NULL;
  }
  uint32_t state, start, end;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_value_uint32(env, argv[0], &state) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || napi_get_value_uint32(env, argv[2], &start) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &end) != napi_ok || start > end || end > length) {
    napi_throw_type_error(env, NULL, "expected (uint32 state, Uint8Array buf, start <= end <= buf.length)");
    return NULL;
  }
  napi_value out;
  napi_create_uint32(env, fn(state, (const uint8_t *)data + start, end - start), &out);
  return out;
}

static sum_fn adler32_impl;
static napi_value js_adler32(napi_env env, napi_callback_info info) { return call_sum(env, info, adler32_impl); }
static napi_value js_crc32c(napi_env env, napi_callback_info info) { return call_sum(env, info, crc32c_sse42); }

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static napi_value init(napi_env env, napi_value exports) {
  __builtin_cpu_init();
  const char *adler_path = "none";
  if (__builtin_cpu_supports("avx2")) {
    adler32_impl = adler32_avx2;
    adler_path = "avx2";
  } else if (__builtin_cpu_supports("ssse3")) {
    adler32_impl = adler32_ssse3;
    adler_path = "ssse3";
  }
  if (adler32_impl) export_fn(env, exports, "adler32", js_adler32);
  const int has_crc = __builtin_cpu_supports("sse4.2");
  if (has_crc) export_fn(env, exports, "crc32c", js_crc32c);
  napi_value desc;
  char text[64];
  snprintf(text, sizeof text, "adler32:%s crc32c:%s", adler_path, has_crc ? "sse4.2" : "none");
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &desc);
  napi_set_named_property(env, exports, "paths", desc);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
