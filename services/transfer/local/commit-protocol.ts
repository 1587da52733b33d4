/** Messages between the group-commit queue (commit-queue.ts) and its thread (commit-worker.ts). */

export interface CommitItem {
  /** The part file, written and closed. */
  tempPath: string;
  finalPath: string;
  /** rename over an existing name; else link(2), which refuses one. */
  overwrite: boolean;
}

export interface CommitBatch {
  id: number;
  items: CommitItem[];
}

/** Why one file of a batch could not be committed (an errno code, as Node's fs errors carry it). */
export interface CommitFailure {
  code: string;
  message: string;
  syscall?: string;
}

/** Per item, in order: null when it is durable at its final name. */
export interface CommitReply {
  id: number;
  results: Array<CommitFailure | null>;
}
