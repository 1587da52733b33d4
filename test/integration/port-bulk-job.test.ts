/**
 * The port end to end on real Redis, real TLS and real HTTP/2: a 1,000-file job between two local HTTPS
 * endpoints completes with every checksum verified and every byte equal; malformed submissions get 400
 * problem bodies and enqueue nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sameContent, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

describe('port: bulk job between two HTTPS endpoints', () => {
  let h: Harness;
  let src: H2FileServer;
  let dst: H2FileServer;
  before(async () => {
    h = await startHarness({ scheduler: { linkMaxActive: 64 } });
    src = await startH2FileServer({ root: tempDir('src') });
    dst = await startH2FileServer({ root: tempDir('dst') });
  });
  after(async () => {
    await h.close();
    await src.close();
    await dst.close();
  });

  test('1,000 files https → https, every checksum verified, every byte equal', async () => {
    const files = makeRandomFiles(src.root, 1000, 1, 64 * 1024);
    const r = await h.api<{ jobId: string; files: number }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/${f.name}`), destination: dst.url(`/out/${f.name}`), checksum: `adler32:${f.adler32}`, size: f.size })),
      params: { verifyChecksum: 'both', retries: 2, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.files, 1000);
    const job = await h.waitJob(r.body.jobId, 120_000);
    assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
    assert.equal((job['counts'] as Record<string, number>)['FINISHED'], 1000);
    assert.equal(job['bytesDone'], files.reduce((a, f) => a + f.size, 0));
    // every file: FINISHED once, its checksum recorded and equal to the source's, content identical
    let cursor: number | undefined;
    let seen = 0;
    do {
      const page = await h.api<{ files: Array<{ fileId: number; state: string; checksumValue?: string; attempts: Array<{ outcome: string }> }>; nextCursor?: number }>(
        'GET', `/api/v1/jobs/${r.body.jobId}/files?limit=300${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      for (const f of page.body.files) {
        const fx = files[f.fileId]!;
        assert.equal(f.state, 'FINISHED');
        assert.equal(f.checksumValue, fx.adler32, `file ${f.fileId}`);
        assert.equal(f.attempts.filter((a) => a.outcome === 'ok').length, 1);
        seen++;
      }
      cursor = page.body.nextCursor;
    } while (cursor !== undefined);
    assert.equal(seen, 1000);
    for (const f of files) assert.ok(sameContent(join(src.root, f.name), join(dst.root, 'out', f.name)), f.name);
    // nothing partial left at the destination
    assert.deepEqual(readdirSync(join(dst.root, 'out')).filter((n) => !files.some((f) => f.name === n)), []);
  });

  test('malformed submissions: 400 with a problem body naming the cause, nothing enqueued', async () => {
    const before = await h.redis.zcard(`${h.cfg.redis.prefix}:jobs`);
    const ok = { source: src.url('/a'), destination: dst.url('/b') };
    const cases: Array<[string, unknown, string | RegExp]> = [
      ['wrong type', { files: [{ source: 42, destination: dst.url('/b') }] }, 'files[0].source'],
      ['unknown top-level field', { files: [ok], bogus: true }, 'bogus'],
      ['unknown file field', { files: [{ ...ok, sourcee: 'x' }] }, 'files[0].sourcee'],
      ['unknown param', { files: [ok], params: { priorty: 3 } }, 'params.priorty'],
      ['priority out of range', { files: [ok], params: { priority: 9 } }, 'params.priority'],
      ['unknown copy mode', { files: [ok], params: { copyMode: 'fast' } }, 'params.copyMode'],
      ['no files', { files: [] }, 'files'],
      ['missing destination', { files: [{ source: ok.source }] }, 'files[0].destination'],
      ['invalid URL', { files: [{ source: 'not a url', destination: ok.destination }] }, 'files[0].source'],
      ['unsupported scheme', { files: [{ source: 'gsiftp://host/x', destination: ok.destination }] }, 'files[0].source'],
      ['file URL with host', { files: [{ source: 'file://evil.example/etc/passwd', destination: ok.destination }] }, 'files[0].source'],
      ['dot segments', { files: [{ source: ok.source, destination: `${dst.origin}/a/../../etc/x` }] }, 'files[0].destination'],
      ['bad checksum', { files: [{ ...ok, checksum: 'adler32:xyz' }] }, 'files[0].checksum'],
      ['unknown checksum alg', { files: [{ ...ok, checksum: 'crc64:1234' }] }, 'files[0].checksum'],
      ['scitag out of range', { files: [{ ...ok, scitag: 12 }] }, 'files[0].scitag'],
      ['duplicate destination', { files: [ok, { source: src.url('/c'), destination: ok.destination }] }, 'files[1].destination'],
      ['same source and destination', { files: [{ source: ok.source, destination: ok.source }] }, 'files[0].destination'],
    ];
    for (const [name, body, field] of cases) {
      const r = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', body);
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
      assert.equal(String(r.headers['content-type']).split(';')[0], 'application/problem+json', name);
      assert.equal(r.body['status'], 400, name);
      assert.match(String(r.body['code']), /^CARGO_ERR_/, name);
      assert.equal(r.body['field'], field, `${name}: ${JSON.stringify(r.body)}`);
    }
    // raw garbage: not JSON, 10 MB of it, wrong media type
    const garbage = Buffer.alloc(10 * 1024 * 1024, 'x{[');
    for (const [name, body, headers] of [
      ['truncated JSON', '{"files": [', { 'content-type': 'application/json' }],
      ['10 MB of garbage', garbage, { 'content-type': 'application/json' }],
      ['JSON null', 'null', { 'content-type': 'application/json' }],
      ['JSON array', '[1,2,3]', { 'content-type': 'application/json' }],
    ] as Array<[string, string | Buffer, Record<string, string>]>) {
      const r = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', body, headers);
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body).slice(0, 300)}`);
      assert.match(String(r.body['detail']), /./, name);
    }
    const wrongType = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', 'files=1', { 'content-type': 'text/plain' });
    assert.equal(wrongType.status, 415);
    assert.equal(await h.redis.zcard(`${h.cfg.redis.prefix}:jobs`), before, 'nothing was enqueued');
    assert.ok(!existsSync(join(dst.root, 'b')));
  });

  test('unknown job and file ids answer 404 problems; bad ids 400', async () => {
    const missing = await h.api<Record<string, unknown>>('GET', '/api/v1/jobs/00000000-0000-0000-0000-000000000000');
    assert.equal(missing.status, 404);
    assert.equal(missing.body['code'], 'CARGO_ERR_JOB_NOT_FOUND');
    const bad = await h.api<Record<string, unknown>>('GET', '/api/v1/jobs/..%2f..%2fetc');
    assert.equal(bad.status, 400);
    const noRoute = await h.api<Record<string, unknown>>('GET', '/api/v1/nope');
    assert.equal(noRoute.status, 404);
  });
});
