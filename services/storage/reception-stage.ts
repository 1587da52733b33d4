/**
 * Reception stages: what runs on an imported file while it is still in the buffer, before it is published in
 * permanent storage (the import half of the storage model). A stage sees the complete, fsynced file at its
 * private buffer path; it may inspect it, record something about it, or rewrite it in place (decompress,
 * unpack). A stage that throws refuses the file: nothing is published and the uploader gets the reason.
 * The processing issue plugs its stages (zstd, tar, custom hooks) in here.
 */
import { isCargoError } from '../../errors/cargo-error.js';
import { StorageError } from './storage-errors.js';

export interface ReceivedFile {
  /** Logical path the file will be published at. */
  readonly path: string;
  /** Absolute path of the complete file in the buffer (not visible to readers). */
  readonly file: string;
}

export interface ReceptionStage {
  /** Named in errors and logs. */
  readonly name: string;
  run(received: ReceivedFile): Promise<void>;
}

/** Runs `stages` in order; the first refusal stops the import with an error naming the stage. */
export async function runReceptionStages(stages: readonly ReceptionStage[], received: ReceivedFile): Promise<void> {
  for (const stage of stages) {
    try {
      await stage.run(received);
    } catch (e) {
      if (isCargoError(e)) throw e;
      throw new StorageError(
        'CARGO_ERR_RECEPTION_REFUSED',
        `reception stage "${stage.name}" refused ${received.path}: ${e instanceof Error ? e.message : String(e)}`,
        422,
        { field: 'body' },
      );
    }
  }
}
