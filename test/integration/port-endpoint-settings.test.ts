/**
 * transfer.endpointsFile: per-endpoint settings reach the workers' engine. An origin marked http1Only is pulled
 * over HTTP/1.1 although it offers HTTP/2; another origin on the same server name keeps HTTP/2. And
 * transfer.stallTimeoutSec reaches the engine's stall watchdog.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';

let h: Harness;
let legacy: H2FileServer;
let modern: H2FileServer;

before(async () => {
  legacy = await startH2FileServer({ root: tempDir('ep-legacy') });
  modern = await startH2FileServer({ root: tempDir('ep-modern') });
  const settings = join(tempDir('ep-settings'), 'endpoints.yaml');
  writeFileSync(settings, `${legacy.origin}: { http1Only: true, connections: 2 }\n`);
  h = await startHarness({ transfer: { endpointsFile: settings, stallTimeoutSec: 1 } });
});
after(async () => {
  await h?.close();
  await legacy?.close();
  await modern?.close();
});

test('an endpoint marked http1Only is pulled over HTTP/1.1; others keep HTTP/2', async () => {
  const [a] = makeRandomFiles(legacy.root, 1, 100_000, 100_000, 'legacy');
  const [b] = makeRandomFiles(modern.root, 1, 100_000, 100_000, 'modern');
  const dst = tempDir('ep-dst');
  const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
    files: [
      { source: legacy.url(`/${a!.name}`), destination: `file://${dst}/${a!.name}`, checksum: `adler32:${a!.adler32}` },
      { source: modern.url(`/${b!.name}`), destination: `file://${dst}/${b!.name}`, checksum: `adler32:${b!.adler32}` },
    ],
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const job = await h.waitJob(r.body.jobId);
  assert.equal(job['state'], 'FINISHED', JSON.stringify(job));
  const proto = async (i: number) => (await h.api<{ attempts: Array<{ protocol?: string }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/${i}`)).body.attempts[0]?.protocol;
  assert.equal(await proto(0), 'http/1.1');
  assert.equal(await proto(1), 'h2');
});

test('a bad endpoints file stops the worker with the origin and the field named', async () => {
  const bad = join(tempDir('ep-bad'), 'endpoints.yaml');
  writeFileSync(bad, 'https://x.example: { streams: 0 }\n');
  await assert.rejects(h.addWorker({ transfer: { endpointsFile: bad } }), /https:\/\/x\.example: streams must be an integer from 1 to 256/);
});

test('transfer.stallTimeoutSec reaches the engine: a source that goes silent fails with CARGO_ERR_STALLED', async () => {
  const [f] = makeRandomFiles(modern.root, 1, 2_000_000, 2_000_000, 'stall');
  modern.faults.stallAfter = { count: 10, afterBytes: 100_000 };
  try {
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: [{ source: modern.url(`/${f!.name}`), destination: `file://${tempDir('ep-stall')}/${f!.name}` }],
      params: { retries: 0 },
    });
    // With the default of 60 s this would outlast the wait below; 1 s from the configuration ends it.
    const job = await h.waitJob(r.body.jobId, 30_000);
    assert.equal(job['state'], 'FAILED', JSON.stringify(job));
    const file = (await h.api<{ error?: { code: string } }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
    assert.equal(file.error?.code, 'CARGO_ERR_STALLED');
  } finally {
    modern.faults.stallAfter = undefined;
  }
});
