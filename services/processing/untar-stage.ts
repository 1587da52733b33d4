/**
 * The `untar` stage (reception, local destinations): unpacks the arriving tar stream (tar-unpack.ts) into the
 * directory of the destination, and its own output — what the engine publishes at the destination's name plus
 * `.manifest.jsonl` — is the manifest: one JSON line per member with its state and checksums.
 *
 *   {stage: 'untar', overwrite: false, requireChecksums: true, publish: 'each'}
 *
 * Put `unzstd` before it for `.tar.zst` archives. The operator's bounds apply (processing.tarMaxMemberBytes,
 * tarMaxNameBytes, tarMaxMembers).
 */
import { dirname } from 'node:path';
import type { StageDefinition } from './stage-registry.js';
import { boolOption, readOptions, stringOption } from './stage-options.js';
import { TarUnpacker } from './tar-unpack.js';
import { bindAbort } from './gate-stage.js';

export interface TarLimits {
  readonly maxMemberBytes: number;
  readonly maxNameBytes: number;
  readonly maxMembers: number;
}

export const MANIFEST_SUFFIX = '.manifest.jsonl';

export function untarStage(limits: TarLimits) {
  const readers = {
    overwrite: boolOption(false),
    requireChecksums: boolOption(false),
    durable: boolOption(true),
    publish: stringOption(/^(each|end)$/, 'each or end', 'each'),
  };
  const parse = (raw: Record<string, unknown>, field: string) => readOptions(raw, readers, field, 'untar');
  const def: StageDefinition<ReturnType<typeof parse>> = {
    name: 'untar',
    sides: ['reception'],
    localOnly: true,
    parseOptions: parse,
    rename: (path) => path + MANIFEST_SUFFIX,
    build: (o, ctx) => ({
      name: ctx.label,
      create: () => bindAbort(new TarUnpacker({
        target: dirname(ctx.fileName), ...limits,
        overwrite: o.overwrite, requireChecksums: o.requireChecksums, durable: o.durable, publish: o.publish as 'each' | 'end',
        onMember: () => undefined,
      }).on('finish', function (this: TarUnpacker) {
        const s = this.summary;
        ctx.recorder.record({ kind: 'unpack', stage: ctx.label, side: ctx.side, members: s.members, published: s.published, failed: s.failed, bytes: s.bytes });
      }), ctx.signal),
    }),
  };
  return def;
}
