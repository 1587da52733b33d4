/**
 * The OpenAPI document describes what the API answers (response schemas, not only requests), and the serialiser
 * those schemas drive keeps every field the services return: a job read back has its full parameters, the status
 * its slots and per-link rates, a file its attempts. Real gateway, Redis, TLS + HTTP/2, one worker.
 */
import assert from 'node:assert/strict';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHarness, type Harness } from '../support/port-harness.js';

let h: Harness;
let dir: string;
before(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'cp-openapi-'));
});
after(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

type Schema = { properties?: Record<string, Schema>; items?: Schema; type?: string | string[] };
const responseSchema = (doc: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>, path: string, method = 'get') =>
  doc[path]?.[method]?.responses['200']?.content?.['application/json']?.schema;

test('the OpenAPI document has response schemas for jobs, files, status and health', async () => {
  const doc = (await h.api<{ paths: Parameters<typeof responseSchema>[0] }>('GET', '/docs/openapi.json')).body.paths;
  assert.ok(responseSchema(doc, '/api/v1/jobs')?.properties?.['jobs']?.items?.properties?.['bytesDone']);
  assert.ok(responseSchema(doc, '/api/v1/jobs/{id}')?.properties?.['etaSec']);
  assert.ok(responseSchema(doc, '/api/v1/jobs/{id}/files')?.properties?.['files']?.items?.properties?.['error']);
  assert.ok(responseSchema(doc, '/api/v1/jobs/{id}/files/{fileId}')?.properties?.['attempts']?.items?.properties?.['remoteIp']);
  assert.ok(responseSchema(doc, '/api/v1/status')?.properties?.['unavailableEndpoints']);
  assert.ok(responseSchema(doc, '/api/v1/status')?.properties?.['transfers']?.properties?.['links']);
  assert.ok(responseSchema(doc, '/healthz')?.properties?.['status']);
  assert.ok(responseSchema(doc, '/api/v1/jobs/{id}', 'delete'));
});

test('answers keep every field through the response schemas', async () => {
  const src = join(dir, 'a.dat');
  writeFileSync(src, Buffer.alloc(4096, 7));
  const sub = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
    files: [{ source: `file://${src}`, destination: `file://${dir}/b.dat`, metadata: { run: 12, tags: ['x'] } }],
    params: { retries: 1, streams: 2 },
  });
  assert.equal(sub.status, 201);
  const done = await h.waitJob(sub.body.jobId);
  assert.equal(done['state'], 'FINISHED');
  const params = done['params'] as Record<string, unknown>;
  assert.equal(params['streams'], 2);
  assert.equal(params['owner'], 'anonymous', 'a field the schema does not list survives');
  const file = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${sub.body.jobId}/files/0`)).body;
  assert.deepEqual(file['metadata'], { run: 12, tags: ['x'] });
  assert.equal((file['attempts'] as Array<Record<string, unknown>>)[0]!['outcome'], 'ok');
  assert.equal(file['bytes'], 4096);
  const status = (await h.api<Record<string, Record<string, unknown>>>('GET', '/api/v1/status')).body;
  assert.ok(status['slots'] && 'links' in status['slots'] && 'endpoints' in status['slots']);
  assert.ok(Array.isArray(status['workers']) && (status['workers'] as Array<Record<string, unknown>>)[0]!['alive'] === true);
  assert.equal(typeof status['transfers']!['links'], 'object');
  const metrics = (await h.api<string>('GET', '/metrics')).body;
  assert.match(metrics, /cargoport_files_finished_total\{link="local>local"\} 1/);
  assert.match(metrics, /cargoport_attempts_total\{outcome="ok",link="local>local"\} 1/);
});
