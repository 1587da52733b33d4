/** `cargoport jobs` (list) and `cargoport cancel JOB_ID [FILE_ID]`. */
import { JOB_STATES, type JobSummary } from '../../services/jobs/model.js';
import { UsageError } from '../usage-error.js';
import { clientOptionHelp, clientOptions, expectPositionals, printJson, withApi, type Command } from '../command.js';
import { intOption } from '../manifest.js';
import { jobLine } from '../progress-view.js';

interface JobPage {
  jobs: JobSummary[];
  nextCursor?: string;
}

export const jobsCommand: Command = {
  name: 'jobs',
  args: '',
  summary: 'list jobs, newest first',
  options: { ...clientOptions, limit: { type: 'string' }, state: { type: 'string' } },
  optionHelp: ['--limit N        list at most N jobs (default 50)', `--state STATE    only jobs in this state (${JOB_STATES.join(', ')})`, ...clientOptionHelp],
  async run(ctx) {
    expectPositionals(ctx, 0, 0, '');
    const limit = intOption(ctx.values.limit as string | undefined, '--limit', 1, 100000) ?? 50;
    const state = ctx.values.state as string | undefined;
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${JOB_STATES.join(', ')} (got ${state})`, 'state');
    const jobs: JobSummary[] = [];
    await withApi(ctx, async (api) => {
      let cursor: string | undefined;
      do {
        const page = await api.get<JobPage>('/jobs', { limit: Math.min(1000, limit - jobs.length), cursor, state });
        jobs.push(...page.jobs);
        cursor = page.nextCursor;
      } while (cursor && jobs.length < limit);
    });
    if (ctx.values.json) printJson(ctx, jobs);
    else if (jobs.length === 0) ctx.out.write('no jobs\n');
    else for (const j of jobs) ctx.out.write(jobLine(j) + '\n');
    return 0;
  },
};

export const cancelCommand: Command = {
  name: 'cancel',
  args: 'JOB_ID [FILE_ID]',
  summary: 'cancel a job, or one file of it',
  options: { ...clientOptions },
  optionHelp: clientOptionHelp,
  async run(ctx) {
    expectPositionals(ctx, 1, 2, 'JOB_ID');
    const [jobId, fileId] = ctx.positionals.map(encodeURIComponent) as [string, string | undefined];
    const result = await withApi(ctx, (api) => api.delete<JobSummary | undefined>(fileId ? `/jobs/${jobId}/files/${fileId}` : `/jobs/${jobId}`));
    if (ctx.values.json) printJson(ctx, result ?? {});
    else if (!fileId && result && typeof result === 'object' && 'state' in result) ctx.out.write(`${result.jobId} ${result.state}\n`);
    else ctx.out.write(`canceled ${ctx.positionals.join(' file ')}\n`);
    return 0;
  },
};
