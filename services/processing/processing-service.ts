/**
 * The processing library's one entry point for the shells (worker, gateway, storage endpoint, CLI):
 *
 *   const processing = await createProcessing(cfg);          // at start-up: hooks and rules checked, modules loaded
 *   const plan = processing.parseJobSpec(params.processing);  // at submission (and again in the worker)
 *   const chain = processing.resolve(plan, source, destination);
 *   const { stages, recorder } = chain.build({ signal, gate });  // per attempt → TransferControl.stages
 *   …
 *   await processing.close();                                // terminates the zstd threads
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Config } from '../../config/schema.js';
import { ConfigError } from '../../config/load.js';
import { StageRegistry } from './stage-registry.js';
import { ZstdThreadPool } from './zstd-thread-pool.js';
import { zstdCompressStage, zstdDecompressStage } from './zstd-stages.js';
import { checksumStage } from './checksum-stage.js';
import { hookStage } from './hook-stage.js';
import { untarStage } from './untar-stage.js';
import { loadHookModules, parseSiteHooks, type SiteHook } from './site-hooks.js';
import { parseProcessingSpec, parseStageList, type PackOptions, type ProcessingPlan } from './processing-spec.js';
import { createTarPack, type PackedMember, type PackMember } from './tar-pack.js';
import { pipeline, type Readable } from 'node:stream';
import { resolveFileChain, type FileChain, type FileLocation, type ProcessingRule } from './chain-resolver.js';
import { isCargoError } from '../../errors/cargo-error.js';

export interface Processing {
  readonly registry: StageRegistry;
  readonly hooks: ReadonlyMap<string, SiteHook>;
  readonly rules: readonly ProcessingRule[];
  readonly zstd: ZstdThreadPool;
  readonly workDir: string;
  /** Validates a job's `params.processing` (CARGO_ERR_BAD_PROCESSING / CARGO_ERR_UNKNOWN_STAGE naming the field). */
  parseJobSpec(raw: unknown, field?: string): ProcessingPlan;
  /** The stages of one file. */
  resolve(plan: ProcessingPlan, source: FileLocation, destination: FileLocation): FileChain;
  /**
   * One archive of a packed job as a byte stream: the members as tar, zstd-compressed on the pool when
   * `pack.zstdLevel` > 0. `suffix` is what the archive's name ends with (`.tar` or `.tar.zst`).
   */
  packArchive(members: Iterable<PackMember> | AsyncIterable<PackMember>, pack: PackOptions, opts?: { signal?: AbortSignal; onMember?(m: PackedMember): void }): { body: Readable; suffix: string };
  close(): Promise<void>;
}

type ProcessingConfig = Config['processing'];

function parseRules(raw: readonly unknown[], registry: StageRegistry): ProcessingRule[] {
  return raw.map((r, i) => {
    const field = `processing.rules[${i}]`;
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new ConfigError(`${field}: must be a mapping`, field);
    const rule = r as Record<string, unknown>;
    for (const k of Object.keys(rule)) {
      if (!['endpoint', 'pathPrefix', 'emission', 'reception'].includes(k)) throw new ConfigError(`${field}.${k}: unknown key (endpoint, pathPrefix, emission, reception)`, `${field}.${k}`);
    }
    const endpoint = rule['endpoint'];
    if (endpoint !== undefined && (typeof endpoint !== 'string' || !(endpoint === 'local' || endpoint === 'storage' || /^https?:\/\/[^/]+$/.test(endpoint)))) {
      throw new ConfigError(`${field}.endpoint: must be local, storage (uploads into this port's storage endpoint) or an origin such as https://host:port`, `${field}.endpoint`);
    }
    const pathPrefix = rule['pathPrefix'];
    if (pathPrefix !== undefined && (typeof pathPrefix !== 'string' || !pathPrefix.startsWith('/'))) {
      throw new ConfigError(`${field}.pathPrefix: must be an absolute path`, `${field}.pathPrefix`);
    }
    try {
      return {
        field,
        ...(endpoint !== undefined ? { endpoint: endpoint as string } : {}),
        ...(pathPrefix !== undefined ? { pathPrefix: pathPrefix as string } : {}),
        emission: parseStageList(rule['emission'], 'emission', registry, `${field}.emission`),
        reception: parseStageList(rule['reception'], 'reception', registry, `${field}.reception`),
      };
    } catch (e) {
      // The stage checks speak of a job's input; in a config file they stop the start-up instead.
      if (isCargoError(e)) throw new ConfigError(e.message, e.field);
      throw e;
    }
  });
}

export async function createProcessing(cfg: Pick<Config, 'dataDir' | 'processing'>): Promise<Processing> {
  const p: ProcessingConfig = cfg.processing;
  const workDir = p.workDir || join(cfg.dataDir, 'processing');
  const hooks = parseSiteHooks(p.hooks, { timeoutSec: p.hookTimeoutSec });
  await loadHookModules(hooks);
  if ([...hooks.values()].some((h) => h.kind === 'exec')) mkdirSync(workDir, { recursive: true, mode: 0o700 });
  const zstd = new ZstdThreadPool({ threads: p.threads });
  const limits = { maxLevel: p.zstdMaxLevel, maxWorkers: p.zstdMaxWorkers, maxWindowLog: p.zstdMaxWindowLog };
  const registry = new StageRegistry()
    .register(zstdCompressStage(zstd, limits))
    .register(zstdDecompressStage(zstd, limits))
    .register(checksumStage)
    .register(untarStage({ maxMemberBytes: p.tarMaxMemberBytes, maxNameBytes: p.tarMaxNameBytes, maxMembers: p.tarMaxMembers }))
    .register(hookStage(hooks, { workDir, stderrBytes: p.hookStderrBytes }));
  const rules = parseRules(p.rules, registry);
  return {
    registry, hooks, rules, zstd, workDir,
    parseJobSpec: (raw, field) => parseProcessingSpec(raw, registry, { maxMembers: p.tarMaxMembers, zstdMaxLevel: p.zstdMaxLevel }, field),
    resolve: (plan, source, destination) => resolveFileChain(plan, rules, source, destination),
    packArchive(members, pack, opts = {}) {
      const tarStream = createTarPack(members, {
        checksums: pack.checksums, maxMembers: pack.maxMembers,
        ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onMember ? { onMember: opts.onMember } : {}),
      });
      if (pack.zstdLevel === 0) return { body: tarStream, suffix: '.tar' };
      const z = zstd.createStream({ mode: 'compress', level: pack.zstdLevel });
      // pipeline (not pipe): a failure on either side destroys both, so a failed pack never looks like a short archive.
      return { body: pipeline(tarStream, z, () => undefined) as unknown as Readable, suffix: '.tar.zst' };
    },
    close: () => zstd.close(),
  };
}
