/**
 * Tape REST "stage" requests: bulk requests to bring files from permanent storage (nearline) into the
 * buffer, tracked per file through SUBMITTED → STARTED → COMPLETED | FAILED | CANCELLED.
 * Requests survive a restart: they are kept in `stage-requests.json` in the buffer. A request is on disk before
 * its id is returned, cancel and delete are on disk before they are answered, and per-file progress is written
 * within 200 ms; after a restart, files that were not finished are staged again. Requests are forgotten `ttlMs`
 * after creation.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { JsonStateFile } from './json-state-file.js';
import type { PortStorage } from './port-storage.js';
import { isCargoError } from '../../errors/cargo-error.js';

export type StageFileState = 'SUBMITTED' | 'STARTED' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

export interface StageFile {
  /** Path as the client wrote it (echoed back), and the logical path it maps to. */
  path: string;
  logical: string;
  state: StageFileState;
  error?: string;
  startedAt?: number;
  finishedAt?: number;
}

export interface StageRequest {
  id: string;
  createdAt: number;
  startedAt: number;
  completedAt?: number;
  pinMs: number;
  files: StageFile[];
}

const nowSec = () => Math.floor(Date.now() / 1000);
const TERMINAL: ReadonlySet<StageFileState> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export class StageRequests {
  private readonly requests = new Map<string, StageRequest>();
  private readonly journal: JsonStateFile<StageRequest[]>;

  private constructor(
    private readonly storage: PortStorage,
    private readonly ttlMs: number,
  ) {
    this.journal = new JsonStateFile(join(storage.buffer.dir, 'stage-requests.json'), () => [...this.requests.values()]);
  }

  /** The requests of `storage`, reloaded from before a restart; unfinished files are staged again. */
  static async open(storage: PortStorage, ttlMs = 24 * 3600_000): Promise<StageRequests> {
    const self = new StageRequests(storage, ttlMs);
    const stored = await self.journal.load();
    if (Array.isArray(stored)) {
      for (const r of stored as StageRequest[]) {
        if (typeof r?.id !== 'string' || !Array.isArray(r.files)) continue;
        self.requests.set(r.id, r);
      }
    }
    self.expire();
    for (const r of self.requests.values()) {
      for (const f of r.files) {
        if (f.state === 'STARTED') f.state = 'SUBMITTED'; // its copy was cut short by the restart
        if (f.state === 'SUBMITTED') void self.run(r, f);
      }
    }
    await self.journal.save();
    return self;
  }

  /** Writes pending progress now and no more afterwards (shutdown; json-state-file.ts says why). */
  close(): Promise<void> {
    return this.journal.close();
  }

  get(id: string): StageRequest | undefined {
    this.expire();
    return this.requests.get(id);
  }

  /** Create a request for already-validated paths and start staging every file in the background. */
  async create(files: Array<{ path: string; logical: string; error?: string }>, pinMs: number): Promise<StageRequest> {
    this.expire();
    const t = nowSec();
    const seen = new Set<string>();
    const req: StageRequest = { id: randomUUID(), createdAt: t, startedAt: t, pinMs, files: [] };
    for (const f of files) {
      if (seen.has(f.path)) continue; // each path appears once in the poll answer
      seen.add(f.path);
      req.files.push(
        f.error
          ? { path: f.path, logical: f.logical, state: 'FAILED', error: f.error, startedAt: t, finishedAt: t }
          : { path: f.path, logical: f.logical, state: 'SUBMITTED' },
      );
    }
    this.requests.set(req.id, req);
    this.settle(req);
    await this.journal.save();
    for (const f of req.files) if (f.state === 'SUBMITTED') void this.run(req, f);
    return req;
  }

  private async run(req: StageRequest, f: StageFile): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (f.state !== 'SUBMITTED') return;
    f.state = 'STARTED';
    f.startedAt ??= nowSec();
    this.journal.saveSoon();
    try {
      const st = await this.storage.stat(f.logical);
      const refused = st.type !== 'file' ? 'not a file' : st.size === 0 ? 'empty file: nothing on tape to stage' : undefined;
      if (refused !== undefined) {
        f.state = 'FAILED';
        f.error = refused;
        return;
      }
      // A file already online (posix permanent storage, or staged) needs no copy: it is on disk.
      if (!st.online || this.storage.isNearline) await this.storage.stage(f.logical, req.pinMs);
      if (f.state !== 'STARTED') return; // cancelled meanwhile
      f.state = 'COMPLETED';
    } catch (e) {
      if (f.state !== 'STARTED') return;
      f.state = 'FAILED';
      f.error = isCargoError(e) ? e.message : e instanceof Error ? e.message : String(e);
    } finally {
      f.finishedAt ??= nowSec();
      this.settle(req);
      this.journal.saveSoon();
    }
  }

  private settle(req: StageRequest): void {
    if (req.completedAt === undefined && req.files.every((f) => TERMINAL.has(f.state))) req.completedAt = nowSec();
  }

  /** Cancel `paths` of request `id`; returns the paths that are not part of the request (then nothing changes). */
  async cancel(req: StageRequest, paths: string[]): Promise<string[]> {
    const byPath = new Map(req.files.map((f) => [f.path, f]));
    const missing = paths.filter((p) => !byPath.has(p));
    if (missing.length > 0) return missing;
    for (const p of paths) {
      const f = byPath.get(p)!;
      if (TERMINAL.has(f.state)) continue;
      f.state = 'CANCELLED';
      f.finishedAt = nowSec();
      this.storage.release(f.logical);
    }
    this.settle(req);
    await this.journal.save();
    return [];
  }

  /** DELETE /stage/{id}: best-effort cancel of everything, then forget the request. */
  async delete(req: StageRequest): Promise<void> {
    this.requests.delete(req.id);
    await this.cancel(req, req.files.map((f) => f.path));
  }

  private expire(): void {
    const limit = nowSec() - Math.floor(this.ttlMs / 1000);
    for (const [id, r] of this.requests) {
      if (r.createdAt < limit) {
        this.requests.delete(id);
        this.journal.saveSoon();
      }
    }
  }
}
