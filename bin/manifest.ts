/**
 * Turns what the user typed into a submission body for POST /api/v1/jobs:
 * - `SRC DST [SRC DST …]` pairs on the command line, or
 * - a manifest file: JSON `{ files: [...], params: {...} }` (the API's own shape), or text with one
 *   `SRC DST [ALG:VALUE]` per line (`#` comments and blank lines allowed).
 * Command-line options are applied on top of the manifest's params. The server validates everything again;
 * these checks exist so that a typo fails here with the line number rather than as a remote 400.
 */
import type { RawSubmission } from '../services/jobs/submission-schema.js';
import { UsageError } from './usage-error.js';

type Params = NonNullable<RawSubmission['params']>;
export type VerifyMode = NonNullable<Params['verifyChecksum']>;
export const VERIFY_MODES: readonly VerifyMode[] = ['none', 'source', 'destination', 'both'];
export type CopyMode = NonNullable<Params['copyMode']>;
export const COPY_MODES: readonly CopyMode[] = ['auto', 'pull', 'push', 'streamed'];
export type ExistingPolicy = NonNullable<Params['existing']>;
export const EXISTING_POLICIES: readonly ExistingPolicy[] = ['fail', 'overwrite', 'skip-identical'];
const CHECKSUM = /^[a-z0-9]+:[0-9a-fA-F]+$/;

export interface SubmitOptions {
  priority?: number;
  retries?: number;
  verify?: VerifyMode;
  overwrite?: boolean;
  existing?: ExistingPolicy;
  streams?: number;
  copyMode?: CopyMode;
  /** ALG:VALUE, only for a single-file submission */
  checksum?: string;
}

function parseText(text: string, name: string): RawSubmission {
  const files: RawSubmission['files'] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const cols = line.split(/\s+/);
    if (cols.length < 2 || cols.length > 3) {
      throw new UsageError(`${name} line ${i + 1}: expected "SRC DST [ALG:VALUE]", got ${cols.length} column(s)`, 'manifest');
    }
    const [source, destination, checksum] = cols as [string, string, string | undefined];
    if (checksum !== undefined && !CHECKSUM.test(checksum)) {
      throw new UsageError(`${name} line ${i + 1}: checksum must be ALG:VALUE in hex, e.g. adler32:0a1b2c3d (got ${checksum})`, 'manifest');
    }
    files.push(checksum ? { source, destination, checksum } : { source, destination });
  });
  return { files };
}

function parseJson(text: string, name: string): RawSubmission {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${name} is not valid JSON: ${(e as Error).message}`, 'manifest');
  }
  // A bare array of files is accepted too: it is what people produce with jq.
  if (Array.isArray(doc)) doc = { files: doc };
  if (!doc || typeof doc !== 'object' || !Array.isArray((doc as RawSubmission).files)) {
    throw new UsageError(`${name}: a JSON manifest must be {"files": [...], "params": {...}}`, 'manifest');
  }
  const sub = doc as RawSubmission;
  sub.files.forEach((f, i) => {
    if (!f || typeof f !== 'object' || typeof f.source !== 'string' || typeof f.destination !== 'string') {
      throw new UsageError(`${name}: files[${i}] needs string "source" and "destination"`, `files[${i}]`);
    }
  });
  return sub;
}

/** Parses a manifest's text; JSON when it starts with `{` or `[`, otherwise the line format. */
export function parseManifest(text: string, name = 'manifest'): RawSubmission {
  const trimmed = text.trimStart();
  return trimmed.startsWith('{') || trimmed.startsWith('[') ? parseJson(text, name) : parseText(text, name);
}

export function filesFromPairs(args: readonly string[]): RawSubmission['files'] {
  if (args.length === 0) throw new UsageError('nothing to submit: give SRC DST pairs or --manifest FILE');
  if (args.length % 2 !== 0) throw new UsageError(`sources and destinations come in pairs (got ${args.length} arguments; "${args[args.length - 1]}" has no destination)`);
  const files: RawSubmission['files'] = [];
  for (let i = 0; i < args.length; i += 2) files.push({ source: args[i]!, destination: args[i + 1]! });
  return files;
}

/** Parses an integer option; `name` is the option as typed, for the message. */
export function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`, name.replace(/^--/, ''));
  }
  return Number(value);
}

/** Applies command-line options onto a submission (options win over the manifest's params). */
export function applyOptions(sub: RawSubmission, opts: SubmitOptions): RawSubmission {
  if (sub.files.length === 0) throw new UsageError('the submission has no files', 'files');
  const params: Params = { ...(sub.params ?? {}) };
  if (opts.priority !== undefined) params.priority = opts.priority;
  if (opts.retries !== undefined) params.retries = opts.retries;
  if (opts.verify !== undefined) params.verifyChecksum = opts.verify;
  if (opts.overwrite) params.overwrite = true;
  if (opts.existing !== undefined) params.existing = opts.existing;
  if (opts.streams !== undefined) params.streams = opts.streams;
  if (opts.copyMode !== undefined) params.copyMode = opts.copyMode;
  const files = sub.files;
  if (opts.checksum !== undefined) {
    if (files.length !== 1) throw new UsageError(`--checksum applies to a single-file submission (this one has ${files.length} files; put checksums in the manifest)`, 'checksum');
    if (!CHECKSUM.test(opts.checksum)) throw new UsageError(`--checksum must be ALG:VALUE in hex, e.g. adler32:0a1b2c3d (got ${opts.checksum})`, 'checksum');
    files[0] = { ...files[0]!, checksum: opts.checksum };
  }
  return Object.keys(params).length ? { files, params } : { files };
}

export function parseVerify(value: string | undefined): VerifyMode | undefined {
  if (value === undefined) return undefined;
  if (!(VERIFY_MODES as readonly string[]).includes(value)) throw new UsageError(`--verify must be one of ${VERIFY_MODES.join(', ')} (got ${value})`, 'verify');
  return value as VerifyMode;
}

export function parseExisting(value: string | undefined): ExistingPolicy | undefined {
  if (value === undefined) return undefined;
  if (!(EXISTING_POLICIES as readonly string[]).includes(value)) throw new UsageError(`--existing must be one of ${EXISTING_POLICIES.join(', ')} (got ${value})`, 'existing');
  return value as ExistingPolicy;
}

export function parseCopyMode(value: string | undefined): CopyMode | undefined {
  if (value === undefined) return undefined;
  if (!(COPY_MODES as readonly string[]).includes(value)) throw new UsageError(`--copy-mode must be one of ${COPY_MODES.join(', ')} (got ${value})`, 'copy-mode');
  return value as CopyMode;
}
