/**
 * The `hook` stage: runs a site hook the operator registered (site-hooks.ts) on the file's bytes.
 *
 *   {stage: 'hook', hook: 'fits-verify', params: {LEVEL: '2'}}
 *
 * User values reach a hook only as environment variables CARGOPORT_PARAM_<NAME>, and only names the hook declares,
 * each value matched whole by the operator's pattern, at most 1024 characters, no control characters — never as
 * arguments, never through a shell.
 */
import { basename } from 'node:path';
import type { StageDefinition } from './stage-registry.js';
import { readOptions, stringMapOption, stringOption } from './stage-options.js';
import { HOOK_NAME, MAX_PARAM_VALUE, type SiteHook } from './site-hooks.js';
import { ExecHookStream } from './exec-hook-stream.js';
import { ProcessingError, badProcessing } from './processing-errors.js';
import { bindAbort } from './gate-stage.js';

export interface HookRuntime {
  readonly workDir: string;
  readonly stderrBytes: number;
}

// Printable characters only: no NUL, newline or other control character reaches a hook's environment.
const SAFE_VALUE = /^[^\p{Cc}]*$/u;

export function hookStage(hooks: ReadonlyMap<string, SiteHook>, runtime: HookRuntime) {
  const readers = {
    hook: stringOption(HOOK_NAME, 'the name of a hook registered in processing.hooks'),
    params: stringMapOption(32),
  };
  const parse = (raw: Record<string, unknown>, field: string) => {
    const o = readOptions(raw, readers, field, 'hook');
    if (o.hook === undefined) throw badProcessing(`${field}.hook`, 'is required: the name of a hook registered in processing.hooks');
    const hook = hooks.get(o.hook);
    if (!hook) {
      throw new ProcessingError('CARGO_ERR_UNKNOWN_STAGE',
        `${field}.hook: no hook ${JSON.stringify(o.hook)} is registered (known: ${[...hooks.keys()].join(', ') || 'none'})`, { field: `${field}.hook` });
    }
    for (const [name, value] of Object.entries(o.params)) {
      const f = `${field}.params.${name}`;
      const rule = hook.params.get(name);
      if (!rule) throw badProcessing(f, `hook "${hook.name}" takes no parameter ${name} (it takes: ${[...hook.params.keys()].join(', ') || 'none'})`);
      if (value.length > MAX_PARAM_VALUE || !SAFE_VALUE.test(value)) throw badProcessing(f, `must be at most ${MAX_PARAM_VALUE} printable characters`);
      if (!rule.test(value)) throw badProcessing(f, `${JSON.stringify(value)} is not allowed by hook "${hook.name}" (must match ${rule.source})`);
    }
    return { hook, params: o.params };
  };
  const def: StageDefinition<ReturnType<typeof parse>> = {
    name: 'hook',
    sides: ['emission', 'reception'],
    parseOptions: parse,
    checkSide: ({ hook }, side, field) => {
      if (!hook.sides.includes(side)) throw badProcessing(field, `hook "${hook.name}" may not run at ${side} (processing.hooks.${hook.name}.sides)`);
    },
    build: ({ hook, params }, ctx) => {
      const fileName = basename(ctx.fileName);
      const userEnv = Object.fromEntries(Object.entries(params).map(([k, v]) => [`CARGOPORT_PARAM_${k}`, v]));
      if (hook.kind === 'module') {
        return {
          name: ctx.label,
          create: () => bindAbort(hook.factory!({ hook: hook.name, side: ctx.side, params, options: hook.options, fileName, ...(ctx.signal ? { signal: ctx.signal } : {}) }), ctx.signal),
        };
      }
      const env: Record<string, string> = {
        PATH: '/usr/local/bin:/usr/bin:/bin',
        LANG: 'C.UTF-8',
        TMPDIR: runtime.workDir,
        ...hook.env,
        CARGOPORT_HOOK: hook.name,
        CARGOPORT_SIDE: ctx.side,
        ...(SAFE_VALUE.test(fileName) && fileName.length <= 4096 ? { CARGOPORT_FILE_NAME: fileName } : {}),
        ...userEnv,
      };
      return {
        name: ctx.label,
        create: () => bindAbort(new ExecHookStream({ hook, env, workDir: runtime.workDir, stderrBytes: runtime.stderrBytes, ...(ctx.gate ? { gate: ctx.gate } : {}) }), ctx.signal),
      };
    },
  };
  return def;
}
