/**
 * Templates of export selections and destinations: `{date}` (the run's scheduled day in the export's time zone),
 * `{yesterday}` (the day before), each with an optional format of YYYY, MM and DD (`{yesterday:YYYY/MM/DD}`, default
 * YYYY-MM-DD); `{name}` (the export's name); `{path}` (the file's relative path, destinations only).
 */
import { InvalidExportError } from './export-errors.js';

const TOKEN = /\{(path|name|date|yesterday)(?::([A-Za-z0-9/_.-]{1,32}))?\}/g;
const ANY_BRACE = /[{}]/;

export interface TemplateValues {
  name: string;
  /** Virtual ms of the run's scheduled time. */
  at: number;
  timeZone: string;
  /** Relative path, already URL-encoded per segment where the template is a URL. */
  path?: string;
}

/** Local calendar day of `ms` in `timeZone`. */
export function localDay(ms: number, timeZone: string): { y: number; m: number; d: number } {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date(ms));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return { y: get('year'), m: get('month'), d: get('day') };
}

function formatDay(day: { y: number; m: number; d: number }, format = 'YYYY-MM-DD'): string {
  return format
    .replace('YYYY', String(day.y).padStart(4, '0'))
    .replace('MM', String(day.m).padStart(2, '0'))
    .replace('DD', String(day.d).padStart(2, '0'));
}

function dayBefore(day: { y: number; m: number; d: number }): { y: number; m: number; d: number } {
  const t = new Date(Date.UTC(day.y, day.m - 1, day.d) - 86_400_000);
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
}

/** Checks a template's tokens; `allowPath`: whether `{path}` may appear. */
export function checkTemplate(template: string, field: string, allowPath: boolean): void {
  const rest = template.replace(TOKEN, (whole, token: string) => {
    if (token === 'path' && !allowPath) throw new InvalidExportError(`${field}: {path} is only known in destinations`, field);
    return '';
  });
  if (ANY_BRACE.test(rest)) throw new InvalidExportError(`${field}: unknown template token (known: {date}, {yesterday}, {name}${allowPath ? ', {path}' : ''}, with an optional :YYYY-MM-DD format)`, field);
}

export function renderTemplate(template: string, v: TemplateValues): string {
  const today = localDay(v.at, v.timeZone);
  return template.replace(TOKEN, (_w, token: string, format: string | undefined) => {
    switch (token) {
      case 'path': return v.path ?? '';
      case 'name': return encodeURIComponent(v.name);
      case 'date': return formatDay(today, format);
      default: return formatDay(dayBefore(today), format);
    }
  });
}
