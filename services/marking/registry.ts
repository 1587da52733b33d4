/**
 * The scitags experiment/activity registry (scitags.org api.json): a copy bundled with the port
 * (scitags-registry.json, modified 2025-09-04), optionally replaced by a fresh one fetched from a configured URL
 * (marking.registryUrl). Names are matched case-insensitively (api_gen.py lower-cases experiment names but keeps
 * activity names as written, so users type both ways). Ids outside 1..1023 / 1..63 are ignored, as XRootD's
 * LoadJson does: they could not be carried in a flow id.
 */
import bundled from './scitags-registry.json' with { type: 'json' };
import { CargoError } from '../../errors/cargo-error.js';

export interface RegistryActivity { activityName: string; activityId: number }
export interface RegistryExperiment { expName: string; expId: number; activities: RegistryActivity[] }
export interface RegistryDocument { experiments: RegistryExperiment[]; version: number; modified?: string }

export class ScitagsRegistry {
  private readonly byName = new Map<string, RegistryExperiment>();
  private readonly byId = new Map<number, RegistryExperiment>();

  constructor(readonly doc: RegistryDocument, readonly origin: string) {
    for (const e of doc.experiments) {
      if (!Number.isInteger(e.expId) || e.expId < 1 || e.expId > 1023) continue;
      const clean = { ...e, activities: e.activities.filter((a) => Number.isInteger(a.activityId) && a.activityId >= 1 && a.activityId <= 63) };
      this.byName.set(e.expName.toLowerCase(), clean);
      this.byId.set(e.expId, clean);
    }
  }

  get modified(): string | undefined {
    return this.doc.modified;
  }

  experiments(): RegistryExperiment[] {
    return [...this.byId.values()].sort((a, b) => a.expId - b.expId);
  }

  /** Experiment id of a name (`atlas`, `ATLAS`) or a decimal id. */
  experimentId(nameOrId: string | number): number | undefined {
    if (typeof nameOrId === 'number') return this.byId.has(nameOrId) ? nameOrId : undefined;
    const s = nameOrId.trim();
    if (/^\d+$/.test(s)) return this.experimentId(Number(s));
    return this.byName.get(s.toLowerCase())?.expId;
  }

  /** Activity id of a name (`Production Output`) or decimal id within an experiment. */
  activityId(expId: number, nameOrId: string | number): number | undefined {
    const e = this.byId.get(expId);
    if (!e) return undefined;
    if (typeof nameOrId === 'number') return e.activities.some((a) => a.activityId === nameOrId) ? nameOrId : undefined;
    const s = nameOrId.trim();
    if (/^\d+$/.test(s)) return this.activityId(expId, Number(s));
    return e.activities.find((a) => a.activityName.toLowerCase() === s.toLowerCase())?.activityId;
  }

  /** Names for display; unknown ids come back as their numbers. */
  names(expId: number, actId: number): { experiment: string; activity: string } {
    const e = this.byId.get(expId);
    return {
      experiment: e?.expName ?? String(expId),
      activity: e?.activities.find((a) => a.activityId === actId)?.activityName ?? String(actId),
    };
  }
}

/** Checks the outer shape of a registry document (a refreshed copy replaces the bundled one only if it passes). */
export function parseRegistry(raw: unknown, origin: string): ScitagsRegistry {
  const d = raw as Partial<RegistryDocument> | null;
  const ok = d !== null && typeof d === 'object' && d.version === 1 && Array.isArray(d.experiments) && d.experiments.every((e) =>
    e !== null && typeof e === 'object' && typeof e.expName === 'string' && Number.isInteger(e.expId) && Array.isArray(e.activities) &&
    e.activities.every((a) => a !== null && typeof a === 'object' && typeof a.activityName === 'string' && Number.isInteger(a.activityId)));
  if (!ok) {
    throw new CargoError('CARGO_ERR_SCITAGS_REGISTRY', `the scitags registry from ${origin} is not a version-1 registry document`, { field: 'marking.registryUrl' });
  }
  return new ScitagsRegistry(d as RegistryDocument, origin);
}

export const bundledRegistry = new ScitagsRegistry(bundled as RegistryDocument, 'bundled');

/** Fetches the registry from `url` (scitags.org/api.json or a site mirror); throws CARGO_ERR_SCITAGS_REGISTRY. */
export async function fetchRegistry(url: string, timeoutMs = 10_000): Promise<ScitagsRegistry> {
  let body: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new CargoError('CARGO_ERR_SCITAGS_REGISTRY', `HTTP ${res.status}`);
    body = await res.json();
  } catch (e) {
    throw new CargoError('CARGO_ERR_SCITAGS_REGISTRY', `the scitags registry could not be fetched from ${url}: ${(e as Error).message}`, { field: 'marking.registryUrl' });
  }
  return parseRegistry(body, url);
}
