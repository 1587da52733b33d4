/**
 * HTTP digest header codecs, both generations:
 *  - RFC 3230 `Want-Digest` / `Digest` — what davix, gfal2 and FTS use, so `Digest: adler32=<hex>` is
 *    mandatory for FTS checksum verification. Values: adler32/crc32c hex, md5/sha-256 base64.
 *  - RFC 9530 `Want-Repr-Digest` / `Repr-Digest` — Structured-Field dictionaries whose values are
 *    byte sequences (`adler=:A9oBlQ==:`; the key is `adler`, not `adler32`).
 * Everything returned is in the project's canonical form (lowercase hex, 32-bit sums 8 digits).
 */
import type { ChecksumAlg } from './checksum-types.js';
import { CHECKSUM_ALGS, DIGEST_BYTES, checksumHexToBytes, checksumBytesToHex, isCanonicalChecksum } from './checksum-value.js';
import { normaliseChecksumHex } from './checksum-spec.js';
import { BadChecksumError, ChecksumStateError } from './checksum-errors.js';
import { decodeBase64Strict, parseSfDictionary, SfParseError, type SfDictionary } from './structured-field.js';

/** A request or response header as node:http / undici hand it over. */
export type HeaderValue = string | readonly string[] | undefined;

/** One acceptable algorithm: `weight` is the q-value (RFC 3230, 0–1) or preference (RFC 9530, 1–10). */
export interface WantedDigest {
  alg: ChecksumAlg;
  weight: number;
}

export type DigestValues = Partial<Record<ChecksumAlg, string>>;

function joinHeader(h: HeaderValue): string {
  if (h === undefined) return '';
  return typeof h === 'string' ? h : h.join(',');
}

// ---- RFC 3230 -------------------------------------------------------------------------------------

/** RFC 3230 / IANA names (matched case-insensitively); `sha256` accepted as a common misspelling. */
const RFC3230_NAMES: Readonly<Record<string, ChecksumAlg>> = {
  adler32: 'adler32',
  crc32c: 'crc32c',
  md5: 'md5',
  'sha-256': 'sha256',
  sha256: 'sha256',
};
const RFC3230_EMIT: Readonly<Record<ChecksumAlg, string>> = {
  adler32: 'adler32',
  crc32c: 'crc32c',
  md5: 'md5',
  sha256: 'sha-256',
};

function rfc3230Alg(name: string): ChecksumAlg | undefined {
  const key = name.trim().toLowerCase();
  return Object.hasOwn(RFC3230_NAMES, key) ? RFC3230_NAMES[key] : undefined;
}

/** RFC 9110 qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Parse `Want-Digest` (e.g. `adler32;q=0.5, MD5`). Unknown algorithms, entries with a malformed
 * q-value and q=0 ("not acceptable") are dropped. Result: highest weight first, header order kept
 * among equals; an algorithm listed twice keeps its first entry.
 */
export function parseWantDigest(header: HeaderValue): WantedDigest[] {
  const out: WantedDigest[] = [];
  for (const entry of joinHeader(header).split(',')) {
    const [namePart, ...paramParts] = entry.split(';');
    const alg = rfc3230Alg(namePart ?? '');
    if (!alg || out.some((w) => w.alg === alg)) continue;
    let weight = 1;
    let malformed = false;
    for (const param of paramParts) {
      const eq = param.indexOf('=');
      const pname = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase();
      if (pname !== 'q') continue; // other parameters carry no meaning for us
      const qtext = eq === -1 ? '' : param.slice(eq + 1).trim();
      if (!QVALUE.test(qtext)) malformed = true;
      else weight = Number(qtext);
    }
    if (malformed || weight === 0) continue;
    out.push({ alg, weight });
  }
  return stableSortByWeight(out);
}

function stableSortByWeight(list: WantedDigest[]): WantedDigest[] {
  return list.map((w, i) => ({ w, i })).sort((x, y) => y.w.weight - x.w.weight || x.i - y.i).map((x) => x.w);
}

/**
 * Choose the algorithm to answer with: the client's highest weight among those we can produce;
 * among equal weights, the first in `available` (the server's preference, e.g. a checksum it
 * already has stored). Undefined when nothing acceptable overlaps.
 */
