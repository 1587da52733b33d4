/**
 * Which flow a transfer belongs to, from (in order): an incoming `SciTag` header; `TransferHeaderSciTag` (ignored
 * when `SciTag` is also present, as the spec says, storm-webdav TransferFilterSupport); a `scitag.flow` query
 * parameter (XRootD's CGI); the job's `scitag`; the job's experiment / activity names; the operator's path
 * defaults. An invalid incoming value marks as experiment 0 / activity 0 (specs/scitags.md §2); invalid job values
 * never get here (the submission is rejected).
 */
import { CargoError } from '../../errors/cargo-error.js';
import { parseIncomingFlowId, tagOfFlowId, type FlowTag } from './flow-id.js';
import type { ScitagsRegistry } from './registry.js';

export interface FlowSources {
  sciTagHeader?: string;
  transferHeaderSciTag?: string;
  /** The raw `scitag.flow` query parameter value. */
  queryFlow?: string;
  jobScitag?: number;
  experiment?: string;
  activity?: string;
  /** Namespace paths the transfer touches, most specific first (destination path, then source path). */
  paths?: readonly string[];
}

export type FlowSource = 'SciTag' | 'TransferHeaderSciTag' | 'scitag.flow' | 'job' | 'names' | 'path';

export interface ResolvedFlow extends FlowTag {
  from: FlowSource;
}

export interface PathDefault extends FlowTag {
  prefix: string;
}

/**
 * Parses `marking.pathDefaults` entries, `PREFIX=EXPERIMENT:ACTIVITY` with names or ids
 * (`/atlas/prod/=atlas:Production Output`, `/cms/=3:14`). Longest prefix first.
 */
export function parsePathDefaults(entries: readonly string[], registry: ScitagsRegistry): PathDefault[] {
  const out = entries.map((e) => {
    const m = /^(\/[^=]*)=([^:]+):(.+)$/.exec(e.trim());
    const experiment = m ? registry.experimentId(m[2]!) : undefined;
    const activity = m && experiment !== undefined ? registry.activityId(experiment, m[3]!) : undefined;
    if (!m || experiment === undefined || activity === undefined) {
      throw new CargoError('CARGO_ERR_CONFIG', `marking.pathDefaults entry "${e}" is not /PREFIX=EXPERIMENT:ACTIVITY with names or ids from the scitags registry`, { field: 'marking.pathDefaults' });
    }
    return { prefix: m[1]!, experiment, activity };
  });
  return out.sort((a, b) => b.prefix.length - a.prefix.length);
}

/** Experiment / activity names (or ids) → tag; throws CARGO_ERR_BAD_SCITAG naming `field`. */
export function tagFromNames(registry: ScitagsRegistry, experiment: string, activity: string | undefined, field: string): FlowTag {
  const exp = registry.experimentId(experiment);
  if (exp === undefined) throw new CargoError('CARGO_ERR_BAD_SCITAG', `experiment "${experiment}" is not in the scitags registry`, { field });
  const act = registry.activityId(exp, activity ?? 'default');
  if (act === undefined) throw new CargoError('CARGO_ERR_BAD_SCITAG', `activity "${activity}" is not an activity of ${experiment} in the scitags registry`, { field });
  return { experiment: exp, activity: act };
}

export function resolveFlow(s: FlowSources, registry: ScitagsRegistry, pathDefaults: readonly PathDefault[]): ResolvedFlow | undefined {
  const header = parseIncomingFlowId(s.sciTagHeader);
  if (header) return { ...header, from: 'SciTag' };
  const th = parseIncomingFlowId(s.transferHeaderSciTag);
  if (th) return { ...th, from: 'TransferHeaderSciTag' };
  const q = parseIncomingFlowId(s.queryFlow);
  if (q) return { ...q, from: 'scitag.flow' };
  if (s.jobScitag !== undefined) return { ...tagOfFlowId(s.jobScitag), from: 'job' };
  if (s.experiment !== undefined) return { ...tagFromNames(registry, s.experiment, s.activity, 'experiment'), from: 'names' };
  for (const p of s.paths ?? []) {
    const d = pathDefaults.find((x) => p.startsWith(x.prefix));
    if (d) return { experiment: d.experiment, activity: d.activity, from: 'path' };
  }
  return undefined;
}
