/** Summary of a set of timings as the probe reports them: count, min, median, p90, max (nearest rank). */
export interface Distribution {
  count: number;
  min: number;
  median: number;
  p90: number;
  max: number;
}

/** Nearest-rank percentile `p` (0..100) of ascending `sorted`. */
function rank(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** The distribution of `values` (milliseconds, say), rounded to 3 decimals; undefined for no values. */
export function distribution(values: readonly number[]): Distribution | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return { count: s.length, min: round(s[0]!), median: round(rank(s, 50)), p90: round(rank(s, 90)), max: round(s.at(-1)!) };
}
