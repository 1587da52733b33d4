/**
 * `cargoport status [JOB_ID] [--watch]`: progress of one job, or of every active job plus the port's scopes.
 * With --watch on a terminal the view is redrawn in place every 500 ms; when stdout is not a terminal (logs,
 * pipes) a timestamped line is printed for each job whose progress changed, so logs stay readable.
 * Watching one job ends when the job does: exit 0 if it FINISHED, 1 otherwise. A job (or port) that is active and
 * moves no bytes gets a `stuck:` line saying why: a paused or drained scope, a tripped breaker, a full destination.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { hostKey, linkOf, type FileView, type JobSummary } from '../../services/jobs/model.js';
import { ApiError, ConnectError, type ApiClient } from '../api-client.js';
import { clientOptionHelp, clientOptions, expectPositionals, printJson, withApi, type Command, type CommandContext } from '../command.js';
import { formatRate, isTerminalJob, jobLine, totalLine } from '../progress-view.js';
import { breakerLine, scopeLine, type PortStatus } from './admin.js';

const REFRESH_MS = 500;

interface Snapshot {
  lines: string[];
  /** The API data behind the lines, printed by --json. */
  json: unknown;
  done?: { ok: boolean };
}

/**
 * Why nothing moves: the admin scopes that hold the job's files (port, pools, its links and endpoints) and the
 * tripped circuit breakers of its endpoints (a full destination says so). `endpoints`/`links` undefined: all count.
 */
export function stuckReasons(status: PortStatus, endpoints?: ReadonlySet<string>, links?: ReadonlySet<string>): string[] {
  const reasons: string[] = [];
  for (const s of status.scopes) {
    const state = s.effectiveState ?? s.state;
    if (state === 'running') continue;
    const concerns = s.scope === 'port' || s.scope === 'pool'
      || (s.scope === 'link' && (!links || links.has(s.target)))
      || (s.scope === 'endpoint' && (!endpoints || endpoints.has(s.target)));
    if (concerns) reasons.push(`${s.scope}${s.target ? ' ' + s.target : ''} ${state}`);
  }
  for (const e of status.unavailableEndpoints ?? []) {
    if (endpoints && !endpoints.has(e.endpoint)) continue;
    reasons.push(e.cause === 'full'
      ? `destination ${e.endpoint} full (${(e.detail ?? 'no space').slice(0, 120)}), next probe ${e.retryAt}`
      : `endpoint ${e.endpoint} unreachable (breaker ${e.state}, ${e.failuresInARow} failed connects), next probe ${e.retryAt}`);
  }
  if (status.workers.length > 0 && status.workers.every((w) => w.alive === false)) reasons.push('no live workers');
  else if (status.workers.length === 0) reasons.push('no workers');
  return reasons;
}

function stuckLine(reasons: string[]): string {
  return `  stuck: ${reasons.join('; ')}`;
}

/** A job that is ACTIVE and moves nothing: which of its waiting files' endpoints and links are held, and why. */
async function jobStuckReasons(api: ApiClient, job: JobSummary): Promise<string[]> {
  const [status, waiting] = await Promise.all([
    api.get<PortStatus>('/status'),
    api.get<{ files: FileView[] }>(`/jobs/${encodeURIComponent(job.jobId)}/files`, { state: 'SUBMITTED', limit: 200 }),
  ]);
  const endpoints = new Set<string>();
  const links = new Set<string>();
  for (const f of waiting.files) {
    try {
      endpoints.add(hostKey(f.source)).add(hostKey(f.destination));
      links.add(linkOf(f.source, f.destination));
    } catch {
      /* a URL the store accepted always parses; skip rather than fail the view */
    }
  }
  return stuckReasons(status, waiting.files.length ? endpoints : undefined, waiting.files.length ? links : undefined);
}

async function jobSnapshot(api: ApiClient, jobId: string, barWidth: number): Promise<Snapshot> {
  const job = await api.get<JobSummary>(`/jobs/${encodeURIComponent(jobId)}`);
  const lines = [jobLine(job, barWidth)];
  let stuck: string[] = [];
  if (!isTerminalJob(job) && job.rateBytesPerSec === 0) {
    stuck = await jobStuckReasons(api, job);
    if (stuck.length) lines.push(stuckLine(stuck));
  }
  return { lines, json: stuck.length ? { ...job, stuck } : job, done: isTerminalJob(job) ? { ok: job.state === 'FINISHED' } : undefined };
}

