/** A byte count sampled over time: [milliseconds, bytes]. */
export type RateSample = [ms: number, bytes: number];

/**
 * Least-squares slope of `samples`, in bytes per second: the rate a capped transfer holds, read through the
 * staircase its chunked writes make (the port's live-caps test and bench/live-caps.ts measure caps with it).
 */
export function rateSlope(samples: readonly RateSample[]): number {
  const n = samples.length;
  const mx = samples.reduce((s, [x]) => s + x, 0) / n;
  const my = samples.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of samples) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return (num / den) * 1000;
}
