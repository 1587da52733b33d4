/**
 * The `checksum` stage: observes the bytes at its place in the chain and records their checksums for the file
 * (`{stage: 'checksum', algs: ['adler32', 'sha256'], label: 'raw'}`). Put it first to sum the raw bytes, after
 * `zstd` to sum what travels, or at reception to sum what is published. It changes nothing; the record is made
 * only when the stream ends whole, so a failed attempt records nothing.
 */
import { Transform } from 'node:stream';
import { MultiChecksummer } from '../checksum/checksummer.js';
import type { StageDefinition } from './stage-registry.js';
import { algListOption, readOptions, stringOption } from './stage-options.js';

const readers = {
  algs: algListOption(['adler32']),
  label: stringOption(/^[A-Za-z0-9_.-]{1,64}$/, '1-64 letters, digits, _ . -'),
};
const parse = (raw: Record<string, unknown>, field: string) => readOptions(raw, readers, field, 'checksum');

export const checksumStage: StageDefinition<ReturnType<typeof parse>> = {
  name: 'checksum',
  sides: ['emission', 'reception'],
  parseOptions: parse,
  build: (o, ctx) => ({
    name: ctx.label,
    create: () => {
      const sums = new MultiChecksummer(o.algs);
      let bytes = 0;
      return new Transform({
        transform(chunk: Buffer, _enc, done) {
          sums.update(chunk);
          bytes += chunk.length;
          done(null, chunk);
        },
        flush(done) {
          ctx.recorder.record({ kind: 'checksum', stage: ctx.label, side: ctx.side, label: o.label ?? ctx.label, bytes, checksums: sums.digests() });
          done();
        },
      });
    },
  }),
};
