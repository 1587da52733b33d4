/** BullMQ queue names and job options shared by the gateway (producer side) and the workers. */
import type { JobsOptions } from 'bullmq';

/** One run queue for every file transfer; fairness and link limits are applied before files enter it. */
export const TRANSFER_QUEUE = 'transfers';

export function transferJobOptions(member: string, delayMs = 0): JobsOptions {
  return {
    jobId: member,
    delay: delayMs > 0 ? delayMs : undefined,
    // Our own store keeps the history; BullMQ's copies would only cost Redis memory.
    removeOnComplete: true,
    removeOnFail: true,
    attempts: 1,
  };
}
