/**
 * The clock export schedules are computed on. BullMQ's job schedulers compute the next tick with a repeat strategy
 * (cron-parser, BullMQ's own `getNextMillis`); a clock other than the wall clock maps BullMQ's real milliseconds to
 * the clock's "virtual" ones and back, so a test can run a nightly schedule across a DST change in seconds with
 * the same parser and the same BullMQ scheduler the port runs in production.
 */
import { getNextMillis, type RepeatOptions } from 'bullmq';

export interface ExportClock {
  /** Virtual now (ms since the epoch). */
  now(): number;
  toVirtual(realMs: number): number;
  toReal(virtualMs: number): number;
  /** Virtual ms per real ms (1 for the wall clock). */
  readonly speed: number;
}

export const WALL_CLOCK: ExportClock = {
  now: () => Date.now(),
  toVirtual: (r) => r,
  toReal: (v) => v,
  speed: 1,
};

/**
 * A clock that starts at `virtualStart` now and runs `speed` times faster than the wall clock (tests only).
 * Choose a speed that maps the schedule's ticks to whole real milliseconds (36000: one hour is 100 ms).
 */
export function fastClock(virtualStart: number, speed: number, realStart = Date.now()): ExportClock {
  return {
    now: () => virtualStart + (Date.now() - realStart) * speed,
    toVirtual: (r) => virtualStart + (r - realStart) * speed,
    toReal: (v) => realStart + Math.round((v - virtualStart) / speed),
    speed,
  };
}

/** The repeat strategy BullMQ uses (cron-parser through getNextMillis), seen through `clock`. */
export function clockedRepeatStrategy(clock: ExportClock): (millis: number, opts: RepeatOptions) => number | undefined {
  if (clock === WALL_CLOCK) return (millis, opts) => getNextMillis(millis, opts);
  return (millis, opts) => {
    const v = getNextMillis(clock.toVirtual(millis), opts);
    return v === undefined ? undefined : clock.toReal(v);
  };
}
