/**
 * A job's processing (`params.processing`), validated against the stage registry:
 *
 *   { "emission":  [ {"stage": "checksum", "algs": ["sha256"], "label": "raw"}, {"stage": "zstd", "level": 3, "suffix": true} ],
 *     "reception": [ {"stage": "hook", "hook": "fits-verify"} ],
 *     "pack": { "maxMembers": 2000, "maxBytes": 268435456, "zstdLevel": 1, "checksums": ["adler32"] } }
 *
 * `emission` runs before the bytes leave the source, `reception` after they arrive and before the file is
 * published; `pack` ships the job's files as tar archives (see pack-plan.ts). `processingJsonSchema` is the
 * envelope for the gateway's JSON-schema validation; `parseProcessingSpec` does the rest (each stage's options),
 * with errors naming the field, e.g. `params.processing.emission[1].level: must be an integer from 1 to 19`.
 */
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import type { StageSide } from './stream-stage.js';
import type { StageDefinition, StageRegistry } from './stage-registry.js';
import { badProcessing } from './processing-errors.js';
import { algListOption, intOption, readOptions } from './stage-options.js';

/** Most stages on one side of one file. */
export const MAX_STAGES_PER_SIDE = 8;
const STAGE_NAME = '^[a-z][a-z0-9_-]{0,31}$';

const stageListSchema = {
  type: 'array',
  maxItems: MAX_STAGES_PER_SIDE,
  items: {
    type: 'object',
    required: ['stage'],
    properties: { stage: { type: 'string', pattern: STAGE_NAME } },
    maxProperties: 16,
  },
} as const;

/** The envelope of `params.processing` for the gateway's schema; stage options are checked by parseProcessingSpec. */
export const processingJsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    emission: stageListSchema,
    reception: stageListSchema,
    pack: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxMembers: { type: 'integer', minimum: 1 },
        maxBytes: { type: 'integer', minimum: 1 },
        zstdLevel: { type: 'integer', minimum: 0, maximum: 22 },
        checksums: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'string' } },
      },
    },
  },
} as const;

/** One validated stage reference. */
export interface PlannedStage {
  readonly definition: StageDefinition<unknown>;
  readonly options: unknown;
  /** Where it came from, for errors: `params.processing.emission[0]` or `processing.rules[2].reception[0]`. */
  readonly field: string;
}

export interface PackOptions {
  /** Members per archive. */
  readonly maxMembers: number;
  /** Bytes of member data per archive (a member larger than this travels alone). */
  readonly maxBytes: number;
  /** 0: plain tar; otherwise the archive is zstd-compressed at this level (`.tar.zst`). */
  readonly zstdLevel: number;
  /** Per-member checksums carried in the archive and verified on unpacking. */
  readonly checksums: ChecksumAlg[];
}

export interface ProcessingPlan {
  readonly emission: readonly PlannedStage[];
  readonly reception: readonly PlannedStage[];
  readonly pack?: PackOptions;
}

export interface SpecLimits {
  readonly maxMembers: number;
  readonly zstdMaxLevel: number;
}

export const EMPTY_PLAN: ProcessingPlan = { emission: [], reception: [] };

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validates a list of stage references for `side`. */
export function parseStageList(raw: unknown, side: StageSide, registry: StageRegistry, field: string): PlannedStage[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw badProcessing(field, 'must be a list of stages such as [{"stage": "zstd", "level": 3}]');
  if (raw.length > MAX_STAGES_PER_SIDE) throw badProcessing(field, `has ${raw.length} stages, at most ${MAX_STAGES_PER_SIDE} allowed`);
  return raw.map((ref: unknown, i) => {
    const f = `${field}[${i}]`;
    if (!isMapping(ref)) throw badProcessing(f, 'must be an object such as {"stage": "zstd"}');
    if (typeof ref['stage'] !== 'string' || !new RegExp(STAGE_NAME).test(ref['stage'])) {
      throw badProcessing(`${f}.stage`, 'must name a stage (zstd, unzstd, checksum, untar, hook…)');
    }
    const definition = registry.get(ref['stage'], `${f}.stage`);
    if (!definition.sides.includes(side)) {
      throw badProcessing(`${f}.stage`, `stage "${definition.name}" cannot run at ${side} (only ${definition.sides.join(', ')})`);
    }
    const options = definition.parseOptions(ref, f);
    definition.checkSide?.(options, side, `${f}.stage`);
    return { definition, options, field: f };
  });
}

function parsePack(raw: unknown, limits: SpecLimits, field: string): PackOptions | undefined {
  if (raw === undefined) return undefined;
  if (!isMapping(raw)) throw badProcessing(field, 'must be an object such as {"maxMembers": 1000}');
  return readOptions(raw, {
    maxMembers: intOption(1, limits.maxMembers, Math.min(1000, limits.maxMembers)),
    maxBytes: intOption(1, Number.MAX_SAFE_INTEGER, 256 * 1024 * 1024),
    zstdLevel: intOption(0, limits.zstdMaxLevel, 0),
    checksums: algListOption(['adler32']),
  }, field, 'pack');
}

/** Validates a job's `params.processing`; absent or empty = no processing. */
export function parseProcessingSpec(raw: unknown, registry: StageRegistry, limits: SpecLimits, field = 'params.processing'): ProcessingPlan {
  if (raw === undefined || raw === null) return EMPTY_PLAN;
  if (!isMapping(raw)) throw badProcessing(field, 'must be an object {emission?, reception?, pack?}');
  for (const key of Object.keys(raw)) {
    if (key !== 'emission' && key !== 'reception' && key !== 'pack') throw badProcessing(`${field}.${key}`, 'unknown key (emission, reception, pack)');
  }
  const pack = parsePack(raw['pack'], limits, `${field}.pack`);
  return {
    emission: parseStageList(raw['emission'], 'emission', registry, `${field}.emission`),
    reception: parseStageList(raw['reception'], 'reception', registry, `${field}.reception`),
    ...(pack ? { pack } : {}),
  };
}