function pickWanted(wanted: WantedDigest[], available: readonly ChecksumAlg[]): ChecksumAlg | undefined {
  let best: WantedDigest | undefined;
  let bestRank = Infinity;
  for (const w of wanted) {
    const rank = available.indexOf(w.alg);
    if (rank === -1) continue;
    if (!best || w.weight > best.weight || (w.weight === best.weight && rank < bestRank)) {
      best = w;
      bestRank = rank;
    }
  }
  return best?.alg;
}

export function pickWantDigest(header: HeaderValue, available: readonly ChecksumAlg[] = CHECKSUM_ALGS): ChecksumAlg | undefined {
  return pickWanted(parseWantDigest(header), available);
}

function assertCanonical(alg: ChecksumAlg, hex: string): void {
  if (!isCanonicalChecksum(alg, hex)) throw new ChecksumStateError(`${alg} value ${JSON.stringify(hex)} is not canonical hex`);
}

/**
 * Format the value of a `Digest` header from canonical values: `adler32=03da0195`,
 * `crc32c=e3069283`, `md5=<base64>`, `sha-256=<base64>`, several joined by ", ".
 */
export function formatDigest(values: DigestValues): string {
  const parts: string[] = [];
  for (const alg of CHECKSUM_ALGS) {
    const hex = values[alg];
    if (hex === undefined) continue;
    assertCanonical(alg, hex);
    const encoded = alg === 'adler32' || alg === 'crc32c' ? hex : checksumHexToBytes(hex).toString('base64');
    parts.push(`${RFC3230_EMIT[alg]}=${encoded}`);
  }
  return parts.join(', ');
}

/**
 * Parse a `Digest` header leniently into canonical values: any case for names and hex, adler32 /
 * crc32c with 1–8 digits, md5 / sha-256 as base64 (the RFC) or as hex (seen in the wild — the two
 * are told apart by length). Unknown algorithms are ignored; a known algorithm with an unusable
 * value, or two different values for one algorithm, is a BadChecksumError naming `field`.
 */
export function parseDigest(header: HeaderValue, field = 'Digest'): DigestValues {
  const out: DigestValues = {};
  for (const entry of joinHeader(header).split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const alg = rfc3230Alg(eq === -1 ? entry : entry.slice(0, eq));
    if (!alg) continue;
    if (eq === -1) throw new BadChecksumError(`${field}: ${alg} has no value`, field);
    const hex = decodeRfc3230Value(alg, entry.slice(eq + 1).trim(), field);
    const previous = out[alg];
    if (previous !== undefined && previous !== hex) throw new BadChecksumError(`${field}: conflicting ${alg} values`, field);
    out[alg] = hex;
  }
  return out;
}

function decodeRfc3230Value(alg: ChecksumAlg, value: string, field: string): string {
  if (alg === 'adler32' || alg === 'crc32c') return normaliseChecksumHex(alg, value, field);
  const bytes = DIGEST_BYTES[alg];
  if (value.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(value)) return value.toLowerCase();
  const decoded = decodeBase64Strict(value);
  if (!decoded || decoded.length !== bytes) {
    throw new BadChecksumError(`${field}: ${alg} value must be base64 of ${bytes} bytes`, field);
  }
  return checksumBytesToHex(decoded);
}

// ---- RFC 9530 -------------------------------------------------------------------------------------

/** RFC 9530 registry keys we can produce (`adler`, not `adler32`). */
const RFC9530_KEYS: Readonly<Record<string, ChecksumAlg>> = {
  adler: 'adler32',
  crc32c: 'crc32c',
  md5: 'md5',
  'sha-256': 'sha256',
};
const RFC9530_EMIT: Readonly<Record<ChecksumAlg, string>> = {
  adler32: 'adler',
  crc32c: 'crc32c',
  md5: 'md5',
  sha256: 'sha-256',
};

function rfc9530Alg(key: string): ChecksumAlg | undefined {
  return Object.hasOwn(RFC9530_KEYS, key) ? RFC9530_KEYS[key] : undefined;
}

