/**
 * Counting semaphore for active-transfer slots (per endpoint, per link, per worker). Capacity can change
 * live: lowering it lets running holders finish and admits nobody new until they are under the new limit.
 * Waiters are served in arrival order; an aborted waiter leaves the queue without taking a slot.
 */
export type ReleaseSlot = () => void;

interface SlotWaiter {
  grant: (release: ReleaseSlot) => void;
  cancelled: boolean;
}

export class ConcurrencySlots {
  private active = 0;
  private readonly waiters: SlotWaiter[] = [];

  constructor(private cap: number) {}

  get capacity(): number {
    return this.cap;
  }

  get inUse(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.filter((w) => !w.cancelled).length;
  }

  setCapacity(n: number): void {
    this.cap = Math.max(0, n);
    this.pump();
  }

  /** A slot now, or null when full (for schedulers that would rather pick other work than wait). */
  tryAcquire(): ReleaseSlot | null {
    if (this.active >= this.cap || this.waiters.length > 0) return null;
    this.active++;
    return this.releaser();
  }

  acquire(signal?: AbortSignal): Promise<ReleaseSlot> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<ReleaseSlot>((resolve, reject) => {
      const w: SlotWaiter = { grant: resolve, cancelled: false };
      const onAbort = (): void => {
        w.cancelled = true;
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      w.grant = (release) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      };
      this.waiters.push(w);
    });
  }

  private releaser(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return; // double release must not free someone else's slot
      released = true;
      this.active--;
      this.pump();
    };
  }

  private pump(): void {
    while (this.active < this.cap && this.waiters.length > 0) {
      const w = this.waiters.shift()!;
      if (w.cancelled) continue;
      this.active++;
      w.grant(this.releaser());
    }
  }
}
