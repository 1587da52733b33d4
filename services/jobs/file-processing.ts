/**
 * Where the jobs domain meets the processing library: a file's location as the library's rules see it, and the
 * chain of one file (its own `processing`, else the job's, plus the operator's rules). Used by the submission
 * (to refuse a chain that cannot run, naming the field) and by the worker (per attempt).
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FileChain, FileLocation } from '../processing/chain-resolver.js';
import type { Processing } from '../processing/processing-service.js';
import type { ProcessingPlan } from '../processing/processing-spec.js';
import type { FileSpec, JobParams, ProcessingParams } from './model.js';

/** What the jobs domain needs of the library (the gateway and the worker pass their Processing). */
export type FileProcessing = Pick<Processing, 'parseJobSpec' | 'resolve'>;

/** A URL as the library's rules name it: endpoint `local` or `https://host:port` (port always given), and the path. */
export function fileLocationOf(url: string): FileLocation {
  const u = new URL(url);
  if (u.protocol === 'file:') return { endpoint: 'local', path: fileURLToPath(u) };
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  let path: string;
  try {
    path = decodeURIComponent(u.pathname);
  } catch {
    path = u.pathname;
  }
  return { endpoint: `${u.protocol}//${u.hostname}:${port}`, path };
}

/** `url` with its path replaced by `path` (the chain's destination after renames such as `.zst`). */
export function withPath(url: string, path: string): string {
  const u = new URL(url);
  if (u.protocol === 'file:') return pathToFileURL(path).href;
  u.pathname = path.split('/').map(encodeURIComponent).join('/');
  return u.href;
}

/** True when `raw` asks for nothing (absent, the `[]` of jobs stored before processing existed, or empty lists). */
export function noProcessing(raw: ProcessingParams | readonly unknown[] | undefined): boolean {
  if (raw === undefined || Array.isArray(raw)) return true;
  const r = raw as ProcessingParams;
  return !r.emission?.length && !r.reception?.length && r.pack === undefined;
}

/** The plan of one file: its own processing (which replaces the job's) or the job's. */
export function planOf(p: FileProcessing, params: Pick<JobParams, 'processing'>, spec: Pick<FileSpec, 'processing'>, fileField?: string): ProcessingPlan {
  if (spec.processing !== undefined) return p.parseJobSpec(spec.processing, fileField ?? 'files[].processing');
  return p.parseJobSpec(noProcessing(params.processing) ? undefined : params.processing, 'params.processing');
}

/** The chain of one file between its source and destination URLs. */
export function chainOf(p: FileProcessing, plan: ProcessingPlan, source: string, destination: string): FileChain {
  return p.resolve(plan, fileLocationOf(source), fileLocationOf(destination));
}
