/**
 * The user-facing checksum notation `alg:value` (FTS submission `"checksum": "ADLER32:03da0195"`,
 * our REST API, the CLI). Algorithm names are case-insensitive; the value is optional (`ADLER32`
 * or `adler32:` = "compute adler32, nothing to compare against yet").
 */
import type { ChecksumAlg, ExpectedChecksum } from './checksum-types.js';
import { DIGEST_BYTES } from './checksum-value.js';
import { BadChecksumError } from './checksum-errors.js';

const ALG_NAMES: Readonly<Record<string, ChecksumAlg>> = {
  adler32: 'adler32',
  crc32c: 'crc32c',
  md5: 'md5',
  sha256: 'sha256',
  'sha-256': 'sha256',
};

/** Algorithm from a user-supplied name (ADLER32, crc32c, MD5, SHA256, SHA-256…), or undefined. */
export function checksumAlgFromName(name: string): ChecksumAlg | undefined {
  return Object.hasOwn(ALG_NAMES, name.toLowerCase()) ? ALG_NAMES[name.toLowerCase()] : undefined;
}

/**
 * Validate and canonicalise a hex value: adler32/crc32c accept 1–8 hex digits (leading zeros are
 * optional in the IANA registry) and are left-padded to 8; md5/sha256 need their full length.
 * Output is lowercase. Throws BadChecksumError naming `field`.
 */
export function normaliseChecksumHex(alg: ChecksumAlg, value: string, field: string): string {
  const digits = DIGEST_BYTES[alg] * 2;
  if (!/^[0-9a-fA-F]+$/.test(value)) {
    throw new BadChecksumError(`${alg} checksum value must be hexadecimal, got ${JSON.stringify(value)}`, field);
  }
  const short = alg === 'adler32' || alg === 'crc32c';
  if (short ? value.length > digits : value.length !== digits) {
    const want = short ? `1–${digits}` : String(digits);
    throw new BadChecksumError(`${alg} checksum value must have ${want} hex digits, got ${value.length}`, field);
  }
  return value.toLowerCase().padStart(digits, '0');
}

/**
 * Parse `alg[:value]` into the engine's ExpectedChecksum. Surrounding whitespace is tolerated;
 * anything else unusual (unknown algorithm, non-hex or wrong-length value, extra colons) is a 400.
 */
export function parseChecksumSpec(input: string, field: string): ExpectedChecksum {
  if (typeof input !== 'string') throw new BadChecksumError('checksum must be a string like "adler32:03da0195"', field);
  const text = input.trim();
  const colon = text.indexOf(':');
  const name = colon === -1 ? text : text.slice(0, colon).trim();
  const rawValue = colon === -1 ? '' : text.slice(colon + 1).trim();
  if (name === '') throw new BadChecksumError('checksum algorithm missing (expected e.g. "adler32:03da0195")', field);
  const alg = checksumAlgFromName(name);
  if (!alg) {
    throw new BadChecksumError(
      `unsupported checksum algorithm ${JSON.stringify(name)} (supported: adler32, crc32c, md5, sha256)`,
      field,
    );
  }
  if (rawValue === '') return { alg };
  return { alg, value: normaliseChecksumHex(alg, rawValue, field) };
}

/** Canonical `alg:value` (or bare `alg`) — what we store and show. */
export function formatChecksumSpec(c: ExpectedChecksum): string {
  return c.value === undefined ? c.alg : `${c.alg}:${c.value}`;
}
