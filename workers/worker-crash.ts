/**
 * What `cargoport serve` does when a worker child process died without being asked to: the files it was running
 * are closed as crashed and requeued at once (or failed after workers.crashLimit crashes, see crash.lua), the
 * requeued ones put into the run queue now rather than when the dead process's BullMQ locks expire, the part files
 * of the closed ones removed, and its heartbeat taken out of the status.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Config } from '../config/schema.js';
import { JobStore } from '../services/jobs/job-store.js';
import { TRANSFER_QUEUE, transferJobOptions } from '../services/jobs/queues.js';
import { connectRedis, redisOptionsFromUrl } from '../services/jobs/redis-connection.js';
import { removeClosedRunPartFiles } from '../services/jobs/transfer-runner.js';

export interface WorkerCrashSummary {
  requeued: number;
  closed: number;
}

/**
 * `queueWorkerId`: the dead process's BullMQ worker id, if it said it. Its run-queue entries (bundles whose later
 * files it had not started, claims it sent but never saw applied) go back to wait now instead of when their locks
 * expire (up to three quarters of workers.lockDurationMs).
 */
export async function recordWorkerCrash(cfg: Config, redisUrl: string, workerId: string, what: string, queueWorkerId?: string): Promise<WorkerCrashSummary> {
  const redis = connectRedis(redisUrl, 'worker');
  const queue = new Queue(TRANSFER_QUEUE, { connection: redisOptionsFromUrl(redisUrl, 'worker') as ConnectionOptions, prefix: cfg.redis.prefix });
  try {
    const store = new JobStore(redis, cfg.redis.prefix);
    const rec = await store.recordWorkerCrash(workerId, cfg.workers.crashLimit, what);
    if (rec.requeued.length) {
      // Recorded in the outbox by the script: if this add fails, a worker's outbox reconciler adds them later.
      await queue.addBulk(rec.requeued.map((member) => ({ name: 'file', data: {}, opts: transferJobOptions(member, 0) })));
      await store.ackOutbox(rec.requeued);
    }
    if (queueWorkerId) {
      for (const job of await queue.getActive()) {
        const token = await redis.get(queue.toKey(`${job.id}:lock`));
        // Only this process's entries: the lock token is `<BullMQ worker id>:<n>`.
        if (token?.startsWith(`${queueWorkerId}:`)) await job.moveToWait(token).catch(() => undefined);
      }
    }
    await Promise.all(rec.closed.map((c) => removeClosedRunPartFiles(c.jobId, c.idx, c.spec, c.run)));
    await redis.hdel(store.keys.port('workers'), workerId);
    return { requeued: rec.requeued.length, closed: rec.closed.length };
  } finally {
    await queue.close().catch(() => undefined);
    redis.disconnect();
  }
}