/**
 * Parse `Want-Repr-Digest` (e.g. `adler=3, sha-256=9`). Members whose value is not an integer in
 * 0–10 are ignored, 0 means "not wanted"; a field that is not a valid SF dictionary is ignored as a
 * whole (RFC 8941 §4.2), giving []. Highest preference first.
 */
export function parseWantReprDigest(header: HeaderValue): WantedDigest[] {
  if (header === undefined) return [];
  let dict: SfDictionary;
  try {
    dict = parseSfDictionary(header);
  } catch (e) {
    if (e instanceof SfParseError) return [];
    throw e;
  }
  const out: WantedDigest[] = [];
  for (const [key, member] of dict) {
    const alg = rfc9530Alg(key);
    if (!alg || member.kind !== 'item' || member.value.type !== 'integer') continue;
    const pref = member.value.value;
    if (pref < 1 || pref > 10) continue;
    out.push({ alg, weight: pref });
  }
  return stableSortByWeight(out);
}

export function pickWantReprDigest(
  header: HeaderValue,
  available: readonly ChecksumAlg[] = CHECKSUM_ALGS,
): ChecksumAlg | undefined {
  return pickWanted(parseWantReprDigest(header), available);
}

/** Format a `Repr-Digest` value: `adler=:A9oBlQ==:, sha-256=:…:` (SF byte sequences, big-endian). */
export function formatReprDigest(values: DigestValues): string {
  const parts: string[] = [];
  for (const alg of CHECKSUM_ALGS) {
    const hex = values[alg];
    if (hex === undefined) continue;
    assertCanonical(alg, hex);
    parts.push(`${RFC9530_EMIT[alg]}=:${checksumHexToBytes(hex).toString('base64')}:`);
  }
  return parts.join(', ');
}

/**
 * Parse `Repr-Digest` into canonical values. Unknown keys (sha-512, unixsum…) are ignored; an
 * invalid SF dictionary, or a known key whose value is not a byte sequence of the right length,
 * is a BadChecksumError naming `field`.
 */
export function parseReprDigest(header: HeaderValue, field = 'Repr-Digest'): DigestValues {
  if (header === undefined) return {};
  let dict: SfDictionary;
  try {
    dict = parseSfDictionary(header);
  } catch (e) {
    if (e instanceof SfParseError) throw new BadChecksumError(`${field}: not a structured-field dictionary (${e.message})`, field, e);
    throw e;
  }
  const out: DigestValues = {};
  for (const [key, member] of dict) {
    const alg = rfc9530Alg(key);
    if (!alg) continue;
    const bytes = DIGEST_BYTES[alg];
    if (member.kind !== 'item' || member.value.type !== 'bytes' || member.value.value.length !== bytes) {
      throw new BadChecksumError(`${field}: ${key} must be a byte sequence of ${bytes} bytes`, field);
    }
    out[alg] = checksumBytesToHex(member.value.value);
  }
  return out;
}

// ---- Client side (the transfer engine talking to a remote endpoint) -------------------------------

/** The RFC 3230 token to send in `Want-Digest` when asking a remote for `alg` (`adler32`, `sha-256`…). */
export function wantDigestToken(alg: ChecksumAlg): string {
  return RFC3230_EMIT[alg];
}

/** The RFC 9530 key to send in `Want-Repr-Digest` when asking a remote for `alg` (`adler`, `sha-256`…). */
export function reprDigestKey(alg: ChecksumAlg): string {
  return RFC9530_EMIT[alg];
}

/**
 * The canonical value of `alg` that a remote announced in its response headers, if any. `Digest` is
 * consulted first (what WLCG storage reliably emits), then `Repr-Digest`. A malformed header from
 * the remote is treated as absent rather than failing the transfer: the engine still has the
 * user's expected value and its own computed one, and a digest it cannot read verifies nothing.
 */
export function checksumFromResponseHeaders(
  alg: ChecksumAlg,
  digest: HeaderValue,
  reprDigest: HeaderValue,
): string | undefined {
  return tryParse(() => parseDigest(digest))[alg] ?? tryParse(() => parseReprDigest(reprDigest))[alg];
}

function tryParse(parse: () => DigestValues): DigestValues {
  try {
    return parse();
  } catch (e) {
    if (e instanceof BadChecksumError) return {};
    throw e;
  }
}
