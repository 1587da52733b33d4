/**
 * The `zstd` (compress) and `unzstd` (decompress) stages, run on the zstd thread pool.
 *
 *   {stage: 'zstd', level: 3, windowLog: 23, threads: 2, checksum: true, suffix: true}
 *   {stage: 'unzstd', stripSuffix: true}
 *
 * `suffix` names the result as Content-Encoding does (`run42.fits` → `run42.fits.zst`); `stripSuffix` undoes it.
 * The operator bounds what a job may ask: the level (processing.zstdMaxLevel), zstd's own threads
 * (processing.zstdMaxWorkers) and the window, which also bounds what a peer's stream may make a decompressor
 * allocate (processing.zstdMaxWindowLog).
 */
import type { StageDefinition } from './stage-registry.js';
import { boolOption, intOption, readOptions } from './stage-options.js';
import type { ZstdThreadPool } from './zstd-thread-pool.js';

export interface ZstdLimits {
  readonly maxLevel: number;
  readonly maxWorkers: number;
  readonly maxWindowLog: number;
}

const SUFFIX = '.zst';

export function zstdCompressStage(pool: ZstdThreadPool, limits: ZstdLimits) {
  const readers = {
    level: intOption(1, limits.maxLevel, Math.min(3, limits.maxLevel)),
    windowLog: intOption(10, limits.maxWindowLog),
    threads: intOption(0, limits.maxWorkers, 0),
    checksum: boolOption(true),
    suffix: boolOption(false),
  };
  type Options = ReturnType<typeof parse>;
  const parse = (raw: Record<string, unknown>, field: string) => readOptions(raw, readers, field, 'zstd');
  const def: StageDefinition<Options> = {
    name: 'zstd',
    sides: ['emission', 'reception'],
    parseOptions: parse,
    rename: (name, o) => (o.suffix ? name + SUFFIX : name),
    build: (o, ctx) => ({
      name: ctx.label,
      create: () => pool.createStream({
        mode: 'compress', level: o.level, nbWorkers: o.threads, checksumFlag: o.checksum,
        ...(o.windowLog !== undefined ? { windowLog: o.windowLog } : {}),
      }),
    }),
  };
  return def;
}

export function zstdDecompressStage(pool: ZstdThreadPool, limits: ZstdLimits) {
  const readers = { stripSuffix: boolOption(false) };
  type Options = ReturnType<typeof parse>;
  const parse = (raw: Record<string, unknown>, field: string) => readOptions(raw, readers, field, 'unzstd');
  const def: StageDefinition<Options> = {
    name: 'unzstd',
    sides: ['emission', 'reception'],
    parseOptions: parse,
    rename: (name, o) => (o.stripSuffix && name.endsWith(SUFFIX) && name.length > SUFFIX.length ? name.slice(0, -SUFFIX.length) : name),
    build: (_o, ctx) => ({
      name: ctx.label,
      create: () => pool.createStream({ mode: 'decompress', windowLogMax: Math.max(limits.maxWindowLog, 10) }),
    }),
  };
  return def;
}
