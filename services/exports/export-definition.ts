/**
 * An export definition: what a recurring (nightly) export selects, where it sends it, when, and with which job
 * parameters. `exportDefinitionSchema` is what the REST API validates bodies with (and documents in the OpenAPI);
 * `checkDefinition` then does what a schema cannot: cron syntax and time zone, template tokens, destination URLs,
 * the deadline's form.
 */
import { getNextMillis } from 'bullmq';
import { paramsSchema } from '../jobs/submission-schema.js';
import { checkEndpointUrl } from '../jobs/submission.js';
import { CargoError } from '../../errors/cargo-error.js';
import { checkTemplate, renderTemplate } from './date-template.js';
import { InvalidExportError } from './export-errors.js';

export const EXPORT_NAME = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

export type ExportSchedule = { cron: string; timezone?: string } | { everyMinutes: number };

export interface ExportSelection {
  /** Namespace path inside a configured local area (auth.localAreas). */
  path?: string;
  /** Host directory inside a configured local area. */
  dir?: string;
  /** Sub-directory template below path/dir, e.g. `{yesterday}` (the directory named after yesterday's date). */
  subdir?: string;
  /** Glob on the path relative to path/dir, or to subdir when given (minimatch; default every file). */
  glob?: string;
  /** `since-last-success` (default): only files modified since the last successful run began selecting; `all`. */
  window?: 'all' | 'since-last-success';
  /** A manifest (JSON {files: [{source, path, size?, checksum?}]} or lines `SOURCE_URL RELATIVE_PATH`) instead of a directory. */
  manifestUrl?: string;
}

export interface ExportParams {
  priority?: number;
  retries?: number;
  retryDelaySec?: number;
  verifyChecksum?: 'none' | 'source' | 'destination' | 'both';
  /** Checksum algorithm computed for every file (adler32, crc32c, md5, sha256). */
  checksum?: string;
  existing?: 'fail' | 'overwrite' | 'skip-identical';
  streams?: number;
  connections?: number;
  bandwidthBytesPerSec?: number;
  processing?: string[];
  copyMode?: 'auto' | 'pull' | 'push' | 'streamed';
  experiment?: string;
  activity?: string;
  scitag?: number;
  /** Local time (HH:MM, the export's time zone) a run must be finished by, the first such time after it was due. */
  deadline?: string;
}

export interface ExportDefinition {
  name: string;
  description?: string;
  schedule: ExportSchedule;
  selection: ExportSelection;
  destinations: string[];
  params?: ExportParams;
}

const str = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
const p = paramsSchema.properties;

export const exportDefinitionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'schedule', 'selection', 'destinations'],
  properties: {
    name: { type: 'string', pattern: EXPORT_NAME },
    description: { type: 'string', maxLength: 1000 },
    schedule: {
      oneOf: [
        {
          type: 'object', additionalProperties: false, required: ['cron'],
          properties: { cron: { ...str(200), description: 'cron expression (5 or 6 fields), evaluated in timezone' }, timezone: { ...str(64), description: 'IANA time zone (default UTC)' } },
        },
        { type: 'object', additionalProperties: false, required: ['everyMinutes'], properties: { everyMinutes: { type: 'integer', minimum: 1, maximum: 10080 } } },
      ],
    },
    selection: {
      type: 'object', additionalProperties: false,
      properties: {
        path: { ...str(4096), description: 'namespace path inside a local area (auth.localAreas)' },
        dir: { ...str(4096), description: 'host directory inside a local area' },
        subdir: { ...str(256), description: 'template below path/dir: {date} or {yesterday} with an optional :YYYY-MM-DD format' },
        glob: { ...str(512), description: 'glob on the path below path/dir, or below subdir when given (default **)' },
        window: { type: 'string', enum: ['all', 'since-last-success'] },
        manifestUrl: { ...str(8192), description: 'https URL of a manifest: JSON {files: [{source, path, size?, checksum?}]} or lines "SOURCE_URL RELATIVE_PATH"' },
      },
    },
    destinations: { type: 'array', minItems: 1, maxItems: 16, items: { ...str(8192), description: 'URL template; {path} = the file\'s relative path (appended when absent), {date}, {yesterday}, {name}' } },
    params: {
      type: 'object', additionalProperties: false,
      properties: {
        priority: p.priority, retries: p.retries, retryDelaySec: p.retryDelaySec, verifyChecksum: p.verifyChecksum, existing: p.existing,
        streams: p.streams, connections: p.connections, bandwidthBytesPerSec: p.bandwidthBytesPerSec, processing: p.processing, copyMode: p.copyMode,
        experiment: p.experiment,
        checksum: { type: 'string', enum: ['adler32', 'crc32c', 'md5', 'sha256'], description: 'checksum computed for every file' },
        activity: { type: 'string', maxLength: 128 },
        scitag: { type: 'integer', minimum: 65, maximum: 65535 },
        deadline: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'finish by this local time (HH:MM)' },
      },
    },
  },
} as const;

