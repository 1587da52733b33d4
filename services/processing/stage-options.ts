/**
 * Checking the options of one stage reference (`{stage: 'zstd', level: 3}`): every key known, every value in
 * its form, errors naming the field (`params.processing.emission[0].level: must be an integer from 1 to 19`).
 */
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import { checksumAlgFromName } from '../checksum/checksum-spec.js';
import { badProcessing } from './processing-errors.js';

/** Reads one option's raw value (undefined when absent) into its typed form, or throws naming `field`. */
export type OptionReader<T> = (raw: unknown, field: string) => T;

export function intOption(min: number, max: number, fallback: number): OptionReader<number>;
export function intOption(min: number, max: number): OptionReader<number | undefined>;
export function intOption(min: number, max: number, fallback?: number): OptionReader<number | undefined> {
  return (raw, field) => {
    if (raw === undefined) return fallback;
    if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min || raw > max) {
      throw badProcessing(field, `must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    }
    return raw;
  };
}

export function boolOption(fallback: boolean): OptionReader<boolean> {
  return (raw, field) => {
    if (raw === undefined) return fallback;
    if (typeof raw !== 'boolean') throw badProcessing(field, `must be true or false (got ${JSON.stringify(raw)})`);
    return raw;
  };
}

export function stringOption(pattern: RegExp, form: string, fallback?: string): OptionReader<string | undefined> {
  return (raw, field) => {
    if (raw === undefined) return fallback;
    if (typeof raw !== 'string' || !pattern.test(raw)) throw badProcessing(field, `must be ${form} (got ${JSON.stringify(raw)})`);
    return raw;
  };
}

/** A list of checksum algorithm names (adler32, crc32c, md5, sha256), at least one, no repeats. */
export function algListOption(fallback: readonly ChecksumAlg[]): OptionReader<ChecksumAlg[]> {
  return (raw, field) => {
    if (raw === undefined) return [...fallback];
    const list = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(list) || list.length === 0 || list.length > 4) {
      throw badProcessing(field, 'must be a list of 1 to 4 checksum algorithms (adler32, crc32c, md5, sha256)');
    }
    const out: ChecksumAlg[] = [];
    list.forEach((name: unknown, i) => {
      const alg = typeof name === 'string' ? checksumAlgFromName(name) : undefined;
      if (!alg) throw badProcessing(`${field}[${i}]`, `unknown checksum algorithm ${JSON.stringify(name)} (adler32, crc32c, md5, sha256)`);
      if (!out.includes(alg)) out.push(alg);
    });
    return out;
  };
}

/** A flat mapping of string values (a hook's user parameters); the values are checked by the hook's own rules. */
export function stringMapOption(maxEntries: number): OptionReader<Record<string, string>> {
  return (raw, field) => {
    if (raw === undefined) return {};
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badProcessing(field, 'must be a mapping of names to strings');
    const entries = Object.entries(raw as Record<string, unknown>);
    if (entries.length > maxEntries) throw badProcessing(field, `has ${entries.length} entries, at most ${maxEntries} allowed`);
    const out: Record<string, string> = {};
    for (const [k, v] of entries) {
      if (typeof v !== 'string') throw badProcessing(`${field}.${k}`, 'must be a string');
      out[k] = v;
    }
    return out;
  };
}

export type OptionReaders = Record<string, OptionReader<unknown>>;
export type OptionsOf<R extends OptionReaders> = { [K in keyof R]: ReturnType<R[K]> };

/** Reads `raw` (the stage reference without its `stage` key) with `readers`; an unknown key is an error. */
export function readOptions<R extends OptionReaders>(raw: Record<string, unknown>, readers: R, field: string, stage: string): OptionsOf<R> {
  for (const key of Object.keys(raw)) {
    if (key === 'stage') continue;
    if (!Object.hasOwn(readers, key)) {
      const known = Object.keys(readers);
      throw badProcessing(`${field}.${key}`, `unknown option of stage "${stage}"${known.length ? ` (known: ${known.join(', ')})` : ' (it takes none)'}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, read] of Object.entries(readers)) out[key] = read(raw[key], `${field}.${key}`);
  return out as OptionsOf<R>;
}
