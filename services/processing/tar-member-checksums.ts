/**
 * Per-member checksums carried inside a tar archive, as PAX extended-header records in the vendor namespace the
 * POSIX pax format reserves for that (`CARGOPORT.adler32=03da0195`), so a packed transfer keeps each file's checksum
 * and the receiver verifies every member. Other tar readers ignore the records. Fractional mtimes travel as the
 * standard PAX `mtime` record.
 */
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import { normaliseChecksumHex } from '../checksum/checksum-spec.js';

const PREFIX = 'CARGOPORT.';
const ALGS: readonly ChecksumAlg[] = ['adler32', 'crc32c', 'md5', 'sha256'];

export function checksumRecords(sums: Partial<Record<ChecksumAlg, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const alg of ALGS) if (sums[alg] !== undefined) out[PREFIX + alg] = sums[alg]!;
  return out;
}

/** The checksums a member's PAX records carry; a malformed value is the archive's fault. */
export function checksumsFromRecords(pax: Record<string, string> | undefined, member: string): Partial<Record<ChecksumAlg, string>> {
  const out: Partial<Record<ChecksumAlg, string>> = {};
  if (!pax) return out;
  for (const alg of ALGS) {
    const v = pax[PREFIX + alg];
    if (v !== undefined) out[alg] = normaliseChecksumHex(alg, v, `member ${member}`);
  }
  return out;
}
