/**
 * The processing seam: what a stream stage is. services/processing owns it (the lower layer owns the interface);
 * the transfer engine (services/transfer/stream-stage.ts) only runs stages it is given, and the processing
 * library builds them (zstd, tar, checksum, site hooks).
 *
 * A stage is a factory: `create()` returns a fresh Duplex for one attempt (a retry starts over from byte 0, so a
 * stage never carries state across attempts). The Duplex must
 * - honour back-pressure on both sides (never buffer more than a bounded amount, whatever its input does),
 * - release everything it holds (child processes, worker-thread sessions, temporary files) in `_destroy`, which
 *   the chain calls on abort, on a failure anywhere in the chain and on a paused-then-stopped transfer,
 * - fail with an Error whose message says what went wrong with the bytes: the engine reports it as
 *   CARGO_ERR_STAGE_FAILED naming the stage, with the stage's own error (and its CARGO_ERR_* code) as the cause.
 */
import type { Duplex } from 'node:stream';

export interface StreamStage {
  /** Named in errors ("stream stage "zstd" failed: …") and in per-file records. */
  readonly name: string;
  /** A fresh transform for one attempt. */
  create(): Duplex;
}

/** Where a stage runs: before the bytes leave the source, or after they arrive and before publishing. */
export type StageSide = 'emission' | 'reception';
