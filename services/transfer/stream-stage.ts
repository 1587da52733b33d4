/**
 * Stream stages: transforms the bytes pass through between the source and the destination (compress on the way
 * out, decompress on the way in, pack, encrypt…). The interface (StreamStage) belongs to services/processing,
 * which builds the stages; the engine only runs them.
 *
 * What a staged transfer means for the engine (engine.ts):
 * - the destination receives the stages' output, so the transfer is one stream from byte 0: no ranges, no
 *   multi-stream, no resume from a part file, no continuation of a cut body (a retry starts over);
 * - the checksum compared with the user's value and the source's Digest is that of the source bytes (before the
 *   stages); the destination is checked against what was sent (its size, or its Digest of the output bytes);
 * - `bytes` in the result counts the bytes written to the destination;
 * - a stage that fails (corrupt input, say) fails the transfer with CARGO_ERR_STAGE_FAILED, not retried (the
 *   same bytes would fail the same way) unless the stage's error says it is retryable (a hook's exit 75). A
 *   source failing under the stages stays a source failure.
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import type { Checksummer } from '../checksum/checksummer.js';
import { TransferError, TransferErrorCode } from './transfer-errors.js';
import type { StreamStage } from '../processing/stream-stage.js';

export type { StreamStage };

export interface StagedSource {
  /** The stages' output. */
  readonly body: Readable;
  /** Bytes read from the source so far. */
  readonly inputBytes: number;
  /** The error to report: a failure inside the stages becomes CARGO_ERR_STAGE_FAILED naming them; others pass. */
  explain(err: unknown): unknown;
}

/**
 * `source` piped through a counting, checksumming tap and then `stages` in order. An error anywhere destroys the
 * whole chain and reaches the reader of `body`.
 */
export function applyStreamStages(source: Readable, stages: readonly StreamStage[], inputChecksum: Checksummer | null): StagedSource {
  let inputBytes = 0;
  // Who failed first. These listeners are registered before the pipeline's own, so the first 'error' event seen is
  // the original failure, before the pipeline spreads it to every other stream of the chain.
  let first: { from: 'source' | string; err: unknown } | undefined;
  source.once('error', (err) => { first ??= { from: 'source', err }; });
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      inputBytes += chunk.length;
      inputChecksum?.update(chunk);
      done(null, chunk);
    },
  });
  const transforms = stages.map((s) => {
    const t = s.create();
    t.once('error', (err) => { first ??= { from: s.name, err }; });
    return t;
  });
  const body = pipeline([source, tap, ...transforms], () => undefined) as unknown as Readable;
  return {
    body,
    get inputBytes() {
      return inputBytes;
    },
    explain(err) {
      // Not a failure inside the chain (the destination, the local disk, an abort), or the source's own.
      if (first === undefined || first.from === 'source') return err;
      const code = (first.err as { code?: unknown } | undefined)?.code;
      if (code === 'ABORT_ERR' || code === 'ERR_STREAM_PREMATURE_CLOSE') return err;
      const why = first.err instanceof Error ? first.err.message : String(first.err);
      // A stage that says the failure may pass on another try (a site hook's exit 75) keeps that; others are final.
      const retryable = (first.err as { retryable?: unknown } | undefined)?.retryable === true;
      return new TransferError(TransferErrorCode.stageFailed, `stream stage "${first.from}" failed: ${why}`,
        { httpStatus: 422, field: 'processing', retryable, cause: first.err });
    },
  };
}
