/**
 * The group-commit thread (commit-queue.ts): makes a batch of part files durable and publishes them at their final
 * names, with blocking system calls here instead of four thread-pool round trips per file on the main thread.
 * For a batch: every part file's data is synced (fdatasync), then each appears at its final name (link(2) without
 * overwrite, which refuses a name that appeared meanwhile; rename with it) and its part name goes, then every
 * directory that received a name is synced once. Each file's outcome is its own: one failure fails that file only.
 */
import { closeSync, fdatasyncSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, constants as fsc } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { CommitBatch, CommitFailure, CommitReply } from './commit-protocol.js';

function failure(e: unknown): CommitFailure {
  const err = e as NodeJS.ErrnoException;
  return { code: err.code ?? 'EIO', message: err.message ?? String(e), ...(err.syscall ? { syscall: err.syscall } : {}) };
}

function syncPath(path: string, data: boolean): void {
  const fd = openSync(path, fsc.O_RDONLY);
  try {
    if (data) fdatasyncSync(fd);
    else fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function commit(batch: CommitBatch): CommitReply {
  const out: Array<CommitFailure | null> = batch.items.map(() => null);
  // 1. The bytes of every file, before any of them gets its name.
  batch.items.forEach((it, i) => {
    try {
      syncPath(it.tempPath, true);
    } catch (e) {
      out[i] = failure(e);
    }
  });
  // 2. The names.
  const dirs = new Set<string>();
  batch.items.forEach((it, i) => {
    if (out[i]) return;
    try {
      if (it.overwrite) {
        renameSync(it.tempPath, it.finalPath);
      } else {
        linkSync(it.tempPath, it.finalPath);
        dirs.add(dirname(it.finalPath));
        unlinkSync(it.tempPath);
      }
      dirs.add(dirname(it.finalPath));
    } catch (e) {
      out[i] = failure(e);
    }
  });
  // 3. Each directory once (best effort: not every file system syncs directories).
  for (const d of dirs) {
    try {
      syncPath(d, false);
    } catch { /* best effort, as syncDirectory */ }
  }
  return { id: batch.id, results: out };
}

parentPort?.on('message', (batch: CommitBatch) => {
  parentPort!.postMessage(commit(batch));
});
