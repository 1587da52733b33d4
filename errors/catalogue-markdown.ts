/**
 * The catalogue as the Markdown table of README's "Errors" section. `npm run errors:doc` writes it between the
 * markers below; test/unit/error-catalogue.test.ts fails when the README's table differs from this rendering.
 */
import { CargoError } from './cargo-error.js';
import { errorCatalogue, type ErrorCode } from './catalogue.js';

export const ERRORS_BEGIN = '<!-- errors:begin (generated from errors/catalogue.ts by `npm run errors:doc`; do not edit) -->';
export const ERRORS_END = '<!-- errors:end -->';

/** One row per code, sorted by code, as `| code | status | retryable | meaning |`. */
export function catalogueTable(): string {
  const rows = (Object.keys(errorCatalogue) as ErrorCode[]).sort().map((code) => {
    const { status, retryable, meaning } = errorCatalogue[code];
    return `| \`${code}\` | ${status} | ${retryable ? 'yes' : 'no'} | ${meaning.replaceAll('|', '\\|')} |`;
  });
  return ['| code | HTTP status | retryable | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The text between the markers of `readme`, or undefined when a marker is missing. */
export function readmeErrorTable(readme: string): string | undefined {
  const begin = readme.indexOf(ERRORS_BEGIN);
  const end = readme.indexOf(ERRORS_END);
  if (begin === -1 || end < begin) return undefined;
  return readme.slice(begin + ERRORS_BEGIN.length, end).trim();
}

/** `readme` with the current table between the markers (which must exist). */
export function withErrorTable(readme: string): string {
  const begin = readme.indexOf(ERRORS_BEGIN);
  const end = readme.indexOf(ERRORS_END);
  if (begin === -1 || end < begin) throw new CargoError('CARGO_ERR_INTERNAL', `README has no ${ERRORS_BEGIN} … ${ERRORS_END} markers`);
  return `${readme.slice(0, begin + ERRORS_BEGIN.length)}\n${catalogueTable()}\n${readme.slice(end)}`;
}
