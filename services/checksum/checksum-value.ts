/**
 * The project's one canonical form for checksum values: lowercase hex; adler32 and crc32c exactly
 * 8 digits (the form StoRM, davix and FTS compare against). Conversions to and from the binary
 * digest live here so header codecs and the checksummers agree byte for byte.
 */
import type { ChecksumAlg } from './checksum-types.js';

export const CHECKSUM_ALGS: readonly ChecksumAlg[] = ['adler32', 'crc32c', 'md5', 'sha256'];

/** Digest length in bytes per algorithm. */
export const DIGEST_BYTES: Readonly<Record<ChecksumAlg, number>> = { adler32: 4, crc32c: 4, md5: 16, sha256: 32 };

/** 8 lowercase hex digits of an unsigned 32-bit value. */
export function hex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/** True when `hex` is the canonical form for `alg`. */
export function isCanonicalChecksum(alg: ChecksumAlg, hex: string): boolean {
  return hex.length === DIGEST_BYTES[alg] * 2 && /^[0-9a-f]+$/.test(hex);
}

/** Canonical hex → binary digest (big-endian for the 32-bit sums, as RFC 9530 and the registry use). */
export function checksumHexToBytes(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}

/** Binary digest → canonical hex. */
export function checksumBytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
