/**
 * One interface for every checksum the port computes while bytes stream: feed chunks in order with
 * update(), read the canonical value (lowercase hex; adler32/crc32c exactly 8 digits) with digestHex().
 */
import { createHash, type Hash } from 'node:crypto';
import type { ChecksumAlg } from './checksum-types.js';
import { adler32Update, ADLER32_INITIAL } from './adler32.js';
import { crc32cUpdate, CRC32C_INITIAL } from './crc32c.js';
import { hex32 } from './checksum-value.js';
import { ChecksumStateError } from './checksum-errors.js';

export type { ChecksumAlg };

export interface Checksummer {
  readonly alg: ChecksumAlg;
  /** Consume `buf` synchronously; the caller may reuse the buffer as soon as this returns. */
  update(buf: Uint8Array): void;
  /**
   * Canonical value of everything fed so far. For md5/sha256 this finalises the hash: later update()
   * calls throw, later digestHex() calls return the same value. adler32/crc32c may keep going.
   */
  digestHex(): string;
}

/** The two 32-bit sums, whose raw state is also what range combination works on. */
export type Sum32Alg = 'adler32' | 'crc32c';

export function isSum32Alg(alg: ChecksumAlg): alg is Sum32Alg {
  return alg === 'adler32' || alg === 'crc32c';
}

/** adler32 / crc32c: the state is a plain number, so there is nothing to allocate per chunk. */
export class Sum32Checksummer implements Checksummer {
  readonly alg: Sum32Alg;
  private current: number;
  private readonly step: (state: number, buf: Uint8Array, start?: number, end?: number) => number;

  constructor(alg: Sum32Alg, initialState?: number) {
    this.alg = alg;
    this.step = alg === 'adler32' ? adler32Update : crc32cUpdate;
    this.current = initialState ?? (alg === 'adler32' ? ADLER32_INITIAL : CRC32C_INITIAL);
  }

  /** Raw 32-bit value (for adler32Combine / crc32cCombine). */
  get state(): number {
    return this.current;
  }

  update(buf: Uint8Array, start = 0, end = buf.length): void {
    this.current = this.step(this.current, buf, start, end);
  }

  digestHex(): string {
    return hex32(this.current);
  }
}

/** md5 / sha256 through node:crypto (OpenSSL). */
export class CryptoChecksummer implements Checksummer {
  readonly alg: 'md5' | 'sha256';
  private readonly hash: Hash;
  private finalHex: string | undefined;

  constructor(alg: 'md5' | 'sha256') {
    this.alg = alg;
    this.hash = createHash(alg);
  }

  update(buf: Uint8Array): void {
    if (this.finalHex !== undefined) throw new ChecksumStateError(`${this.alg}: update() after digestHex()`);
    this.hash.update(buf);
  }

  digestHex(): string {
    this.finalHex ??= this.hash.digest('hex');
    return this.finalHex;
  }
}

export function createChecksummer(alg: ChecksumAlg): Checksummer {
  switch (alg) {
    case 'adler32':
    case 'crc32c':
      return new Sum32Checksummer(alg);
    case 'md5':
    case 'sha256':
      return new CryptoChecksummer(alg);
    default: {
      const never: never = alg;
      throw new ChecksumStateError(`unknown checksum algorithm ${String(never)}`);
    }
  }
}

/**
 * Several algorithms from one pass over the bytes (e.g. adler32 for FTS plus sha256 for
 * Repr-Digest): one update() per chunk feeds all of them while the chunk is hot in cache.
 */
export class MultiChecksummer {
  readonly algs: readonly ChecksumAlg[];
  private readonly parts: Checksummer[];

  constructor(algs: Iterable<ChecksumAlg>) {
    this.algs = [...new Set(algs)];
    this.parts = this.algs.map(createChecksummer);
  }

  update(buf: Uint8Array): void {
    for (const part of this.parts) part.update(buf);
  }

  /** Canonical value for one of the algorithms (throws if it was not requested). */
  digestHex(alg: ChecksumAlg): string {
    const part = this.parts.find((p) => p.alg === alg);
    if (!part) throw new ChecksumStateError(`MultiChecksummer: ${alg} was not requested`);
    return part.digestHex();
  }

  /** All values, keyed by algorithm. */
  digests(): Partial<Record<ChecksumAlg, string>> {
    const out: Partial<Record<ChecksumAlg, string>> = {};
    for (const part of this.parts) out[part.alg] = part.digestHex();
    return out;
  }
}
