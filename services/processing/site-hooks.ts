/**
 * Site hooks: programs or JS modules the operator registers under a name (`processing.hooks`), which jobs then
 * reference (`{stage: 'hook', hook: 'fits-verify', params: {LEVEL: '2'}}`). The contract is in README.md beside this
 * file; in short:
 *
 *   hooks:
 *     fits-verify:                       # an executable
 *       command: [/opt/site/bin/fits-verify, --strict]   # argv, fixed by the operator; no shell, ever
 *       io: stream                       # stdin → stdout; or `files`: argv + [INPUT_PATH, OUTPUT_PATH]
 *       timeoutSec: 600                  # then SIGTERM to its process group, SIGKILL after graceSec
 *       graceSec: 5
 *       params: { LEVEL: '^[0-3]$' }     # user values allowed, each matched whole by its regex, passed only as
 *                                        # the environment variable CARGOPORT_PARAM_LEVEL
 *       env: { FITS_TABLES: /opt/site/share/fits }        # fixed environment from the operator
 *       sides: [reception]
 *     rot13:                             # a JS module exporting createStage(ctx) → Duplex
 *       module: /opt/site/lib/rot13.mjs
 *       options: { … }                   # handed to createStage as ctx.options
 *
 * Everything is checked at start-up: a bad entry stops the process naming `processing.hooks.NAME.FIELD`.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Duplex } from 'node:stream';
import { ConfigError } from '../../config/load.js';
import type { StageSide } from './stream-stage.js';

export const HOOK_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** User parameter names: the environment variable is CARGOPORT_PARAM_<NAME>. */
export const PARAM_NAME = /^[A-Z][A-Z0-9_]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Longest user parameter value; values never contain NUL, newlines or other control characters. */
export const MAX_PARAM_VALUE = 1024;

/** What a module hook's createStage is given. */
export interface ModuleHookContext {
  readonly hook: string;
  readonly side: StageSide;
  /** The user's parameters, already matched against the hook's rules. */
  readonly params: Readonly<Record<string, string>>;
  /** The operator's `options` of the hook entry. */
  readonly options: unknown;
  /** The destination's file name (last path segment). */
  readonly fileName: string;
  /** Aborted when the transfer is: release what the stage holds. */
  readonly signal?: AbortSignal;
}

export type ModuleStageFactory = (ctx: ModuleHookContext) => Duplex;

interface HookBase {
  readonly name: string;
  readonly sides: readonly StageSide[];
  /** Allowed user parameters and the pattern each value must match whole. */
  readonly params: ReadonlyMap<string, RegExp>;
}

export interface ExecHook extends HookBase {
  readonly kind: 'exec';
  readonly command: readonly string[];
  readonly io: 'stream' | 'files';
  readonly timeoutSec: number;
  readonly graceSec: number;
  readonly env: Readonly<Record<string, string>>;
}

export interface ModuleHook extends HookBase {
  readonly kind: 'module';
  readonly module: string;
  readonly options: unknown;
  /** Set by loadHookModules. */
  factory?: ModuleStageFactory;
}

export type SiteHook = ExecHook | ModuleHook;

export interface HookDefaults {
  readonly timeoutSec: number;
}

