/**
 * RFC 9110 §14 byte ranges for GET. Pure functions, no I/O.
 * - a Range in another unit is ignored (full 200), as the RFC allows;
 * - a malformed byte-range set, too many ranges, or a set with no satisfiable range → 416;
 * - unsatisfiable members of an otherwise satisfiable set are dropped; overlapping ones are coalesced, which
 *   also defeats the "many overlapping ranges" amplification trick.
 */
export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'unsatisfiable' }
  | { kind: 'partial'; ranges: ByteRange[] };

export const MAX_RANGES = 64;
const SPEC = /^\s*(\d*)\s*-\s*(\d*)\s*$/;

export function parseRangeHeader(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const eq = header.indexOf('=');
  if (eq < 0) return { kind: 'unsatisfiable' };
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'full' };
  const specs = header.slice(eq + 1).split(',');
  if (specs.length > MAX_RANGES) return { kind: 'unsatisfiable' };
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const m = SPEC.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return { kind: 'unsatisfiable' };
    if (m[1] === '') {
      // suffix range: last N bytes
      const n = Number(m[2]);
      if (!Number.isSafeInteger(n)) return { kind: 'unsatisfiable' };
      if (n === 0 || size === 0) continue;
      ranges.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = Number(m[1]);
    const end = m[2] === '' ? size - 1 : Number(m[2]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return { kind: 'unsatisfiable' };
    if (start >= size) continue;
    ranges.push({ start, end: Math.min(end, size - 1) });
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  return { kind: 'partial', ranges: coalesce(ranges) };
}

function coalesce(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** `Content-Range: bytes S-E/T` of a ranged PUT part. Returns null when the header is malformed. */
export function parseContentRange(header: string): { start: number; end: number; total: number } | null {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(header);
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = Number(m[3]);
  if (![start, end, total].every(Number.isSafeInteger) || end < start || end >= total) return null;
  return { start, end, total };
}
