/**
 * The optional native Adler-32 / CRC-32C (native/sums, built by `npm ci` through native/build.mjs).
 *
 * Why: in JS these two sums cost about as much CPU per GiB as curl spends receiving and writing
 * that GiB, and the engine runs one of them on every byte. The native functions use AVX2 / SSSE3
 * and SSE4.2's crc32 instruction and are exported only when the CPU has them.
 *
 * When the addon is absent (no compiler at install time) or CARGOPORT_JS_SUMS=1 is set, the JS
 * implementations run instead: same results, more CPU. `nativeSumsStatus()` says which is in use,
 * so the worker can log it and CI can insist on the native path.
 */
import { createRequire } from 'node:module';

/** (state, buf, start, end) → new state, same contract as the JS update functions. */
export type NativeSumFn = (state: number, buf: Uint8Array, start: number, end: number) => number;

interface NativeSumsModule {
  adler32?: NativeSumFn;
  crc32c?: NativeSumFn;
  /** Which instruction set each sum uses, e.g. "adler32:avx2 crc32c:sse4.2". */
  paths: string;
}

/** Relative to dist/services/checksum/ (compiled) — the repository's native/ directory. */
const ADDON_PATH = '../../../native/sums/build/Release/cargoport_sums.node';

function load(): { mod?: NativeSumsModule; reason?: string } {
  if (process.env.CARGOPORT_JS_SUMS === '1') return { reason: 'CARGOPORT_JS_SUMS=1' };
  try {
    return { mod: createRequire(import.meta.url)(ADDON_PATH) as NativeSumsModule };
  } catch (err) {
    return { reason: `native/sums not loadable (${(err as Error).message.split('\n')[0]}); run npm ci with a C compiler` };
  }
}

const loaded = load();

export const nativeAdler32: NativeSumFn | undefined = loaded.mod?.adler32;
export const nativeCrc32c: NativeSumFn | undefined = loaded.mod?.crc32c;

/**
 * Crossing into C costs ~0.2 µs per call on this project's machines, about what the JS loop needs
 * for 64 bytes; from there up the native path wins (1.6× at 64 B, 7× at 16 KiB for adler32).
 */
export const NATIVE_SUM_MIN_BYTES = 64;

export interface NativeSumsStatus {
  adler32: boolean;
  crc32c: boolean;
  /** Instruction sets in use, or why the JS code runs. */
  detail: string;
}

export function nativeSumsStatus(): NativeSumsStatus {
  return {
    adler32: nativeAdler32 !== undefined,
    crc32c: nativeCrc32c !== undefined,
    detail: loaded.mod ? loaded.mod.paths : (loaded.reason ?? 'not loaded'),
  };
}
