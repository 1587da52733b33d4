/**
 * Resolving the stages of one file: the job's processing plan, plus the operator's rules (processing.rules) for the
 * file's source (emission) and destination (reception), in a fixed order:
 *
 *   emission  = source rule's emission stages,  then the job's emission stages
 *   reception = the job's reception stages,     then destination rule's reception stages
 *
 * so the operator's emission stages see the raw source bytes and the operator's reception stages see the final
 * bytes before they are published (a site's checksum or validation hook cannot be bypassed by a job). Of the rules
 * matching one side, the most specific applies: one naming the endpoint beats one that does not, then the longest
 * path prefix; ties go to the first in the config.
 */
import { posix } from 'node:path';
import type { Gate } from '../throttle/pause-gate.js';
import type { StageSide, StreamStage } from './stream-stage.js';
import type { PlannedStage, ProcessingPlan } from './processing-spec.js';
import { StageRecorder } from './stage-recorder.js';
import { gateStage } from './gate-stage.js';
import { badProcessing } from './processing-errors.js';

/** Where a file is: its endpoint (`https://host:port` origin, or `local`) and path. */
export interface FileLocation {
  readonly endpoint: string;
  readonly path: string;
}

export interface ProcessingRule {
  readonly endpoint?: string;
  readonly pathPrefix?: string;
  readonly emission: readonly PlannedStage[];
  readonly reception: readonly PlannedStage[];
  /** `processing.rules[3]`, for messages. */
  readonly field: string;
}

export interface ChainRunContext {
  readonly signal?: AbortSignal;
  readonly gate?: Gate;
}

export interface BuiltChain {
  /** For the engine's TransferControl.stages: the gate, then emission, then reception stages. */
  readonly stages: readonly StreamStage[];
  readonly emission: readonly StreamStage[];
  readonly reception: readonly StreamStage[];
  /** What observing stages recorded (checksums, unpack counts), for the file's attempt. */
  readonly recorder: StageRecorder;
}

export interface FileChain {
  readonly emission: readonly PlannedStage[];
  readonly reception: readonly PlannedStage[];
  /** The destination path after every stage's renaming (`+ .zst`, `+ .manifest.jsonl`…). */
  readonly destinationPath: string;
  /** No stage at all: run the transfer as a plain one (ranges, multi-stream, resume stay available). */
  readonly empty: boolean;
  build(ctx?: ChainRunContext): BuiltChain;
}

function segmentPrefix(prefix: string, path: string): boolean {
  const p = prefix.endsWith('/') ? prefix : prefix + '/';
  return path === prefix || path.startsWith(p) || prefix === '/';
}

/** The most specific rule for `loc`, or undefined. */
export function matchRule(rules: readonly ProcessingRule[], loc: FileLocation): ProcessingRule | undefined {
  let best: ProcessingRule | undefined;
  let bestScore = -1;
  for (const r of rules) {
    if (r.endpoint !== undefined && r.endpoint !== loc.endpoint) continue;
    if (r.pathPrefix !== undefined && !segmentPrefix(r.pathPrefix, loc.path)) continue;
    const score = (r.endpoint !== undefined ? 1_000_000 : 0) + (r.pathPrefix?.length ?? 0);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}

export function resolveFileChain(plan: ProcessingPlan, rules: readonly ProcessingRule[], source: FileLocation, destination: FileLocation): FileChain {
  const emission = [...(matchRule(rules, source)?.emission ?? []), ...plan.emission];
  const reception = [...plan.reception, ...(matchRule(rules, destination)?.reception ?? [])];
  let destinationPath = destination.path;
  for (const s of [...emission, ...reception]) {
    if (s.definition.localOnly && destination.endpoint !== 'local') {
      throw badProcessing(s.field, `stage "${s.definition.name}" needs a local (file://) destination`);
    }
    if (s.definition.rename) destinationPath = s.definition.rename(destinationPath, s.options);
  }
  const labels = new Map<string, number>();
  const label = (s: PlannedStage, side: StageSide) => {
    const base = `${side}:${s.definition.name}`;
    const n = (labels.get(base) ?? 0) + 1;
    labels.set(base, n);
    return n === 1 ? base : `${base}#${n}`;
  };
  return {
    emission,
    reception,
    destinationPath,
    empty: emission.length === 0 && reception.length === 0,
    build(ctx = {}) {
      labels.clear();
      const recorder = new StageRecorder();
      const make = (side: StageSide) => (s: PlannedStage): StreamStage => s.definition.build(s.options, {
        side, label: label(s, side), fileName: posix.normalize(destinationPath), recorder,
        ...(ctx.signal ? { signal: ctx.signal } : {}), ...(ctx.gate ? { gate: ctx.gate } : {}),
      });
      const e = emission.map(make('emission'));
      const r = reception.map(make('reception'));
      return { stages: [gateStage(ctx.gate, ctx.signal), ...e, ...r], emission: e, reception: r, recorder };
    },
  };
}
