/**
 * Checksums of stored files, for `Digest` / `Repr-Digest` answers and TPC verification. Computed by reading
 * the file once (1 MiB reads) and remembered per (path, ETag): a changed file has a new ETag, so stale
 * values are never served. Uploads record the value they computed while streaming, so the usual
 * "PUT, then HEAD with Want-Digest: adler32" costs no second read.
 */
import { createChecksummer } from '../checksum/checksummer.js';
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import type { ReadHandle } from './storage-backend.js';

const MAX_ENTRIES = 10_000;

export class FileChecksums {
  private readonly cache = new Map<string, string>();

  private key(path: string, etag: string, alg: ChecksumAlg): string {
    return `${alg}\u0000${etag}\u0000${path}`;
  }

  remember(path: string, etag: string, alg: ChecksumAlg, hex: string): void {
    if (this.cache.size >= MAX_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(this.key(path, etag, alg), hex);
  }

  cached(path: string, etag: string, alg: ChecksumAlg): string | undefined {
    return this.cache.get(this.key(path, etag, alg));
  }

  /** Value of `alg` for the open file, computed (and cached) when not known yet. */
  async compute(handle: ReadHandle, alg: ChecksumAlg): Promise<string> {
    const { path, etag, size } = handle.stat;
    const hit = this.cached(path, etag, alg);
    if (hit) return hit;
    const sum = createChecksummer(alg);
    if (size > 0) {
      for await (const chunk of handle.stream(0, size - 1) as AsyncIterable<Buffer>) sum.update(chunk);
    }
    const hex = sum.digestHex();
    this.remember(path, etag, alg, hex);
    return hex;
  }
}
