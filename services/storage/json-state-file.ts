/**
 * A small piece of state kept in one JSON file, written atomically (temp file, fsync, rename, directory fsync)
 * so a crash leaves either the previous or the new version, never a torn one. `save()` resolves once the value is
 * durable; `saveSoon()` coalesces bursts of changes into one write (for state that can be recomputed if the last
 * few changes are lost). Writes are serialised: the file always ends up holding the latest value. After `close()`
 * nothing is written any more: work still finishing in a closed instance (a recall that outlives its endpoint) must
 * not overwrite the file of the instance that replaced it in the same process.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export class JsonStateFile<T> {
  private writing: Promise<void> = Promise.resolve();
  private soon: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly path: string,
    /** Produces the value to write (called at write time, so a coalesced write holds the latest state). */
    private readonly snapshot: () => T,
    private readonly coalesceMs = 200,
  ) {}

  /** The stored value, or undefined when there is none or it cannot be parsed (the caller starts empty). */
  async load(): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }

  /** Write the current state now; resolves when it is on disk. */
  save(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.soon) {
      clearTimeout(this.soon);
      this.soon = undefined;
    }
    const next = this.writing.then(() => this.writeNow(), () => this.writeNow());
    this.writing = next.catch(() => undefined);
    return next;
  }

  /** Write the current state within `coalesceMs`, once for any number of calls. */
  saveSoon(): void {
    if (this.soon || this.closed) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.save().catch(() => undefined);
    }, this.coalesceMs);
    this.soon.unref();
  }

  /** Write pending changes, then accept no more (shutdown). */
  async close(): Promise<void> {
    if (this.soon) await this.save();
    else await this.writing;
    this.closed = true;
  }

  private async writeNow(): Promise<void> {
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.snapshot()));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
