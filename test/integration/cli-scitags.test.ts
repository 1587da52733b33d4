/**
 * `cargoport scitags`: the real CLI in a child process lists the bundled registry with flow ids and labels,
 * refuses an unknown experiment (exit 2) and a --refresh with no registry URL (exit 2), and refreshes from a URL
 * (a local HTTP server serving a one-experiment registry).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = join(resolve(fileURLToPath(import.meta.url), '../../../..'), 'bin', 'cargoport.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_')));
  return new Promise((res) => {
    execFile(process.execPath, [cli, ...args], { env }, (err, stdout, stderr) => res({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

test('lists an experiment with flow ids and labels', async () => {
  const r = await run(['scitags', 'cms']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^cms \(experiment 3\)$/m);
  assert.match(r.stdout, /^ +14 +flow id +206 +label 0x30038 +Analysis Input$/m);
  assert.doesNotMatch(r.stdout, /atlas/);
  const all = await run(['scitags', '--json']);
  assert.equal(JSON.parse(all.stdout).experiments.length, 14);
});

test('refuses an unknown experiment and a refresh without a URL', async () => {
  assert.equal((await run(['scitags', 'nosuch'])).code, 2);
  assert.equal((await run(['scitags', '--refresh'])).code, 2);
});

test('--refresh reads the registry from a URL', async () => {
  const doc = { version: 1, modified: '2030-01-01T00:00:00+00:00', experiments: [{ expName: 'newexp', expId: 42, activities: [{ activityName: 'default', activityId: 1 }] }] };
  const srv = createServer((_q, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify(doc)));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const r = await run(['scitags', '--refresh', '--registry-url', `http://127.0.0.1:${(srv.address() as AddressInfo).port}/api.json`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /modified 2030-01-01/);
    assert.match(r.stdout, /newexp \(experiment 42\)\n +1 +flow id +2689 /);
  } finally {
    srv.close();
  }
});
