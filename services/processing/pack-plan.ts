/**
 * How `--pack` splits a job's files into archives: in submission order, each archive takes files until it holds
 * `maxMembers` of them or the next would take it past `maxBytes`; a file larger than `maxBytes` (or than a tar
 * member can be) is not packed and travels alone. Several archives of one job can then be in flight at once, and a
 * retry packs only the members that did not arrive (the caller passes only those).
 */
import type { PackOptions } from './processing-spec.js';
import { MAX_PACKED_MEMBER_BYTES } from './tar-pack.js';

export interface PackCandidate {
  /** The file's id in the job. */
  readonly id: string;
  readonly size: number;
}

export interface ArchivePlan<T extends PackCandidate> {
  readonly archives: T[][];
  /** Files sent on their own. */
  readonly alone: T[];
}

export function planArchives<T extends PackCandidate>(files: readonly T[], opts: Pick<PackOptions, 'maxMembers' | 'maxBytes'>): ArchivePlan<T> {
  const archives: T[][] = [];
  const alone: T[] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const f of files) {
    if (f.size > opts.maxBytes || f.size > MAX_PACKED_MEMBER_BYTES) {
      alone.push(f);
      continue;
    }
    if (current.length > 0 && (current.length >= opts.maxMembers || bytes + f.size > opts.maxBytes)) {
      archives.push(current);
      current = [];
      bytes = 0;
    }
    current.push(f);
    bytes += f.size;
  }
  if (current.length > 0) archives.push(current);
  return { archives, alone };
}
