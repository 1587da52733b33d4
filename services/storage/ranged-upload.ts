/**
 * Multi-stream uploads: N parallel PUTs to one path, each carrying `Content-Range: bytes S-E/T`, assemble one
 * file that is published when the union of completed parts covers [0, T).
 *
 * Protocol (cargoport peers; documented in gateway/storage/README.md):
 * - every part names the same total T (no `*`) and, optionally, the same `Cargo-Upload-Id` token; the pair
 *   (path, upload id or T) identifies the assembly, so two uploaders of one path do not mix unless they agree;
 * - parts may arrive in any order, overlap and be retried; a part counts only once its whole body is on disk;
 * - the request that completes the coverage publishes the file (fsync + atomic adopt) and gets 201; the other
 *   parts get 202 with `Cargo-Upload-Received: <bytes covered>`;
 * - an assembly idle for `idleMs` is dropped with its temp file and its quota; nothing is published;
 * - quota is held for the bytes written, not for T announced: a part naming T = 100 GB holds what it sent.
 */
import type { Readable } from 'node:stream';
import type { EntryStat } from './storage-backend.js';
import type { PortStorage, Upload } from './port-storage.js';
import { writeStreamAt } from './write-stream-at.js';
import { StorageError } from './storage-errors.js';

export interface PartResult {
  complete: boolean;
  /** Bytes of [0, total) covered by completed parts. */
  received: number;
  total: number;
  entry?: EntryStat;
}

interface Assembly {
  key: string;
  path: string;
  total: number;
  overwrite: boolean;
  upload: Upload;
  /** Completed ranges [start, end) sorted and merged. */
  done: Array<[number, number]>;
  /** Bytes written by all parts so far (overlaps and retries count again): the quota held, up to total. */
  written: number;
  inflight: number;
  publishing: boolean;
  timer: NodeJS.Timeout;
}

export function addRange(done: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
  const all = [...done, [start, end] as [number, number]].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export function coveredBytes(done: Array<[number, number]>): number {
  let n = 0;
  for (const [s, e] of done) n += e - s;
  return n;
}

export class RangedUploads {
  private readonly assemblies = new Map<string, Assembly>();
  private readonly opening = new Map<string, Promise<Assembly>>();

  constructor(
    private readonly storage: PortStorage,
    private readonly idleMs = 15 * 60_000,
  ) {}

  get active(): number {
    return this.assemblies.size;
  }

  private async assembly(key: string, path: string, total: number, overwrite: boolean): Promise<Assembly> {
    const a = this.assemblies.get(key);
    if (a) return a;
    let p = this.opening.get(key);
    if (!p) {
      p = (async () => {
        const upload = await this.storage.beginUpload(path, { overwrite, expectedSize: total });
        await upload.handle.truncate(total);
        const created: Assembly = {
          key, path, total, overwrite, upload, done: [], written: 0, inflight: 0, publishing: false,
          timer: setTimeout(() => void this.expire(key), this.idleMs).unref(),
        };
        this.assemblies.set(key, created);
        return created;
      })().finally(() => this.opening.delete(key));
      this.opening.set(key, p);
    }
    return p;
  }

  private async expire(key: string): Promise<void> {
    const a = this.assemblies.get(key);
    if (!a) return;
    if (a.inflight > 0 || a.publishing) {
      a.timer.refresh();
      return;
    }
    this.assemblies.delete(key);
    await a.upload.abort();
  }

  /** Drop every assembly (server shutdown). */
  async closeAll(): Promise<void> {
    for (const a of [...this.assemblies.values()]) {
      clearTimeout(a.timer);
      this.assemblies.delete(a.key);
      await a.upload.abort();
    }
  }

  /**
   * Write one part. `beforePublish` runs on the fully assembled temp file (digest verification); if it throws,
   * the assembly is dropped and nothing is published.
   */
  async writePart(
    req: { path: string; uploadId?: string; start: number; endInclusive: number; total: number; overwrite: boolean },
    body: Readable,
    idleMs: number | undefined,
    beforePublish?: (tempPath: string) => Promise<void>,
  ): Promise<PartResult> {
    const key = `${req.path}\u0000${req.uploadId ?? ''}\u0000${req.total}`;
    const a = await this.assembly(key, req.path, req.total, req.overwrite);
    if (a.publishing) throw new StorageError('CARGO_ERR_CONFLICT', 'upload already complete', 409, { field: 'Content-Range' });
    a.inflight++;
    a.timer.refresh();
    const length = req.endInclusive - req.start + 1;
    try {
      // Quota is taken as bytes arrive (never the announced total up front); a part that stalls fails on its own
      // (its bytes written stay held by the assembly until it completes or expires).
      const n = await writeStreamAt(a.upload.handle, body, req.start, {
        maxBytes: length,
        idleMs,
        onChunk: (chunk) => {
          a.written += chunk.length;
          a.upload.account(Math.min(a.total, a.written));
        },
      });
      if (n !== length) {
        throw new StorageError('CARGO_ERR_SHORT_BODY', `part body has ${n} bytes, Content-Range announces ${length}`, 400, {
          field: 'Content-Range',
        });
      }
      a.done = addRange(a.done, req.start, req.endInclusive + 1);
    } finally {
      a.inflight--;
      a.timer.refresh();
    }
    const received = coveredBytes(a.done);
    if (received < a.total || a.publishing) return { complete: false, received, total: a.total };
    a.publishing = true;
    this.assemblies.delete(key);
    clearTimeout(a.timer);
    // Other parts still writing overlapping bytes would be harmless (same content), but wait for them anyway.
    while (a.inflight > 0) await new Promise((r) => setTimeout(r, 5));
    try {
      if (beforePublish) await beforePublish(a.upload.tempPath);
    } catch (e) {
      await a.upload.abort();
      throw e;
    }
    const entry = await a.upload.commit();
    return { complete: true, received, total: a.total, entry };
  }
}
