/**
 * `cargoport exports list|show|create|replace|delete|run-now|pause|resume|history`: recurring (nightly) exports
 * through the REST API (`/api/v1/exports`). `create FILE` reads a definition from a YAML or JSON file.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ExportView } from '../../services/exports/export-service.js';
import type { RunReport } from '../../services/exports/export-store.js';
import { clientOptionHelp, clientOptions, expectPositionals, printJson, withApi, type Command, type CommandContext } from '../command.js';
import { intOption } from '../manifest.js';
import { UsageError } from '../usage-error.js';

export const EXPORT_OPS = ['list', 'show', 'create', 'replace', 'delete', 'run-now', 'pause', 'resume', 'history'] as const;

function human(bytes: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = bytes;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

function scheduleText(v: ExportView): string {
  const s = v.definition.schedule;
  return 'cron' in s ? `cron "${s.cron}" ${s.timezone ?? 'UTC'}` : `every ${s.everyMinutes} min`;
}

export function runLine(r: RunReport): string {
  const f = r.files;
  const dl = r.deadline ? (r.deadlineMissed ? ' DEADLINE MISSED' : ' deadline ok') : '';
  const dur = r.durationSec !== undefined ? ` ${r.durationSec.toFixed(1)} s` : '';
  const rate = r.rateBytesPerSec ? ` ${human(r.rateBytesPerSec)}/s` : '';
  return `${r.scheduledFor}  ${r.trigger.padEnd(8)} ${r.state.padEnd(9)} ${f.finished}/${f.submitted} files (${f.selected} selected, ${f.alreadyExported} already exported, ${f.failed} failed) ${human(r.bytes)}${dur}${rate}${dl}${r.reason ? ` (${r.reason})` : ''}`;
}

function exportLine(v: ExportView): string {
  const last = v.lastRun ? `last ${v.lastRun.state} ${v.lastRun.scheduledFor}` : 'never ran';
  return `${v.definition.name.padEnd(24)} ${v.owner.padEnd(24)} ${(v.paused ? 'paused' : 'active').padEnd(7)} ${scheduleText(v).padEnd(36)} next ${v.nextRunAt ?? '-'}  ${last}`;
}

function readDefinition(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`, 'file');
  }
  try {
    return /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(e as Error).message}`, 'file');
  }
}

function showReport(ctx: CommandContext, r: RunReport): void {
  ctx.out.write(runLine(r) + '\n');
  if (r.note) ctx.out.write(`  note: ${r.note}\n`);
  for (const j of r.jobs) ctx.out.write(`  job ${j.jobId} ${j.state ?? 'ACTIVE'} ${j.files} files → ${j.destination}\n`);
  for (const f of r.failures) ctx.out.write(`  failed ${f.path ?? ''} → ${f.destination}: ${f.code} ${f.message}\n`);
  if (r.moreFailures) ctx.out.write(`  … and ${r.moreFailures} more failures\n`);
}

export const exportsCommand: Command = {
  name: 'exports',
  args: `${EXPORT_OPS.join('|')} [NAME | FILE]`,
  summary: 'recurring (nightly) exports: definitions, runs and their reports',
  options: { ...clientOptions, limit: { type: 'string' } },
  optionHelp: [
    'list                 exports you own (every export for administrators)',
    'show NAME            definition, next run and the last run\'s report',
    'create FILE          create from a YAML or JSON definition; replace FILE replaces it',
    'delete NAME          delete the export, its schedule, history and ledger',
    'run-now NAME         run at once (skipped if a run of it is still going)',
    'pause NAME | resume NAME',
    'history NAME         run reports, newest first (--limit N, default 20)',
    ...clientOptionHelp,
  ],
  async run(ctx) {
    const op = ctx.positionals[0];
    if (!op || !(EXPORT_OPS as readonly string[]).includes(op)) throw new UsageError(`exports needs one of ${EXPORT_OPS.join(', ')}`);
    const arg = ctx.positionals[1];
    if (op === 'list') expectPositionals(ctx, 1, 1, '');
    else expectPositionals(ctx, 2, 2, op === 'create' || op === 'replace' ? 'FILE' : 'NAME');
    const name = arg === undefined ? '' : encodeURIComponent(arg);
    const json = ctx.values.json === true;
    return withApi(ctx, async (api) => {
      switch (op) {
        case 'list': {
          const { exports } = await api.get<{ exports: ExportView[] }>('/exports');
          if (json) printJson(ctx, exports);
          else if (exports.length === 0) ctx.out.write('no exports\n');
          else for (const v of exports) ctx.out.write(exportLine(v) + '\n');
          return 0;
        }
        case 'create':
        case 'replace': {
          const def = readDefinition(arg!) as { name?: string };
          const v = op === 'create'
            ? await api.post<ExportView>('/exports', def)
            : await api.put<ExportView>(`/exports/${encodeURIComponent(String(def.name ?? ''))}`, def);
          if (json) printJson(ctx, v);
          else ctx.out.write(`${op === 'create' ? 'created' : 'replaced'} ${exportLine(v)}\n`);
          return 0;
        }
        case 'delete':
          await api.delete(`/exports/${name}`);
          if (!json) ctx.out.write(`deleted ${arg}\n`);
          return 0;
        case 'run-now': {
          const r = await api.post<{ runId: string }>(`/exports/${name}/run`, {});
          if (json) printJson(ctx, r);
          else ctx.out.write(`run ${r.runId} queued (cargoport exports history ${arg})\n`);
          return 0;
        }
        case 'history': {
          const limit = intOption(ctx.values.limit as string | undefined, '--limit', 1, 1000) ?? 20;
          const { runs } = await api.get<{ runs: RunReport[] }>(`/exports/${name}/runs`, { limit });
          if (json) printJson(ctx, runs);
          else if (runs.length === 0) ctx.out.write('no runs yet\n');
          else for (const r of runs) ctx.out.write(runLine(r) + '\n');
          return 0;
        }
        default: {
          const v = op === 'show' ? await api.get<ExportView>(`/exports/${name}`) : await api.post<ExportView>(`/exports/${name}/${op}`, {});
          if (json) {
            printJson(ctx, v);
            return 0;
          }
          ctx.out.write(exportLine(v) + '\n');
          if (op === 'show') {
            ctx.out.write(`  selection: ${JSON.stringify(v.definition.selection)}\n`);
            for (const d of v.definition.destinations) ctx.out.write(`  destination: ${d}\n`);
            if (v.definition.params) ctx.out.write(`  params: ${JSON.stringify(v.definition.params)}\n`);
            if (v.lastRun) showReport(ctx, v.lastRun);
          }
          return 0;
        }
      }
    });
  },
};
