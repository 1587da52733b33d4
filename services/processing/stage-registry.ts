/**
 * The stage registry: every stage a job or an operator rule may name, with its options reader, its sides, how it
 * renames the file (Content-Encoding-style suffixes) and how it builds the StreamStage for one file. Built-in
 * stages and the operator's hooks are registered here; a new stage is a new definition, not an edit elsewhere.
 */
import type { Gate } from '../throttle/pause-gate.js';
import type { StageSide, StreamStage } from './stream-stage.js';
import type { StageRecorder } from './stage-recorder.js';
import { ProcessingError } from './processing-errors.js';

/** What a stage is given when it is built for one file. */
export interface StageBuildContext {
  readonly side: StageSide;
  /** The stage's name in errors and records: `zstd`, `hook:scan`, with its position when repeated. */
  readonly label: string;
  /** The destination's path as it will be published (after every rename); hooks get its last segment. */
  readonly fileName: string;
  /** Aborting the transfer tears every stage down (child processes killed, thread sessions released). */
  readonly signal?: AbortSignal;
  /** Admin pause: hooks do not count closed time against their time limit. */
  readonly gate?: Gate;
  /** Where observing stages (checksums) report, per file. */
  readonly recorder: StageRecorder;
}

export interface StageDefinition<O = unknown> {
  /** The name jobs use: `{stage: NAME, …options}`. */
  readonly name: string;
  /** Where it may run. */
  readonly sides: readonly StageSide[];
  /** Validates the options of one reference (`field` names it in errors). */
  parseOptions(raw: Record<string, unknown>, field: string): O;
  /** The destination path after this stage (e.g. `+ .zst`); absent = unchanged. */
  rename?(path: string, options: O): string;
  /** Only where the destination is a local file (the stage writes beside it, e.g. untar's members). */
  readonly localOnly?: boolean;
  /** Further checks that depend on the side (a hook the operator allows at reception only). */
  checkSide?(options: O, side: StageSide, field: string): void;
  build(options: O, ctx: StageBuildContext): StreamStage;
}

export class StageRegistry {
  private readonly defs = new Map<string, StageDefinition<unknown>>();

  register<O>(def: StageDefinition<O>): this {
    if (this.defs.has(def.name)) {
      throw new ProcessingError('CARGO_ERR_BAD_PROCESSING', `stage "${def.name}" is registered twice`);
    }
    this.defs.set(def.name, def as StageDefinition<unknown>);
    return this;
  }

  /** The definition named `name`, or CARGO_ERR_UNKNOWN_STAGE naming the field and listing the known names. */
  get(name: string, field: string): StageDefinition<unknown> {
    const def = this.defs.get(name);
    if (!def) {
      throw new ProcessingError('CARGO_ERR_UNKNOWN_STAGE',
        `${field}: unknown stage ${JSON.stringify(name)} (known: ${[...this.defs.keys()].join(', ')})`, { field });
    }
    return def;
  }

  names(): string[] {
    return [...this.defs.keys()];
  }
}
