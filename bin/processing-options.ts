/**
 * `cargoport submit` processing options → `params.processing` (services/processing/README.md):
 *
 *   --processing FILE   JSON {emission: [...], reception: [...], pack: {...}} as the base
 *   --emit JSON         one emission stage, e.g. '{"stage":"checksum","algs":["sha256"]}' (repeatable)
 *   --receive JSON      one reception stage, e.g. '{"stage":"hook","hook":"fits-verify"}' (repeatable)
 *   --zstd              compress at emission (level 1), stored as NAME.zst
 *   --zstd-level N      the same at level N
 *   --unzstd            decompress at reception, dropping a .zst suffix (with --zstd: compressed on the wire only)
 *
 * Order: emission = file's, --emit…, zstd (compression last before the wire); reception = unzstd, --receive…,
 * file's. The port checks each stage's options again and names the field; these checks only catch typos early.
 */
import { readFileSync } from 'node:fs';
import type { ProcessingParams } from '../services/jobs/model.js';
import { intOption } from './manifest.js';
import { UsageError } from './usage-error.js';

export const processingOptions = {
  processing: { type: 'string' },
  emit: { type: 'string', multiple: true },
  receive: { type: 'string', multiple: true },
  zstd: { type: 'boolean' },
  'zstd-level': { type: 'string' },
  unzstd: { type: 'boolean' },
} as const;

export const processingOptionHelp = [
  '--zstd           compress at emission (zstd level 1, off the event loop); stored as NAME.zst',
  '--zstd-level N   the same at level N (the port allows up to processing.zstdMaxLevel)',
  '--unzstd         decompress at reception, dropping a .zst suffix; --zstd --unzstd = compressed on the wire only',
  '--emit JSON      add an emission stage, e.g. \'{"stage":"checksum","algs":["sha256"],"label":"raw"}\' (repeatable)',
  '--receive JSON   add a reception stage, e.g. \'{"stage":"hook","hook":"fits-verify"}\' (repeatable)',
  '--processing F   params.processing from a JSON file {emission, reception, pack}; the options above add to it',
];

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stageOf(text: string, option: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UsageError(`${option} must be a JSON stage object such as '{"stage":"zstd","level":3}' (got ${text.slice(0, 80)})`, option.slice(2));
  }
  if (!isMapping(v) || typeof v['stage'] !== 'string') throw new UsageError(`${option} must be a JSON object with a "stage" name (got ${text.slice(0, 80)})`, option.slice(2));
  return v;
}

function readProcessingFile(file: string): ProcessingParams {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new UsageError(`cannot read --processing ${file}: ${why}`, 'processing');
  }
  if (!isMapping(v)) throw new UsageError(`--processing ${file} must hold a JSON object {emission, reception, pack}`, 'processing');
  return v as ProcessingParams;
}

/** `params.processing` from the options over `base` (a manifest's), or undefined when none is asked for. */
export function processingFromOptions(values: Record<string, unknown>, base?: ProcessingParams): ProcessingParams | undefined {
  const fromFile = typeof values['processing'] === 'string' ? readProcessingFile(values['processing']) : undefined;
  const level = intOption(values['zstd-level'] as string | undefined, '--zstd-level', 1, 22);
  const zstd = values['zstd'] === true || level !== undefined;
  const emit = ((values['emit'] as string[] | undefined) ?? []).map((t) => stageOf(t, '--emit'));
  const receive = ((values['receive'] as string[] | undefined) ?? []).map((t) => stageOf(t, '--receive'));
  const unzstd = values['unzstd'] === true;
  if (!fromFile && !zstd && !unzstd && emit.length === 0 && receive.length === 0) return base;
  const p: ProcessingParams = { ...(base ?? {}), ...(fromFile ?? {}) };
  const emission = [...(p.emission ?? []), ...emit, ...(zstd ? [{ stage: 'zstd', level: level ?? 1, suffix: true }] : [])];
  const reception = [...(unzstd ? [{ stage: 'unzstd', stripSuffix: true }] : []), ...receive, ...(p.reception ?? [])];
  return {
    ...(emission.length ? { emission } : {}),
    ...(reception.length ? { reception } : {}),
    ...(p.pack !== undefined ? { pack: p.pack } : {}),
  };
}
