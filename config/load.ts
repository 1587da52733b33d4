/**
 * Loads the configuration: config/default.yaml ← --config FILE ← CARGOPORT_* environment variables.
 * Anything wrong stops start-up with a ConfigError that names the key (or variable) and the expected form.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { CargoError } from '../errors/cargo-error.js';
import { schema, type Config, type Group, type Leaf } from './schema.js';

export class ConfigError extends CargoError {
  constructor(message: string, field?: string) {
    super('CARGO_ERR_CONFIG', message, { httpStatus: 500, field });
    this.name = 'ConfigError';
  }
}

/** config/default.yaml, found relative to this module in both the source tree and dist/. */
export function defaultConfigPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, 'default.yaml'), join(here, '..', '..', 'config', 'default.yaml')]) {
    try {
      readFileSync(p);
      return p;
    } catch {
      /* try the next */
    }
  }
  throw new ConfigError('config/default.yaml not found next to the program');
}

function isLeaf(x: Leaf<unknown> | Group): x is Leaf<unknown> {
  return (x as Leaf<unknown>).kind === 'leaf';
}

/** `scheduler.linkMaxActive` → `CARGOPORT_SCHEDULER_LINK_MAX_ACTIVE`. */
export function envNameOf(path: string): string {
  return 'CARGOPORT_' + path.split('.').map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every leaf of the schema with its dotted path. */
export function schemaLeaves(group: Group = schema, prefix = ''): Array<{ path: string; leaf: Leaf<unknown> }> {
  const out: Array<{ path: string; leaf: Leaf<unknown> }> = [];
  for (const [k, v] of Object.entries(group)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isLeaf(v)) out.push({ path, leaf: v });
    else out.push(...schemaLeaves(v, path));
  }
  return out;
}

function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(e as Error).message}`);
  }
}

/** Overlays `src` onto `dst` following the schema; unknown keys are errors naming the key and the file. */
function overlay(dst: Record<string, unknown>, src: unknown, group: Group, prefix: string, origin: string): void {
  if (src === null || typeof src !== 'object' || Array.isArray(src)) {
    throw new ConfigError(`${origin}: ${prefix || 'the top level'} must be a mapping`, prefix || undefined);
  }
  for (const [k, v] of Object.entries(src as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const node = group[k];
    if (!node) throw new ConfigError(`${origin}: unknown setting "${path}"`, path);
    if (isLeaf(node)) {
      try {
        dst[k] = node.parse(v, false);
      } catch (e) {
        throw new ConfigError(`${origin}: setting "${path}" must be ${(e as Error).message} (got ${node.secret ? 'a value not shown: it may hold credentials' : JSON.stringify(v)})`, path);
      }
    } else {
      const sub = (dst[k] ??= {}) as Record<string, unknown>;
      overlay(sub, v, node, path, origin);
    }
  }
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[parts[parts.length - 1]!] = value;
}

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let o: unknown = obj;
  for (const p of path.split('.')) o = o === null || typeof o !== 'object' ? undefined : (o as Record<string, unknown>)[p];
  return o;
}

export interface LoadOptions {
  /** --config FILE */
  file?: string;
  /** Environment to read CARGOPORT_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Programmatic overrides applied last (tests, embedded use), same shape as the YAML. */
  overrides?: Record<string, unknown>;
  /** Directory relative paths are resolved against (default process.cwd()). */
  cwd?: string;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const merged: Record<string, unknown> = {};
  overlay(merged, readYaml(defaultConfigPath()), schema, '', 'config/default.yaml');
  if (opts.file) overlay(merged, readYaml(opts.file), schema, '', opts.file);

  const known = new Map(schemaLeaves().map(({ path, leaf }) => [envNameOf(path), { path, leaf }]));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('CARGOPORT_') || raw === undefined) continue;
    const entry = known.get(name);
    if (!entry) {
      // A typo in a variable name must not be silently ignored: it would run with the default.
      // CARGOPORT_CONFIG names a file; CARGOPORT_TEST_* belong to the test suite, not to the port.
      if (name === 'CARGOPORT_CONFIG' || name.startsWith('CARGOPORT_TEST_')) continue;
      throw new ConfigError(`unknown environment variable ${name} (settings are listed in the README)`, name);
    }
    try {
      setPath(merged, entry.path, entry.leaf.parse(raw, true));
    } catch (e) {
      throw new ConfigError(`environment variable ${name} (setting "${entry.path}") must be ${(e as Error).message} (got ${entry.leaf.secret ? 'a value not shown: it may hold credentials' : JSON.stringify(raw)})`, entry.path);
    }
  }
  if (opts.overrides) overlay(merged, opts.overrides, schema, '', 'overrides');

  for (const { path } of schemaLeaves()) {
    if (getPath(merged, path) === undefined) throw new ConfigError(`setting "${path}" has no value (config/default.yaml is incomplete)`, path);
  }
  const cfg = merged as unknown as Config & { dataDir: string };
  const cwd = opts.cwd ?? process.cwd();
  (merged as { dataDir: string }).dataDir = isAbsolute(cfg.dataDir) ? cfg.dataDir : resolve(cwd, cfg.dataDir);
  return cfg;
}
