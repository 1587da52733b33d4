/** BullMQ queue names and job options shared by the gateway (producer side) and the workers. */
import type { JobsOptions } from 'bullmq';

/** One run queue for every file transfer; fairness and link limits are applied before files enter it. */
export const TRANSFER_QUEUE = 'transfers';

/** Run-queue job id of an entry: the member itself, or `bundle-<first member>` for a bundle. */
export function runQueueId(entry: string): string {
  const comma = entry.indexOf(',');
  return comma < 0 ? entry : `bundle-${entry.slice(0, comma)}`;
}

export function transferJobOptions(entry: string, delayMs = 0): JobsOptions {
  return {
    jobId: runQueueId(entry),
    delay: delayMs > 0 ? delayMs : undefined,
    // Our own store keeps the history; BullMQ's copies would only cost Redis memory.
    removeOnComplete: true,
    removeOnFail: true,
    attempts: 1,
  };
}
