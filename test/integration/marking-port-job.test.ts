/**
 * Marking through the port: a job naming its experiment and each file's activity (params.experiment "atlas",
 * activity "Production Output") pulls from a server on ::1; the worker's connection sends fireflies for
 * ATLAS / Production Output, the source sees `SciTag: 144`, and /api/v1/status and /metrics report the marking
 * state (flows, fireflies, each backend with the reason it is off). A job naming an unknown activity is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { startFireflyCollector, validateFirefly, type FireflyCollector } from '../support/firefly-collector.js';
import { configureMarking, type MarkingStatus } from '../../services/marking/marking-service.js';
import { sleep } from '../support/fixtures.js';

let h: Harness;
let srv: H2FileServer;
let root: string;
let dst: string;
let peer: FireflyCollector;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cargoport-markjob-src-'));
  dst = await mkdtemp(join(tmpdir(), 'cargoport-markjob-dst-'));
  srv = await startH2FileServer({ root, host: '::1' });
  peer = await startFireflyCollector('udp6', '::1');
  h = await startHarness({ marking: { firefliesPeerPort: peer.port, ongoingIntervalMs: 0 } });
});

after(async () => {
  await h.close();
  await configureMarking({});
  await srv.close();
  await peer.close();
  await rm(root, { recursive: true, force: true });
  await rm(dst, { recursive: true, force: true });
});

test('a job with experiment / activity names is marked end to end and the state is visible', async () => {
  await writeFile(join(root, 'a.bin'), randomBytes(1024 * 1024));
  const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
    files: [{ source: `https://[::1]:${srv.port}/a.bin`, destination: `file://${dst}/a.bin`, activity: 'Production Output' }],
    params: { experiment: 'atlas' },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const job = await h.waitJob(r.body.jobId);
  assert.equal(job['state'], 'FINISHED');
  assert.equal(srv.requests.find((q) => q.method === 'GET')?.headers['scitag'], '144');
  await Promise.all(h.workers.map((w) => w.engine.close())); // the pooled connections close: their flows end
  for (const t0 = Date.now(); !peer.received.some((f) => f.body['flow-lifecycle'].state === 'end'); await sleep(20)) {
    if (Date.now() - t0 > 10_000) assert.fail('no end firefly');
  }
  for (const f of peer.received) {
    assert.ok(validateFirefly(f.body));
    assert.equal(f.body['context']['experiment-id'], 2);
    assert.equal(f.body['context']['activity-id'], 16);
  }

  const status = (await h.api<{ marking: MarkingStatus }>('GET', '/api/v1/status')).body.marking;
  assert.equal(status.enabled, true);
  assert.ok(status.flowsStarted >= 1 && status.firefliesSent >= 2, JSON.stringify(status));
  assert.deepEqual(status.backends.map((b) => b.name), ['fireflies', 'socket', 'ebpf', 'flowd-pipe']);
  assert.match(status.backends.find((b) => b.name === 'flowd-pipe')!.reason!, /marking.flowdPipe is empty/);
  const metrics = (await h.api<string>('GET', '/metrics')).body;
  assert.match(String(metrics), /cargoport_marking_backend_up\{backend="ebpf"\} 0/);
  assert.match(String(metrics), /cargoport_marking_events_total\{kind="fireflies_sent"\} [1-9]/);
});

test('a job naming an activity its experiment lacks is refused with the field', async () => {
  const r = await h.api<{ code: string; field: string }>('POST', '/api/v1/jobs', {
    files: [{ source: `https://[::1]:${srv.port}/a.bin`, destination: `file://${dst}/b.bin`, activity: 'Cache' }],
    params: { experiment: 'atlas' },
  });
  assert.equal(r.status, 400);
  assert.equal(r.body.code, 'CARGO_ERR_BAD_SCITAG');
  assert.equal(r.body.field, 'files[0].activity');
});
