/**
 * Per-member checksums carried inside a tar archive as PAX extended-header records, so a packed transfer keeps each
 * file's checksum and the receiver verifies every member. The records are written as extended attributes in the
 * form GNU tar and star use (`SCHILY.xattr.user.cargoport.adler32=03da0195`): GNU tar skips them silently (a
 * vendor keyword of our own would make it warn once per member) and with `--xattrs` restores them as the user
 * attributes `user.cargoport.<alg>`. Fractional mtimes travel as the standard PAX `mtime` record.
 */
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import { normaliseChecksumHex } from '../checksum/checksum-spec.js';

const PREFIX = 'SCHILY.xattr.user.cargoport.';
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
