/**
 * `cargoport files JOB_ID [--state STATE]`: a job's files with their state, bytes and failure reason (as
 * `fts-transfer-status -l` lists them), and `cargoport retry JOB_ID`: a new job with the failed files of that one,
 * with the same parameters (what FTS users do by resubmitting the failures).
 */
import { FILE_STATES, type FileView, type JobSummary } from '../../services/jobs/model.js';
import { paramsSchema } from '../../services/jobs/submission-schema.js';
import type { ApiClient } from '../api-client.js';
import { clientOptionHelp, clientOptions, expectPositionals, printJson, withApi, type Command } from '../command.js';
import { formatBytes } from '../progress-view.js';
import { UsageError } from '../usage-error.js';

interface FilePage {
  files: FileView[];
  nextCursor?: number;
}

/** Every file of a job in one state (or all), page by page. */
export async function allFiles(api: ApiClient, jobId: string, state?: string): Promise<FileView[]> {
  const files: FileView[] = [];
  let cursor: number | undefined;
  do {
    const page = await api.get<FilePage>(`/jobs/${encodeURIComponent(jobId)}/files`, { state, cursor, limit: 1000 });
    files.push(...page.files);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return files;
}

/** `3 FAILED 12.0 MB https://src/a -> https://dst/a  CARGO_ERR_SOURCE_NOT_FOUND: 404 from source (2 attempts)` */
export function fileLine(f: FileView): string {
  const size = f.size !== undefined ? `${formatBytes(f.bytes)}/${formatBytes(f.size)}` : formatBytes(f.bytes);
  const why = f.error ? `  ${f.error.code}: ${f.error.message.replace(/\s+/g, ' ').slice(0, 300)}` : '';
  const tries = f.attempts.length > 1 ? ` (${f.attempts.length} attempts)` : '';
  const last = f.attempts.at(-1);
  const dest = last?.publishedAs ?? f.destination;
  // What processing stages recorded: `[raw sha256=…  final adler32=…]`.
  const sums = (last?.processing ?? []).map((r) => r.kind === 'checksum'
    ? `${r.label} ${Object.entries(r.checksums).map(([a, v]) => `${a}=${v}`).join(',')}`
    : `${r.stage} ${r.published}/${r.members} members`);
  const recorded = sums.length ? `  [${sums.join('; ')}]` : '';
  return `${String(f.fileId).padStart(5)} ${f.state.padEnd(9)} ${size.padStart(9)}  ${f.source} -> ${dest}${why}${tries}${recorded}`;
}

export const filesCommand: Command = {
  name: 'files',
  args: 'JOB_ID',
  summary: 'list the files of a job with their state and failure reason',
  options: { ...clientOptions, state: { type: 'string' } },
  optionHelp: [`--state STATE    only files in this state (${FILE_STATES.join(', ')}; lower case accepted)`, ...clientOptionHelp],
  async run(ctx) {
    expectPositionals(ctx, 1, 1, 'JOB_ID');
    const raw = ctx.values.state as string | undefined;
    const state = raw?.toUpperCase();
    if (state !== undefined && !(FILE_STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${FILE_STATES.join(', ')} (got ${raw})`, 'state');
    const files = await withApi(ctx, (api) => allFiles(api, ctx.positionals[0]!, state));
    if (ctx.values.json) printJson(ctx, files);
    else if (files.length === 0) ctx.out.write(state ? `no ${state} files\n` : 'no files\n');
    else for (const f of files) ctx.out.write(fileLine(f) + '\n');
    return 0;
  },
};

const SUBMITTABLE_PARAMS = Object.keys(paramsSchema.properties);

/** The submission that retries `failed` with the parameters of `job` (minus what the store adds, like owner). */
export function retrySubmission(job: JobSummary, failed: readonly FileView[]): { files: Record<string, unknown>[]; params: Record<string, unknown> } {
  const params: Record<string, unknown> = {};
  for (const k of SUBMITTABLE_PARAMS) {
    const v = (job.params as unknown as Record<string, unknown>)[k];
    if (v !== undefined && v !== null) params[k] = v;
  }
  // `existing` decides when present; `overwrite` is its older spelling and may not contradict it.
  if (params['existing'] !== undefined) delete params['overwrite'];
  // Jobs stored before processing stages existed carry `processing: []`, which is not a submittable value.
  if (Array.isArray(params['processing'])) delete params['processing'];
  const files = failed.map((f) => {
    const spec: Record<string, unknown> = { source: f.source, destination: f.destination };
    if (f.size !== undefined) spec['size'] = f.size;
    if (f.checksum) spec['checksum'] = f.checksum.value ? `${f.checksum.alg}:${f.checksum.value}` : f.checksum.alg;
    if (f.scitag !== undefined) spec['scitag'] = f.scitag;
    if (f.activity !== undefined) spec['activity'] = f.activity;
    if (f.metadata !== undefined) spec['metadata'] = f.metadata;
    if (f.processing !== undefined) spec['processing'] = f.processing;
    return spec;
  });
  return { files, params };
}

export const retryCommand: Command = {
  name: 'retry',
  args: 'JOB_ID',
  summary: 'submit a new job with the failed files of a job (same parameters); prints the new job id',
  options: { ...clientOptions },
  optionHelp: clientOptionHelp,
  async run(ctx) {
    expectPositionals(ctx, 1, 1, 'JOB_ID');
    const jobId = ctx.positionals[0]!;
    return withApi(ctx, async (api) => {
      const [job, failed] = await Promise.all([api.get<JobSummary>(`/jobs/${encodeURIComponent(jobId)}`), allFiles(api, jobId, 'FAILED')]);
      if (failed.length === 0) {
        process.stderr.write(`cargoport retry: job ${jobId} has no failed files (${job.state})\n`);
        return 1;
      }
      const created = await api.post<{ jobId: string; files: number }>('/jobs', retrySubmission(job, failed));
      if (ctx.values.json) printJson(ctx, { ...created, retryOf: jobId });
      else ctx.out.write(`${created.jobId}\n`);
      process.stderr.write(`resubmitted ${created.files} failed file(s) of ${jobId} as job ${created.jobId}\n`);
      return 0;
    });
  },
};
