/**
 * The gateway's observable surface on a running port: HTTP/2 + TLS with ALPN, health, SSE state events,
 * Prometheus metrics, OpenAPI docs, status with live workers, paging files by state, cancel of one file.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { makeRandomFiles, sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { testTls } from '../support/tls.js';

describe('port: API surface', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  test('health and readiness over HTTP/2 (ALPN h2) and HTTP/1.1', async () => {
    const session = connect(h.gateway.url, { ca: testTls().cert });
    const proto = await new Promise<string | undefined>((res) => session.once('connect', () => res(session.alpnProtocol)));
    assert.equal(proto, 'h2');
    const status = await new Promise<number>((res, rej) => {
      const req = session.request({ ':path': '/healthz' });
      req.on('response', (hd) => res(Number(hd[':status'])));
      req.on('error', rej);
      req.resume();
    });
    assert.equal(status, 200);
    session.close();
    assert.equal((await h.api('GET', '/readyz')).status, 200);
  });

  test('SSE streams file and job state changes of a job', async () => {
    const dir = tempDir('sse');
    const files = makeRandomFiles(`${dir}/src`, 3, 10, 100);
    const session = connect(h.gateway.url, { ca: testTls().cert });
    const events: string[] = [];
    const stream = session.request({ ':path': '/api/v1/events' });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => events.push(d));
    await new Promise((res) => stream.once('response', res));
    await sleep(100);
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', { files: files.map((f) => ({ source: `file://${dir}/src/${f.name}`, destination: `file://${dir}/dst/${f.name}` })) });
    await h.waitJob(r.body.jobId);
    await sleep(300);
    stream.close();
    session.close();
    const text = events.join('');
    const datas = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { t: string; job: string; state: string; file?: number });
    const mine = datas.filter((d) => d.job === r.body.jobId);
    assert.ok(mine.some((d) => d.t === 'job' && d.state === 'ACTIVE'), text.slice(0, 500));
    assert.equal(mine.filter((d) => d.t === 'file' && d.state === 'FINISHED').length, 3);
    assert.ok(mine.some((d) => d.t === 'job' && d.state === 'FINISHED'));
  });

  test('metrics, docs and status', async () => {
    const m = await h.api<string>('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.body, /^cargoport_transfers_active \d+/m);
    assert.match(m.body, /^cargoport_workers\{pool="default",state="running"\} 1/m);
    assert.match(m.body, /cargoport_admin_scope_state\{scope="port",target="",state="running"\} 1/);
    const doc = await h.api<{ openapi: string; paths: Record<string, Record<string, unknown>> }>('GET', '/docs/openapi.json');
    assert.equal(doc.body.openapi, '3.0.3');
    for (const p of ['/api/v1/jobs', '/api/v1/jobs/{id}', '/api/v1/jobs/{id}/files', '/api/v1/admin/{op}', '/api/v1/status', '/api/v1/events']) assert.ok(doc.body.paths[p], p);
    assert.ok(doc.body.paths['/api/v1/jobs']!['post']);
    const html = await h.api<string>('GET', '/docs');
    assert.match(html.body, /cargoport API/);
    const st = await h.api<{ workers: Array<{ alive: boolean; concurrency: number }>; queues: Record<string, number> }>('GET', '/api/v1/status');
    assert.equal(st.body.workers.filter((w) => w.alive).length, 1);
    assert.equal(typeof st.body.queues['runQueueWaiting'], 'number');
  });

  test('paging by state and cancel of a single waiting file', async () => {
    // a link limit of 1 keeps all but one file waiting behind a slow first file
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: Array.from({ length: 25 }, (_, i) => ({ source: `https://127.0.0.1:9/never/${i}`, destination: `file:///tmp/cargoport-never/${i}` })),
      params: { retries: 0 },
    });
    const one = await h.api<{ state: string }>('DELETE', `/api/v1/jobs/${r.body.jobId}/files/24`);
    assert.equal(one.status, 200);
    assert.equal(one.body.state, 'CANCELED');
    // A file id the job does not have is the client's mistake, named, never a 500 (the Lua once took HEXISTS's 0 for true).
    for (const missing of ['25', '999999999']) {
      const bad = await h.api<{ code: string; field: string }>('DELETE', `/api/v1/jobs/${r.body.jobId}/files/${missing}`);
      assert.equal(bad.status, 404, JSON.stringify(bad.body));
      assert.equal(bad.body.code, 'CARGO_ERR_FILE_NOT_FOUND');
      assert.equal(bad.body.field, 'fileId');
    }
    const job = await h.waitJob(r.body.jobId);
    assert.equal(job['state'], 'FAILED', 'nothing reachable on port 9: every other file fails, none finishes');
    const canceled = await h.api<{ files: Array<{ fileId: number }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files?state=CANCELED`);
    assert.deepEqual(canceled.body.files.map((f) => f.fileId), [24]);
    const p1 = await h.api<{ files: Array<{ fileId: number; error?: { code: string } }>; nextCursor?: number }>('GET', `/api/v1/jobs/${r.body.jobId}/files?state=FAILED&limit=10`);
    assert.equal(p1.body.files.length, 10);
    assert.equal(p1.body.nextCursor, 9);
    assert.match(p1.body.files[0]!.error!.code, /^CARGO_ERR_/);
    const p3 = await h.api<{ files: unknown[]; nextCursor?: number }>('GET', `/api/v1/jobs/${r.body.jobId}/files?state=FAILED&limit=10&cursor=19`);
    assert.equal(p3.body.files.length, 4);
    assert.equal(p3.body.nextCursor, undefined);
    const list = await h.api<{ jobs: Array<{ jobId: string }> }>('GET', '/api/v1/jobs?limit=5');
    assert.ok(list.body.jobs.some((j) => j.jobId === r.body.jobId));
  });

  test('job bandwidth cap: 3 MiB at 1 MiB/s takes at least 2 s (a lower bound, immune to a slow machine)', async () => {
    const dir = tempDir('cap');
    const [f] = makeRandomFiles(`${dir}/src`, 1, 3 * 1024 * 1024, 3 * 1024 * 1024);
    const t0 = Date.now();
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: [{ source: `file://${dir}/src/${f!.name}`, destination: `file://${dir}/dst/${f!.name}`, checksum: `adler32:${f!.adler32}` }],
      params: { bandwidthBytesPerSec: 1024 * 1024 },
    });
    const job = await h.waitJob(r.body.jobId);
    const secs = (Date.now() - t0) / 1000;
    assert.equal(job['state'], 'FINISHED');
    // the burst allowance is 256 KiB (250 ms), so 3 MiB need ≥ 2.75 s at 1 MiB/s
    assert.ok(secs >= 1.9, `finished in ${secs.toFixed(2)} s, faster than the cap allows`);
  });

  test('live rate caps (admin API): a port cap holds a running transfer back; lifting it lets the job finish', async () => {
    const bad = [
      [{ scope: 'link', bytesPerSec: 1000 }, 'target'],
      [{ scope: 'port', bytesPerSec: 0 }, 'bytesPerSec'],
      [{ scope: 'galaxy', bytesPerSec: 1000 }, 'scope'],
    ] as const;
    for (const [body, field] of bad) {
      const r = await h.api<Record<string, unknown>>('PUT', '/api/v1/admin/limits', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(JSON.stringify(r.body), new RegExp(field));
    }
    const cap = 512 * 1024;
    const set = await h.api<Array<{ scope: string; bytesPerSec: number }>>('PUT', '/api/v1/admin/limits', { scope: 'port', bytesPerSec: cap });
    assert.deepEqual(set.body, [{ scope: 'port', bytesPerSec: cap }]);
    const dir = tempDir('live-cap');
    const [f] = makeRandomFiles(`${dir}/src`, 1, 8 * 1024 * 1024, 8 * 1024 * 1024);
    try {
      const t0 = Date.now();
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: [{ source: `file://${dir}/src/${f!.name}`, destination: `file://${dir}/dst/${f!.name}`, checksum: `adler32:${f!.adler32}` }],
      });
      await new Promise((res) => setTimeout(res, 1500));
      const elapsed = (Date.now() - t0) / 1000;
      const partBytes = existsSync(`${dir}/dst`)
        ? readdirSync(`${dir}/dst`).reduce((n, name) => n + statSync(`${dir}/dst/${name}`).size, 0)
        : 0;
      // An upper bound (a slow machine only moves less): the 1 MiB burst, the cap over the elapsed time, one
      // 1 MiB write batch of slack.
      const allowed = 1024 * 1024 + cap * elapsed + 1024 * 1024;
      assert.ok(partBytes <= allowed, `${partBytes} bytes moved in ${elapsed.toFixed(1)} s under a ${cap} B/s cap`);
      const mid = await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${r.body.jobId}`);
      assert.equal(mid.body['state'], 'ACTIVE', 'still held back');
      const lifted = await h.api<unknown[]>('PUT', '/api/v1/admin/limits', { scope: 'port', bytesPerSec: null });
      assert.deepEqual(lifted.body, []);
      const job = await h.waitJob(r.body.jobId, 60_000);
      assert.equal(job['state'], 'FINISHED');
    } finally {
      await h.api('PUT', '/api/v1/admin/limits', { scope: 'port', bytesPerSec: null });
    }
  });

  test('maxTimeInQueueSec: files still waiting after it fail with CARGO_ERR_QUEUE_TIMEOUT', async () => {
    await h.api('POST', '/api/v1/admin/pause', { scope: 'endpoint', target: '127.0.0.1:9' });
    try {
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: Array.from({ length: 5 }, (_, i) => ({ source: `https://127.0.0.1:9/q/${i}`, destination: `file:///tmp/cargoport-never/q${i}` })),
        params: { maxTimeInQueueSec: 1 },
      });
      const job = await h.waitJob(r.body.jobId, 20_000);
      assert.equal(job['state'], 'FAILED');
      const f = await h.api<{ state: string; error?: { code: string } }>('GET', `/api/v1/jobs/${r.body.jobId}/files/3`);
      assert.equal(f.body.error?.code, 'CARGO_ERR_QUEUE_TIMEOUT');
    } finally {
      await h.api('POST', '/api/v1/admin/resume', { scope: 'endpoint', target: '127.0.0.1:9' });
    }
  });

  test('params.processing is validated by the processing library, errors naming the field', async () => {
    const files = [{ source: 'https://127.0.0.1:9/x', destination: 'file:///tmp/cargoport-never/x' }];
    const post = (processing: unknown, f: unknown[] = files) => h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: f, params: { processing } });
    // The old list-of-names form is no longer the schema.
    let r = await post(['zstd']);
    assert.equal(r.status, 400);
    r = await post({ emission: [{ stage: 'zstd', level: 99 }] });
    assert.equal(r.status, 400);
    assert.equal(r.body['code'], 'CARGO_ERR_BAD_PROCESSING');
    assert.equal(r.body['field'], 'params.processing.emission[0].level');
    r = await post({ reception: [{ stage: 'nosuch' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body['code'], 'CARGO_ERR_UNKNOWN_STAGE');
    assert.equal(r.body['field'], 'params.processing.reception[0].stage');
    r = await post({ reception: [{ stage: 'hook', hook: 'not-registered' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body['code'], 'CARGO_ERR_UNKNOWN_STAGE');
    // untar publishes into a local directory: refused towards a remote destination, naming the file.
    r = await post({ reception: [{ stage: 'untar' }] }, [{ source: 'file:///tmp/cargoport-never/a.tar', destination: 'https://127.0.0.1:9/a.tar' }]);
    assert.equal(r.status, 400);
    assert.equal(r.body['code'], 'CARGO_ERR_BAD_PROCESSING');
    assert.match(String(r.body['detail']), /files\[0\]/);
    // A file's own processing is checked the same way, and cannot pack.
    r = await post(undefined, [{ ...files[0], processing: { emission: [{ stage: 'zstd', threads: -1 }] } }]);
    assert.equal(r.status, 400);
    assert.equal(r.body['field'], 'files[0].processing.emission[0].threads');
    r = await post(undefined, [{ ...files[0], processing: { pack: {} } }]);
    assert.equal(r.status, 400);
    // A valid chain is accepted and kept as submitted.
    r = await post({ emission: [{ stage: 'zstd', level: 1, suffix: true }], reception: [{ stage: 'checksum', algs: ['sha256'] }] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const job = await h.api<{ params: { processing?: unknown } }>('GET', `/api/v1/jobs/${String(r.body['jobId'])}`);
    assert.deepEqual(job.body.params.processing, { emission: [{ stage: 'zstd', level: 1, suffix: true }], reception: [{ stage: 'checksum', algs: ['sha256'] }] });
    await h.api('DELETE', `/api/v1/jobs/${String(r.body['jobId'])}`);
  });
});
