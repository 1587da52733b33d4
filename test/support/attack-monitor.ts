/**
 * Watches this process while a test runs an attack against it: a timer that must keep firing (the event loop
 * answers), and the growth of RSS and of the V8 heap plus off-heap buffers above their level at the start. The
 * bound a test asserts is on memory, not on time: the gap between ticks is reported for the message, and only an
 * event loop blocked for seconds (a quadratic header merge, a synchronous flood loop) fails `answered()`.
 */
export interface AttackReport {
  /** How long the attack ran (ms), and the timer ticks seen meanwhile. */
  elapsedMs: number;
  ticks: number;
  /** Longest gap between two ticks (ms). */
  maxGapMs: number;
  /** Highest RSS and heap + external + array buffers seen, above the level at start (bytes). */
  rssGrowth: number;
  heapGrowth: number;
}

const TICK_MS = 10;

/** The event loop answered the timer throughout (an attack over within a few ticks may have seen none). */
export function loopAnswered(r: AttackReport): boolean {
  return r.maxGapMs < 5000 && (r.ticks > 0 || r.elapsedMs < 10 * TICK_MS);
}

export function monitorAttack(): { stop(): AttackReport } {
  const heapNow = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.external + m.arrayBuffers;
  };
  const rss0 = process.memoryUsage.rss();
  const heap0 = heapNow();
  let rssMax = rss0;
  let heapMax = heap0;
  let ticks = 0;
  const start = performance.now();
  let last = start;
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
    // The full memoryUsage() walks the heap spaces: every 5th tick is enough to catch growth.
    if (ticks % 5 === 0) heapMax = Math.max(heapMax, heapNow());
  }, TICK_MS);
  return {
    stop: () => {
      clearInterval(timer);
      maxGapMs = Math.max(maxGapMs, performance.now() - last);
      rssMax = Math.max(rssMax, process.memoryUsage.rss());
      heapMax = Math.max(heapMax, heapNow());
      return { elapsedMs: performance.now() - start, ticks, maxGapMs, rssGrowth: rssMax - rss0, heapGrowth: heapMax - heap0 };
    },
  };
}