export function timeZoneOf(s: ExportSchedule): string {
  return 'cron' in s ? s.timezone ?? 'UTC' : 'UTC';
}

/** The checks a schema cannot express; throws InvalidExportError naming the field. */
export function checkDefinition(d: ExportDefinition): void {
  const s = d.schedule;
  if ('cron' in s) {
    const tz = s.timezone ?? 'UTC';
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
    } catch {
      throw new InvalidExportError(`schedule.timezone: unknown time zone ${JSON.stringify(tz)}`, 'schedule.timezone');
    }
    let next: number | undefined;
    try {
      next = getNextMillis(Date.now(), { pattern: s.cron, tz });
    } catch (e) {
      throw new InvalidExportError(`schedule.cron: ${(e as Error).message}`, 'schedule.cron');
    }
    if (next === undefined) throw new InvalidExportError('schedule.cron: the expression never fires', 'schedule.cron');
  }
  const sel = d.selection;
  const roots = [sel.path, sel.dir, sel.manifestUrl].filter((x) => x !== undefined).length;
  if (roots !== 1) throw new InvalidExportError('selection needs exactly one of path, dir or manifestUrl', 'selection');
  if (sel.manifestUrl !== undefined) {
    if (!/^https?:\/\//.test(sel.manifestUrl)) throw new InvalidExportError('selection.manifestUrl must be an http(s) URL', 'selection.manifestUrl');
    if (sel.subdir !== undefined || sel.glob !== undefined) throw new InvalidExportError('selection.subdir and glob apply to path/dir, not to a manifest', 'selection.manifestUrl');
    checkTemplate(sel.manifestUrl, 'selection.manifestUrl', false);
  }
  for (const [k, v] of [['path', sel.path], ['dir', sel.dir]] as const) {
    if (v === undefined) continue;
    if (!v.startsWith('/')) throw new InvalidExportError(`selection.${k} must be absolute`, `selection.${k}`);
    if (v.split('/').includes('..')) throw new InvalidExportError(`selection.${k} must not contain ".."`, `selection.${k}`);
  }
  if (sel.subdir !== undefined) {
    checkTemplate(sel.subdir, 'selection.subdir', false);
    if (sel.subdir.startsWith('/') || sel.subdir.split('/').includes('..')) throw new InvalidExportError('selection.subdir must be relative, without ".."', 'selection.subdir');
  }
  if (sel.glob !== undefined && sel.glob.split('/').includes('..')) throw new InvalidExportError('selection.glob must not contain ".."', 'selection.glob');
  const seen = new Set<string>();
  d.destinations.forEach((t, i) => {
    const field = `destinations[${i}]`;
    checkTemplate(t, field, true);
    if (seen.has(t)) throw new InvalidExportError(`${field} repeats an earlier destination`, field);
    seen.add(t);
    const sample = destinationUrl(t, { name: d.name, at: Date.UTC(2026, 0, 2), timeZone: 'UTC', path: 'dir/file.dat' });
    try {
      checkEndpointUrl(sample, field);
    } catch (e) {
      throw new InvalidExportError(e instanceof CargoError ? e.message : String(e), field);
    }
  });
}

/** Encodes a relative path for a URL, one segment at a time. */
export function encodePath(rel: string): string {
  return rel.split('/').map(encodeURIComponent).join('/');
}

/** A file's destination URL: the template with `{path}` (appended after a `/` when the template has none). */
export function destinationUrl(template: string, v: { name: string; at: number; timeZone: string; path: string }): string {
  const encoded = encodePath(v.path);
  const t = template.includes('{path}') ? template : `${template.replace(/\/+$/, '')}/{path}`;
  return renderTemplate(t, { ...v, path: encoded });
}

/** The first HH:MM (local in `timeZone`) after `at` (virtual ms), or undefined without a deadline. */
export function deadlineAfter(deadline: string | undefined, at: number, timeZone: string): number | undefined {
  if (!deadline) return undefined;
  const [h, m] = deadline.split(':').map(Number) as [number, number];
  return getNextMillis(at, { pattern: `${m} ${h} * * *`, tz: timeZone });
}
