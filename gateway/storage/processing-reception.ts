/**
 * The operator's processing rules (processing.rules, services/processing) on uploads into the port's own storage
 * endpoint: a reception stage of the storage model (services/storage/reception-stage.ts) that runs, on the
 * complete file in the buffer, the reception stages of the rule matching the upload — `{endpoint: storage}` rules,
 * and rules without an endpoint by their path prefix on the storage path — so one configuration governs both a
 * worker's local destinations and the endpoint's uploads.
 *
 * The stages stream the buffered file into a sibling file, which replaces it before publication; a stage failure
 * (a hook's exit status, corrupt zstd) refuses the upload with that error (422) and nothing is published. The
 * name stays the uploader's (a stage's rename, `.zst`, does not apply), untar is refused (it needs a local
 * destination), and the output may be at most `maxOutputBytes` (a decompression bomb cannot fill the buffer).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Processing } from '../../services/processing/processing-service.js';
import { EMPTY_PLAN } from '../../services/processing/processing-spec.js';
import { ProcessingError } from '../../services/processing/processing-errors.js';
import type { ReceptionStage } from '../../services/storage/reception-stage.js';

/** How processing.rules name the storage endpoint. */
export const STORAGE_ENDPOINT = 'storage';
/** A source that no rule matches: uploads have no emission side here. */
const NO_SOURCE = { endpoint: 'upload', path: '' };

export function processingReceptionStage(processing: Processing, opts: { maxOutputBytes: number }): ReceptionStage {
  return {
    name: 'processing',
    async run({ path, file }) {
      const chain = processing.resolve(EMPTY_PLAN, NO_SOURCE, { endpoint: STORAGE_ENDPOINT, path });
      if (chain.reception.length === 0) return;
      const { reception } = chain.build({});
      const out = `${file}.cargoport-processed`;
      let bytes = 0;
      const bound = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          if (bytes > opts.maxOutputBytes) {
            done(new ProcessingError('CARGO_ERR_STAGE_FAILED', `the reception stages of ${path} produced more than ${opts.maxOutputBytes} bytes (storage.bufferQuotaBytes)`, { field: 'body' }));
          } else done(null, chunk);
        },
      });
      try {
        await pipeline([createReadStream(file), ...reception.map((s) => s.create()), bound, createWriteStream(out, { flags: 'wx', mode: 0o600 })]);
        const h = await open(out, 'r+');
        try {
          await h.sync();
        } finally {
          await h.close();
        }
        await rename(out, file);
      } catch (e) {
        await rm(out, { force: true });
        throw e;
      }
    },
  };
}
