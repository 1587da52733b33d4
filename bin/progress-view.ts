/**
 * Text rendering of job progress for `cargoport status` and `cargoport jobs`: bars, sizes, rates, ETAs.
 * Pure functions of the API's JobSummary, so the live view and the plain-line view print the same facts.
 */
import type { JobSummary, StateCounts } from '../services/jobs/model.js';

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** Decimal units, as network rates and disk sizes are quoted (1 GB = 10^9 B). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[i]}`;
}

export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

export function formatEta(sec: number | undefined): string {
  if (sec === undefined || !Number.isFinite(sec) || sec < 0) return '--:--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function bar(fraction: number, width = 24): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

const TERMINAL = ['FINISHED', 'FAILED', 'CANCELED'] as const;

export function doneFiles(c: Partial<StateCounts>): number {
  return TERMINAL.reduce((s, k) => s + (c[k] ?? 0), 0);
}

/** Progress by bytes when the total is known, by files otherwise. */
export function progressFraction(j: Pick<JobSummary, 'bytesTotal' | 'bytesDone' | 'files' | 'counts'>): number {
  if (j.bytesTotal && j.bytesTotal > 0) return j.bytesDone / j.bytesTotal;
  return j.files > 0 ? doneFiles(j.counts) / j.files : 0;
}

export function isTerminalJob(j: Pick<JobSummary, 'state'>): boolean {
  return j.state !== 'ACTIVE';
}

function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 12) : id.padEnd(12);
}

/**
 * ETA of a job whose total size is unknown (files submitted without sizes): the files left times the mean size of
 * the files done so far, at the current rate. Shown with `~`: it is a guess that firms up as files finish.
 */
export function estimatedEtaSec(j: Pick<JobSummary, 'bytesTotal' | 'bytesDone' | 'files' | 'counts' | 'rateBytesPerSec'>): number | undefined {
  const done = j.counts.FINISHED ?? 0;
  if (j.bytesTotal !== undefined || done === 0 || j.rateBytesPerSec <= 0) return undefined;
  const mean = j.bytesDone / done;
  return ((j.files - doneFiles(j.counts)) * mean) / j.rateBytesPerSec;
}

function etaText(j: JobSummary): string {
  if (isTerminalJob(j)) return '';
  if (j.etaSec !== undefined) return ` ETA ${formatEta(j.etaSec)}`;
  const guess = estimatedEtaSec(j);
  return guess === undefined ? ` ETA ${formatEta(undefined)}` : ` ETA ~${formatEta(guess)}`;
}

export function jobLine(j: JobSummary, barWidth = 24): string {
  const f = progressFraction(j);
  const bytes = j.bytesTotal ? `${formatBytes(j.bytesDone)}/${formatBytes(j.bytesTotal)}` : formatBytes(j.bytesDone);
  const failed = j.counts.FAILED ? ` ${j.counts.FAILED} failed` : '';
  const eta = etaText(j);
  return `${shortId(j.jobId)} ${j.state.padEnd(14)} ${bar(f, barWidth)} ${(f * 100).toFixed(1).padStart(5)}%  files ${doneFiles(j.counts)}/${j.files}${failed}  ${bytes}  ${formatRate(j.rateBytesPerSec)}${eta}`;
}

/** The sum over the given jobs; ETA from the remaining bytes at the current total rate. */
export function totalLine(jobs: readonly JobSummary[], barWidth = 24): string {
  const files = jobs.reduce((s, j) => s + j.files, 0);
  const done = jobs.reduce((s, j) => s + doneFiles(j.counts), 0);
  const failed = jobs.reduce((s, j) => s + (j.counts.FAILED ?? 0), 0);
  const bytesDone = jobs.reduce((s, j) => s + j.bytesDone, 0);
  const rate = jobs.reduce((s, j) => s + j.rateBytesPerSec, 0);
  const allSized = jobs.length > 0 && jobs.every((j) => j.bytesTotal !== undefined && j.bytesTotal > 0);
  const bytesTotal = allSized ? jobs.reduce((s, j) => s + (j.bytesTotal ?? 0), 0) : undefined;
  const f = bytesTotal ? bytesDone / bytesTotal : files > 0 ? done / files : 0;
  const eta = bytesTotal && rate > 0 ? (bytesTotal - bytesDone) / rate : Math.max(0, ...jobs.map((j) => j.etaSec ?? 0)) || undefined;
  const bytes = bytesTotal ? `${formatBytes(bytesDone)}/${formatBytes(bytesTotal)}` : formatBytes(bytesDone);
  const failedText = failed ? ` ${failed} failed` : '';
  return `${'TOTAL'.padEnd(12)} ${`${jobs.length} job(s)`.padEnd(14)} ${bar(f, barWidth)} ${(f * 100).toFixed(1).padStart(5)}%  files ${done}/${files}${failedText}  ${bytes}  ${formatRate(rate)} ETA ${formatEta(eta)}`;
}
