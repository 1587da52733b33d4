/**
 * RFC 9110 §13 preconditions for GET/HEAD on files, and If-Range. Pure functions.
 */
import type { EntryStat } from '../../services/storage/storage-backend.js';

export type Precondition = 'proceed' | 'not-modified' | 'failed';

function etagList(h: string): string[] {
  return h.split(',').map((s) => s.trim()).filter(Boolean);
}

function weakEq(a: string, b: string): boolean {
  return a.replace(/^W\//, '') === b.replace(/^W\//, '');
}

function httpDateSeconds(h: string): number | undefined {
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
}

export function evaluatePreconditions(headers: Record<string, string | string[] | undefined>, st: EntryStat): Precondition {
  const ifMatch = headers['if-match'];
  if (typeof ifMatch === 'string') {
    const tags = etagList(ifMatch);
    if (!tags.includes('*') && !tags.includes(st.etag)) return 'failed';
  } else {
    const ius = headers['if-unmodified-since'];
    if (typeof ius === 'string') {
      const t = httpDateSeconds(ius);
      if (t !== undefined && Math.floor(st.mtimeMs / 1000) > t) return 'failed';
    }
  }
  const inm = headers['if-none-match'];
  if (typeof inm === 'string') {
    const tags = etagList(inm);
    if (tags.includes('*') || tags.some((t) => weakEq(t, st.etag))) return 'not-modified';
  } else {
    const ims = headers['if-modified-since'];
    if (typeof ims === 'string') {
      const t = httpDateSeconds(ims);
      if (t !== undefined && Math.floor(st.mtimeMs / 1000) <= t) return 'not-modified';
    }
  }
  return 'proceed';
}

/** If-Range: the Range applies only when the validator still matches (strong ETag, or exact date). */
export function ifRangeAllows(ifRange: string | undefined, st: EntryStat): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === st.etag;
  const t = httpDateSeconds(v);
  return t !== undefined && t === Math.floor(st.mtimeMs / 1000);
}