async function portSnapshot(api: ApiClient, barWidth: number): Promise<Snapshot> {
  const [status, page] = await Promise.all([
    api.get<PortStatus>('/status'),
    api.get<{ jobs: JobSummary[] }>('/jobs', { limit: 1000, state: 'ACTIVE' }),
  ]);
  const active = page.jobs.filter((j) => !isTerminalJob(j));
  const lines = status.scopes.map(scopeLine);
  lines.push(...(status.unavailableEndpoints ?? []).map(breakerLine));
  lines.push(`transfers active ${status.transfers.active}  ${formatRate(status.transfers.rateBytesPerSec)}  workers ${status.workers.length}`);
  if (active.length === 0) lines.push('no active jobs');
  else lines.push(...active.map((j) => jobLine(j, barWidth)), totalLine(active, barWidth));
  const stuck = active.length > 0 && status.transfers.rateBytesPerSec === 0 ? stuckReasons(status) : [];
  if (stuck.length) lines.push(stuckLine(stuck));
  return { lines, json: { status, jobs: active } };
}

/** Redraws a block of lines in place: cursor up over the previous block, clear to the end, write. */
function liveRenderer(out: CommandContext['out']) {
  let previous = 0;
  return {
    draw(lines: string[]) {
      // A pseudo-terminal may report 0 columns: treat that as unknown.
      const width = Math.max(20, (out.columns || 120) - 1);
      // Lines longer than the terminal would wrap and break the cursor arithmetic.
      const text = lines.map((l) => (l.length > width ? l.slice(0, width) : l));
      out.write((previous ? `\x1b[${previous}F\x1b[J` : '') + text.join('\n') + '\n');
      previous = text.length;
    },
  };
}

export const statusCommand: Command = {
  name: 'status',
  args: '[JOB_ID]',
  summary: 'progress of a job, or of the whole port (scopes, active jobs, total)',
  options: { ...clientOptions, watch: { type: 'boolean', short: 'w' } },
  optionHelp: ['--watch, -w      keep refreshing (every 500 ms; until the job ends or Ctrl-C)', ...clientOptionHelp],
  async run(ctx) {
    expectPositionals(ctx, 0, 1, '');
    const jobId = ctx.positionals[0];
    const barWidth = ctx.out.isTTY && (ctx.out.columns || 120) < 110 ? 12 : 24;
    const snap = (api: ApiClient) => (jobId ? jobSnapshot(api, jobId, barWidth) : portSnapshot(api, barWidth));

    return withApi(ctx, async (api) => {
      if (!ctx.values.watch) {
        const s = await snap(api);
        if (ctx.values.json) printJson(ctx, s.json);
        else ctx.out.write(s.lines.join('\n') + '\n');
        return s.done && !s.done.ok ? 1 : 0;
      }

      const interrupted = new AbortController();
      const onSigint = () => interrupted.abort();
      process.once('SIGINT', onSigint);
      const live = ctx.out.isTTY ? liveRenderer(ctx.out) : undefined;
      const lastPrinted = new Map<number, string>();
      try {
        while (!interrupted.signal.aborted) {
          let s: Snapshot;
          try {
            s = await snap(api);
          } catch (e) {
            // A restarting gateway is worth waiting for; a 4xx (unknown job, no permission) is not.
            if (!(e instanceof ConnectError) && !(e instanceof ApiError && e.retryable)) throw e;
            s = { lines: [`(waiting for the gateway: ${(e as Error).message})`], json: null };
          }
          if (live) live.draw(s.lines);
          else {
            const stamp = new Date().toISOString().slice(11, 19);
            s.lines.forEach((line, i) => {
              if (lastPrinted.get(i) !== line) ctx.out.write(`${stamp} ${line}\n`);
              lastPrinted.set(i, line);
            });
          }
          if (s.done) return s.done.ok ? 0 : 1;
          await sleep(REFRESH_MS, undefined, { signal: interrupted.signal }).catch(() => undefined);
        }
        return 130;
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
    });
  },
};
