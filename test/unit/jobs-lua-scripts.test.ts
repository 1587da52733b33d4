/**
 * The job store's Lua scripts as files: found from dist/ (tsc copies no .lua), each with a header naming its KEYS and
 * ARGV, includes resolved, and every key written through the one key module (redis-keys.ts) — no key literal of its
 * own, no name the module does not define (which Lua would only find at run time, as a nil concatenation).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { JOB_SCRIPTS, jobScriptSources, luaDirectory, scriptSource } from '../../services/jobs/lua-scripts.js';
import { JOB_KEYS, PORT_KEYS, RedisKeys, luaKeyPreamble } from '../../services/jobs/redis-keys.js';

test('the scripts are found from the compiled module, one file per command, each with a KEYS/ARGV header', () => {
  const dir = luaDirectory();
  const files = readdirSync(dir).filter((f) => f.endsWith('.lua')).map((f) => f.slice(0, -4)).sort();
  assert.deepEqual(files, Object.values(JOB_SCRIPTS).sort(), 'every .lua file is a defined command and the reverse');
  for (const name of files) {
    const raw = readFileSync(join(dir, `${name}.lua`), 'utf8');
    assert.match(raw, /^--\[\[[\s\S]*?Input:[\s\S]*?KEYS\[1\][\s\S]*?ARGV\[1\][\s\S]*?Output:[\s\S]*?\]\]/, `${name}.lua header`);
    assert.match(raw, /^--- @include "includes\/common"$/m, `${name}.lua includes the common helpers`);
  }
});

test('includes are resolved once and the key preamble comes first', () => {
  const src = scriptSource('start');
  assert.ok(src.startsWith(luaKeyPreamble()));
  assert.doesNotMatch(src, /^--- @include/m);
  assert.equal(src.match(/local function loadFs/g)?.length, 1);
  assert.equal(Object.keys(jobScriptSources()).length, Object.keys(JOB_SCRIPTS).length);
});

test('the Lua names keys only through K and J, and only names the key module defines', () => {
  const dir = luaDirectory();
  const lua = [join(dir, 'includes', 'common.lua'), ...Object.values(JOB_SCRIPTS).map((f) => join(dir, `${f}.lua`))]
    .map((p) => readFileSync(p, 'utf8')).join('\n');
  assert.doesNotMatch(lua, /P\s*\.\.\s*'/, 'no key spelled out after the prefix');
  for (const [, name] of lua.matchAll(/\bK\.(\w+)/g)) assert.ok(name! in PORT_KEYS, `K.${name} is not in PORT_KEYS`);
  for (const [, name] of lua.matchAll(/\bJ\.(\w+)/g)) assert.ok(name! in JOB_KEYS, `J.${name} is not in JOB_KEYS`);
});

test('the TypeScript and the Lua build the same key names', () => {
  const k = new RedisKeys('{p}');
  assert.equal(k.port('owners'), '{p}:owners');
  assert.equal(k.port('rate', 'job1', 7), '{p}:rate:job1:7');
  assert.equal(k.jobPart('j', 'byState', 'QUEUED'), '{p}:job:j:st:QUEUED');
  assert.equal(k.lane('j', 'a:443>local'), '{p}:lane:j:a:443>local');
  const pre = luaKeyPreamble();
  assert.match(pre, /owners = P\.\.':owners'/);
  assert.match(pre, /byState = ':st'/);
});
