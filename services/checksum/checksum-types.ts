/** The checksum vocabulary shared by every layer above this one (transfer, storage, jobs, gateway). */
export type ChecksumAlg = 'adler32' | 'crc32c' | 'md5' | 'sha256';

export interface ExpectedChecksum {
  alg: ChecksumAlg;
  /** Canonical value (lowercase hex; adler32/crc32c padded to 8 digits) when the user supplied one. */
  value?: string;
}
