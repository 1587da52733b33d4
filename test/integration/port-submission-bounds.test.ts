/**
 * Submission bounds (issue 11, item 5) and "every 5xx is a real server fault", on a real port (Redis, TLS, HTTP/2):
 * - more files than jobs.maxFilesPerJob or a body over gateway.bodyLimitBytes: 413 problem+json naming the limit;
 * - an owner's files not yet finished bounded by jobs.maxQueuedFilesPerOwner: 429 naming it, room again once the
 *   owner's job is canceled;
 * - a finished job's file records expire after jobs.fileRetentionSec and its summary after jobs.retentionSec
 *   (before: kept forever);
 * - fuzz: malformed JSON, wrong types, hostile ids and paths on the API and the storage endpoint answer 4xx, never
 *   5xx (seeded, so a failure replays).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startHarness, type Harness } from '../support/port-harness.js';
import { h2Connect, h2Request } from '../support/h2-request.js';

async function withPort(overrides: Record<string, unknown>, fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness(overrides, { workers: 0 });
  try {
    await fn(h);
  } finally {
    await h.close();
    rmSync(h.cfg.dataDir, { recursive: true, force: true });
  }
}

const files = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ source: `https://source.invalid/${tag}/${i}`, destination: `https://dest.invalid/${tag}/${i}` }));

test('413 for too many files or too large a body, 429 for an owner over its queued files; problems name the limit', async () => {
  await withPort({ jobs: { maxFilesPerJob: 4, maxQueuedFilesPerOwner: 5 }, gateway: { bodyLimitBytes: 4096 } }, async (h) => {
    const tooMany = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: files(5, 'a') });
    assert.equal(tooMany.status, 413, JSON.stringify(tooMany.body));
    assert.equal(tooMany.body['code'], 'CARGO_ERR_TOO_MANY_FILES');
    assert.equal(tooMany.body['limit'], 'jobs.maxFilesPerJob');
    assert.equal(tooMany.body['max'], 4);
    const tooLarge = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: files(2, 'x'.repeat(3000)) });
    assert.equal(tooLarge.status, 413, JSON.stringify(tooLarge.body));
    assert.equal(tooLarge.body['code'], 'CARGO_ERR_BODY_TOO_LARGE');
    assert.equal(tooLarge.body['limit'], 'gateway.bodyLimitBytes');
    assert.equal(tooLarge.body['max'], 4096);

    // The harness runs with open authorisation: every submission is the owner `anonymous` (per-owner separation is
    // the owner lookup's, gateway/auth.ts; the count is per owner in job-queries.ts unfinishedFilesOf).
    const first = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: files(3, 'b') });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const over = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: files(3, 'c') });
    assert.equal(over.status, 429, JSON.stringify(over.body));
    assert.equal(over.body['code'], 'CARGO_ERR_OWNER_QUEUE_FULL');
    assert.equal(over.body['limit'], 'jobs.maxQueuedFilesPerOwner');
    assert.equal(over.body['max'], 5);
    assert.ok(over.headers['retry-after']);
    // Up to the bound is fine.
    const second = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: files(2, 'd') });
    assert.equal(second.status, 201);
    assert.equal((await h.api('POST', '/api/v1/jobs', { files: files(1, 'e') })).status, 429);
    // Canceled files no longer count.
    assert.equal((await h.api('DELETE', `/api/v1/jobs/${first.body['jobId']}`)).status, 200);
    assert.equal((await h.api('POST', '/api/v1/jobs', { files: files(3, 'f') })).status, 201);
  });
});

test('a finished job\'s file records expire after jobs.fileRetentionSec, its summary after jobs.retentionSec', async () => {
  await withPort({ jobs: { fileRetentionSec: 120, retentionSec: 3600 } }, async (h) => {
    const r = await h.api<Record<string, unknown>>('POST', '/api/v1/jobs', { files: files(50, 'r') });
    assert.equal(r.status, 201);
    const jobId = String(r.body['jobId']);
    const jk = `${h.cfg.redis.prefix}:job:${jobId}`;
    assert.equal(await h.redis.ttl(jk), -1, 'an active job is kept');
    assert.equal(await h.redis.ttl(`${jk}:spec`), -1);
    assert.equal((await h.api('DELETE', `/api/v1/jobs/${jobId}`)).status, 200);
    const job = await h.waitJob(jobId);
    assert.equal(job['state'], 'CANCELED');
    for (const part of ['spec', 'st:CANCELED']) {
      const ttl = await h.redis.ttl(`${jk}:${part}`);
      assert.ok(ttl > 0 && ttl <= 120, `${part}: ttl ${ttl}`);
    }
    const ttl = await h.redis.ttl(jk);
    assert.ok(ttl > 120 && ttl <= 3600, `job: ttl ${ttl}`);
    // Once the job itself is gone its listing entry is dropped on the next listing.
    await h.redis.del(jk);
    const list = await h.api<{ jobs: Array<{ jobId: string }> }>('GET', '/api/v1/jobs');
    assert.equal(list.body.jobs.some((j) => j.jobId === jobId), false);
    assert.equal(await h.redis.zscore(`${h.cfg.redis.prefix}:jobs`, jobId), null);
  });
});

/** A small seeded PRNG (mulberry32): the same cases on every run. */
function prng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('fuzz: malformed JSON, wrong types and hostile paths on the API and the storage endpoint answer 4xx, never 5xx', async () => {
  await withPort({}, async (h) => {
    const rnd = prng(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const values: unknown[] = [null, true, 0, -1, 1e308, 2 ** 53 + 1, '', 'x', '../../etc/passwd', '\u0000', '\ud800', [], [[]], {}, { __proto__: { a: 1 } }, { constructor: { prototype: {} } }, 'https://', 'file:///etc/passwd', 'https://a.invalid/%00', 'ftp://x/y', 'a'.repeat(5000)];
    const fields = ['files', 'params', 'source', 'destination', 'checksum', 'size', 'scitag', 'activity', 'metadata', 'priority', 'retries', 'overwrite', 'processing', 'streams', '__proto__', 'constructor'];
    const bodies: Array<string | Buffer> = [
      '', '{', '}', '[]', 'null', '"x"', '{"files":', '{"files":[}', '{"files":[{"source":}]}', '\u0000\u0001', Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
      '{"__proto__":{"files":[]}}', '{"constructor":{"prototype":{"x":1}}}', '{"files":[]}', '{"files":{}}', '{"files":"x"}',
      JSON.stringify({ files: [{ source: 'https://a.invalid/x', destination: 'https://a.invalid/x' }] }),
    ];
    for (let i = 0; i < 150; i++) {
      const f: Record<string, unknown> = {};
      for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) f[pick(fields)] = pick(values);
      const shape = pick(['file', 'params', 'top'] as const);
      const body = shape === 'file' ? { files: [f] } : shape === 'params' ? { files: files(1, `z${i}`), params: f } : f;
      bodies.push(JSON.stringify(body));
    }
    const statuses = new Map<number, number>();
    const check = (what: string, status: number, body: unknown) => {
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      assert.ok(status < 500, `${what} → ${status} ${JSON.stringify(body).slice(0, 300)}`);
    };
    for (const [i, b] of bodies.entries()) {
      const ct = i % 7 === 0 ? 'text/plain' : i % 11 === 0 ? 'application/json; charset=latin1' : 'application/json';
      const r = await h.api('POST', '/api/v1/jobs', b, { 'content-type': ct });
      check(`POST /api/v1/jobs ${String(b).slice(0, 120)}`, r.status, r.body);
    }
    const id = '00000000-0000-0000-0000-000000000000';
    const apiPaths = [
      `/api/v1/jobs/${id}`, `/api/v1/jobs/${id}/files`, `/api/v1/jobs/${id}/files/0`, '/api/v1/jobs/%00', '/api/v1/jobs/..%2f..%2fadmin',
      '/api/v1/jobs?limit=-1', '/api/v1/jobs?limit=99999999999', '/api/v1/jobs?cursor=abc', '/api/v1/jobs?state=NOPE', `/api/v1/jobs/${id}/files?cursor=-5`,
      '/api/v1/events?job=x', '/api/v1/status?x=1', '/api/v1/admin/pause', '/api/v1/' + 'a'.repeat(3000), '/%ff%fe', '/api/v1/jobs/' + '%'.repeat(10),
    ];
    for (const p of apiPaths) {
      for (const m of ['GET', 'DELETE', 'POST', 'PUT', 'PATCH']) {
        const r = await h.api(m, p, m === 'POST' || m === 'PUT' || m === 'PATCH' ? pick(bodies) : undefined);
        check(`${m} ${p}`, r.status, r.body);
      }
    }
    // Admin bodies of wrong shapes.
    for (let i = 0; i < 40; i++) {
      const b: Record<string, unknown> = { scope: pick(['port', 'pool', 'link', 'endpoint', 'nope', 1, null]), target: pick(values) };
      const r = await h.api('POST', `/api/v1/admin/${pick(['start', 'stop', 'drain', 'pause', 'resume', 'restart', 'status', 'nope'])}`, b);
      check(`admin ${JSON.stringify(b).slice(0, 120)}`, r.status, r.body);
    }
    // Storage endpoint: hostile paths, methods and headers.
    const session = h2Connect(h.gateway.url);
    try {
      const paths = ['/data/%00', '/data/%2e%2e/%2e%2e/etc/passwd', '/data/../../etc/passwd', '/data//x', '/data/%', '/data/%zz', '/data/a%2fb', '/data/\\..\\x',
        '/data/' + 'a'.repeat(5000), '/data/' + 'd/'.repeat(300), '/data/%c0%ae%c0%ae/x', '/data/x?y=%00', '/data/\u00e9', '/data/.', '/data/...', '/data/x/..'];
      const headerSets: Array<Record<string, string>> = [
        {}, { range: 'bytes=-0' }, { range: 'bytes=9-1' }, { range: 'bytes=0-1,0-1,0-1' }, { range: 'x' }, { 'content-range': 'bytes */*' }, { 'content-range': 'bytes 5-1/3' },
        { overwrite: 'X' }, { depth: 'infinity' }, { depth: '-1' }, { digest: 'adler32=zz' }, { 'want-digest': '\u0000' }, { destination: 'http://' }, { destination: '/data/../../x' },
        { destination: 'https://other.invalid/x' }, { source: 'file:///etc/passwd' }, { 'if-match': '"' }, { 'if-none-match': '*' }, { 'content-length': '5' },
      ];
      for (const p of paths) {
        for (const m of ['GET', 'HEAD', 'PUT', 'DELETE', 'MKCOL', 'MOVE', 'COPY', 'PROPFIND', 'OPTIONS', 'LOCK']) {
          const hs = pick(headerSets);
          const body = m === 'PUT' || m === 'PROPFIND' ? Buffer.from(pick(['', 'abcde', '<x'])) : undefined;
          const headers = { ...hs };
          if (body !== undefined) headers['content-length'] = String(body.length);
          else delete headers['content-length'];
          const r = await h2Request(session, m, p, headers, body).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
          if (r.status === 0) continue; // the client refused to send it (invalid header), or the stream was reset: not a 5xx
          check(`${m} ${p.slice(0, 80)} ${JSON.stringify(hs)}`, r.status, r.body.toString());
        }
      }
    } finally {
      session.close();
    }
    // The gateway is still up and serving.
    assert.equal((await h.api('GET', '/healthz')).status, 200);
    assert.ok((statuses.get(400) ?? 0) > 50, JSON.stringify([...statuses]));
  });
});
