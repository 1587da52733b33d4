/**
 * Loads the job store's Lua scripts (services/jobs/lua/*.lua) and defines them as ioredis commands. Every multi-key
 * state change of jobs and files is one of these scripts, so it applies whole or not at all (the BullMQ rule: cf.
 * its moveToFinished); each script's header names its KEYS and ARGV.
 *
 * A script is assembled as BullMQ's loader does it: `--- @include "includes/<name>"` lines are replaced by that
 * file (once per script), and the key preamble from redis-keys.ts goes first. The .lua files are read at start-up
 * from the source tree, found relative to this module both from the sources and from dist/ (tsc copies no .lua),
 * so a fresh clone needs no extra build step.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { CargoError } from '../../errors/cargo-error.js';
import { luaKeyPreamble } from './redis-keys.js';

/** The scripts, by the ioredis command name they are defined under. */
export const JOB_SCRIPTS = {
  cpFeed: 'feed',
  cpStart: 'start',
  cpStartBatch: 'start-batch',
  cpEnd: 'end',
  cpEndBatch: 'end-batch',
  cpCancelBatch: 'cancel-batch',
  cpCancelFile: 'cancel-file',
  cpRegister: 'register',
  cpCrash: 'crash',
} as const;
export type JobScriptName = keyof typeof JOB_SCRIPTS;

type ScriptFn = (routingKey: string, ...args: (string | number)[]) => Promise<unknown>;
export type ScriptedRedis = Redis & Record<JobScriptName, ScriptFn>;

const INCLUDE = /^--- @include "([a-z0-9/_-]+)"\s*$/gm;

/** services/jobs/lua, from this module in the source tree or in dist/services/jobs. */
export function luaDirectory(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'lua'), join(here, '..', '..', '..', 'services', 'jobs', 'lua')];
  const found = candidates.find((d) => existsSync(join(d, 'includes', 'common.lua')));
  if (!found) {
    throw new CargoError('CARGO_ERR_INTERNAL', `the job store's Lua scripts are missing (looked in ${candidates.join(', ')}); reinstall cargoport`);
  }
  return found;
}

/** One script's source, includes resolved and the key preamble first. */
export function scriptSource(file: string, dir = luaDirectory()): string {
  const seen = new Set<string>();
  const body = readFileSync(join(dir, `${file}.lua`), 'utf8').replace(INCLUDE, (_line, name: string) => {
    if (seen.has(name)) return '';
    seen.add(name);
    return readFileSync(join(dir, `${name}.lua`), 'utf8');
  });
  return luaKeyPreamble() + body;
}

let sources: Record<JobScriptName, string> | undefined;

/** Every script, read once per process. */
export function jobScriptSources(): Record<JobScriptName, string> {
  if (!sources) {
    const dir = luaDirectory();
    sources = Object.fromEntries(Object.entries(JOB_SCRIPTS).map(([cmd, file]) => [cmd, scriptSource(file, dir)])) as Record<JobScriptName, string>;
  }
  return sources;
}

/**
 * Defines every script on `redis` (once per connection). Each takes one key, the routing key: every key of the
 * port shares the prefix's {hash tag}, so any of them routes the call to the right Redis Cluster node.
 */
export function defineJobScripts(redis: Redis): ScriptedRedis {
  const r = redis as ScriptedRedis;
  for (const [name, lua] of Object.entries(jobScriptSources())) {
    if (!(name in r)) r.defineCommand(name, { numberOfKeys: 1, lua });
  }
  return r;
}
