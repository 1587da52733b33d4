/**
 * A gate that byte-moving loops await before every chunk. Admin `pause` closes it: streams stop reading
 * (so TCP/HTTP2 flow control pushes back on the sender) and nothing is lost; `resume` opens it and every
 * waiter continues from the same offset. Stall watchdogs must consult `isOpen` so a paused transfer is
 * not mistaken for a stalled one.
 *
 * Waiting costs nothing while open: `whenOpen()` returns `null` so the hot path does not allocate a promise.
 */
export class PauseGate {
  private waiters: Array<() => void> = [];
  private open = true;
  private closedAt = 0;
  /** Total milliseconds spent closed, so watchdogs and rate meters can discount paused time. */
  private pausedMs = 0;

  get isOpen(): boolean {
    return this.open;
  }

  /** `null` when open (no allocation), otherwise a promise that settles when the gate opens. */
  whenOpen(): Promise<void> | null {
    if (this.open) return null;
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.closedAt = Date.now();
  }

  openGate(): void {
    if (this.open) return;
    this.open = true;
    this.pausedMs += Date.now() - this.closedAt;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  /** Milliseconds this gate has been closed in total, including the current closed period. */
  totalPausedMs(): number {
    return this.pausedMs + (this.open ? 0 : Date.now() - this.closedAt);
  }
}

/** A gate that is open when every one of its parents is open (port ∧ pool ∧ link ∧ endpoint). */
export class CombinedGate {
  constructor(private readonly gates: readonly PauseGate[]) {}
  get isOpen(): boolean {
    for (const g of this.gates) if (!g.isOpen) return false;
    return true;
  }
  whenOpen(): Promise<void> | null {
    if (this.isOpen) return null;
    return (async () => {
      for (;;) {
        let p: Promise<void> | null = null;
        for (const g of this.gates) {
          p = g.whenOpen();
          if (p) break;
        }
        if (!p) return;
        await p;
      }
    })();
  }
}

export type Gate = Pick<PauseGate, 'isOpen' | 'whenOpen'>;