function bad(field: string, message: string): ConfigError {
  return new ConfigError(`${field}: ${message}`, field);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function intIn(v: unknown, min: number, max: number, fallback: number, field: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw bad(field, `must be an integer from ${min} to ${max}`);
  return v;
}

function parseSides(v: unknown, field: string): StageSide[] {
  if (v === undefined) return ['emission', 'reception'];
  if (!Array.isArray(v) || v.length === 0 || v.some((s) => s !== 'emission' && s !== 'reception')) {
    throw bad(field, 'must be a list of emission and/or reception');
  }
  return [...new Set(v as StageSide[])];
}

function parseParams(v: unknown, field: string): Map<string, RegExp> {
  const out = new Map<string, RegExp>();
  if (v === undefined) return out;
  if (!isMapping(v)) throw bad(field, 'must map parameter names (A-Z, 0-9, _) to regular expressions');
  for (const [k, pattern] of Object.entries(v)) {
    if (!PARAM_NAME.test(k)) throw bad(`${field}.${k}`, 'parameter names are 1-32 of A-Z, 0-9, _ starting with a letter');
    if (typeof pattern !== 'string') throw bad(`${field}.${k}`, 'must be a regular expression (a string)');
    try {
      out.set(k, new RegExp(`^(?:${pattern})$`, 'u'));
    } catch (e) {
      throw bad(`${field}.${k}`, `is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  return out;
}

function parseEnv(v: unknown, field: string): Record<string, string> {
  if (v === undefined) return {};
  if (!isMapping(v)) throw bad(field, 'must map variable names to strings');
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (!ENV_NAME.test(k) || k.startsWith('CARGOPORT_')) throw bad(`${field}.${k}`, 'must be a variable name not starting with CARGOPORT_ (reserved for the port)');
    if (typeof value !== 'string' || value.includes('\0')) throw bad(`${field}.${k}`, 'must be a string without NUL');
    out[k] = value;
  }
  return out;
}

function parseOne(name: string, raw: unknown, defaults: HookDefaults): SiteHook {
  const field = `processing.hooks.${name}`;
  if (!HOOK_NAME.test(name)) throw bad(field, 'hook names are 1-32 of a-z, 0-9, _ or - starting with a letter');
  if (!isMapping(raw)) throw bad(field, 'must be a mapping with command or module');
  const known = ['command', 'io', 'timeoutSec', 'graceSec', 'params', 'env', 'sides', 'module', 'options'];
  for (const k of Object.keys(raw)) if (!known.includes(k)) throw bad(`${field}.${k}`, `unknown key (${known.join(', ')})`);
  const base = { name, sides: parseSides(raw['sides'], `${field}.sides`), params: parseParams(raw['params'], `${field}.params`) };
  if (raw['module'] !== undefined) {
    if (raw['command'] !== undefined) throw bad(field, 'has both command and module; give one');
    const module = raw['module'];
    if (typeof module !== 'string' || !isAbsolute(module)) throw bad(`${field}.module`, 'must be an absolute path of a JS module');
    return { kind: 'module', ...base, module, options: raw['options'] };
  }
  const command = raw['command'];
  if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw bad(`${field}.command`, 'must be a list [/absolute/program, arg…] of strings');
  }
  const program = command[0] as string;
  if (!isAbsolute(program)) throw bad(`${field}.command`, `the program must be an absolute path (got ${JSON.stringify(program)}); no shell and no PATH lookup`);
  let regular: boolean;
  try {
    regular = statSync(program).isFile();
    accessSync(program, fsConstants.X_OK);
  } catch (e) {
    throw bad(`${field}.command`, `${program} is not an executable file: ${(e as Error).message}`);
  }
  if (!regular) throw bad(`${field}.command`, `${program} is not an executable file: not a regular file`);
  const io = raw['io'] ?? 'stream';
  if (io !== 'stream' && io !== 'files') throw bad(`${field}.io`, 'must be stream (stdin → stdout) or files (argv INPUT OUTPUT)');
  return {
    kind: 'exec', ...base,
    command: command as string[],
    io,
    timeoutSec: intIn(raw['timeoutSec'], 1, 7 * 86400, defaults.timeoutSec, `${field}.timeoutSec`),
    graceSec: intIn(raw['graceSec'], 0, 600, 5, `${field}.graceSec`),
    env: parseEnv(raw['env'], `${field}.env`),
  };
}

/** Validates `processing.hooks`. */
export function parseSiteHooks(raw: Record<string, unknown>, defaults: HookDefaults): Map<string, SiteHook> {
  const out = new Map<string, SiteHook>();
  for (const [name, entry] of Object.entries(raw)) out.set(name, parseOne(name, entry, defaults));
  return out;
}

/** Imports every module hook and checks that it exports `createStage` (or a default function). */
export async function loadHookModules(hooks: ReadonlyMap<string, SiteHook>): Promise<void> {
  for (const hook of hooks.values()) {
    if (hook.kind !== 'module') continue;
    const field = `processing.hooks.${hook.name}.module`;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(hook.module).href)) as Record<string, unknown>;
    } catch (e) {
      throw bad(field, `cannot load ${hook.module}: ${(e as Error).message}`);
    }
    const factory = mod['createStage'] ?? mod['default'];
    if (typeof factory !== 'function') throw bad(field, `${hook.module} must export a function createStage(ctx) returning a Duplex`);
    hook.factory = factory as ModuleStageFactory;
  }
}
