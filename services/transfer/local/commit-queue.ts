/**
 * Group commit of local publishes: small files that finish close together are made durable and named together, by
 * one thread (commit-worker.ts) that syncs each part file's data, links (or renames) each into place and syncs each
 * directory once per batch. The main thread pays one message per batch instead of fsync + link + unlink (+ a share
 * of the directory fsync) per file, each a thread-pool round trip.
 *
 * A batch goes as soon as the event loop turns (every file that finished in the same I/O phase joins it); while it
 * is in the thread the next one gathers, so under load a batch is what finished during one commit. A caller's
 * promise settles only after its file's bytes, its name and its directory are durable, or with that file's own
 * error. A crash anywhere in a batch leaves, per file, either its part file (not published: the next attempt starts
 * it over) or its published name holding all its synced bytes; never a partial file at a final name.
 */
import { Worker } from 'node:worker_threads';
import type { CommitBatch, CommitFailure, CommitItem, CommitReply } from './commit-protocol.js';

/** Files up to this size are published through the group commit; larger ones sync on their own. */
export const GROUP_COMMIT_MAX_BYTES = 4 * 1024 * 1024;

/** Most files in one batch (bounds one batch's latency). */
export const COMMIT_BATCH_MAX = 256;

interface Waiting {
  item: CommitItem;
  resolve(): void;
  reject(f: CommitFailure): void;
}

class CommitQueue {
  private worker: Worker | undefined;
  private waiting: Waiting[] = [];
  private inFlight: { id: number; batch: Waiting[] } | undefined;
  private scheduled = false;
  private nextId = 1;
  readonly stats = { batches: 0, files: 0 };

  commit(item: CommitItem): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./commit-worker.js', import.meta.url));
    w.on('message', (reply: CommitReply) => this.onReply(reply));
    // A thread that dies fails the files of its batch (their attempts retry); the next batch gets a new thread.
    const died = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const lost = this.inFlight;
      this.inFlight = undefined;
      for (const x of lost?.batch ?? []) x.reject({ code: 'EIO', message: `the group-commit thread stopped (${why}) before this file was committed` });
      if (this.waiting.length) this.schedule();
    };
    w.on('error', (e) => died(e.message));
    w.on('exit', (code) => died(`exit ${code}`));
    w.unref();
    this.worker = w;
    return w;
  }

  private send(): void {
    if (this.inFlight || this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, COMMIT_BATCH_MAX);
    const msg: CommitBatch = { id: this.nextId++, items: batch.map((b) => b.item) };
    this.inFlight = { id: msg.id, batch };
    this.stats.batches++;
    this.stats.files += batch.length;
    const w = this.thread();
    // Held referenced while files wait on it, so the process does not exit under a batch.
    w.ref();
    w.postMessage(msg);
  }

  private onReply(reply: CommitReply): void {
    const f = this.inFlight;
    if (!f || f.id !== reply.id) return;
    this.inFlight = undefined;
    if (this.waiting.length === 0) this.worker?.unref();
    for (let i = 0; i < f.batch.length; i++) {
      const r = reply.results[i];
      if (r) f.batch[i]!.reject(r);
      else f.batch[i]!.resolve();
    }
    this.send();
  }
}

let queue: CommitQueue | undefined;

/** Makes a closed part file durable at its final name with the files that finish close to it. */
export function groupCommit(item: CommitItem): Promise<void> {
  return (queue ??= new CommitQueue()).commit(item);
}

/** Batches and files committed so far by this process (the group-commit ratio is files / batches). */
export function groupCommitStats(): { batches: number; files: number } {
  return { ...(queue ??= new CommitQueue()).stats };
}
