/**
 * The per-endpoint circuit breaker, through the whole port (real Redis, TLS, HTTP/2): a source that refuses
 * connections trips it after `endpointBreakerFailures` attempts in a row; the files not yet tried then wait in
 * their lanes without spending retries (no attempt recorded), the status names the endpoint, and once the
 * endpoint is back a single probe closes the breaker (or an operator's `admin start` on it does) and every
 * waiting file completes with one attempt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sameContent, sleep, tempDir, type FixtureFile } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { freePort } from '../support/free-port.js';

interface FileView { state: string; attempts: Array<{ outcome?: string; errorCode?: string }> }
interface StatusView { unavailableEndpoints: Array<{ endpoint: string; state: string; failuresInARow: number; cooldownMs: number }> }

async function until(pred: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function scenario(cooldownSec: number, giveUpSec = 3600) {
  let h: Harness;
  let server: H2FileServer | undefined;
  const ctx = {
    get h() { return h; },
    async start() {
      h = await startHarness({
        workers: { concurrency: 2 },
        scheduler: {
          endpointBreakerFailures: 2, endpointBreakerCooldownSec: cooldownSec, endpointBreakerMaxCooldownSec: cooldownSec * 2,
          endpointBreakerGiveUpSec: giveUpSec,
        },
      });
    },
    async stop() {
      await h.close();
      await server?.close();
    },
    status: async () => (await h.api<StatusView>('GET', '/api/v1/status')).body,
    file: async (jobId: string, i: number) => (await h.api<FileView>('GET', `/api/v1/jobs/${jobId}/files/${i}`)).body,
    /** Submits `n` files from an endpoint that refuses connections and waits for its breaker to trip. */
    async tripWith(n: number): Promise<{ jobId: string; port: number; files: FixtureFile[]; root: string; dst: string; failedAtTrip: number }> {
      const port = await freePort(); // refuses connections until bringBack() starts a server there
      const root = tempDir('breaker-src');
      const dst = tempDir('breaker-dst');
      const files = makeRandomFiles(root, n, 1_000, 40_000, 'b');
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: files.map((f) => ({ source: `https://127.0.0.1:${port}/${f.name}`, destination: `file://${dst}/${f.name}`, checksum: `adler32:${f.adler32}` })),
        // No retries: every attempt against the dead endpoint fails its file, so a file that waited shows it.
        params: { retries: 0, retryDelaySec: 0 },
      });
      assert.equal(r.status, 201);
      const endpoint = `127.0.0.1:${port}`;
      await until(async () => (await ctx.status()).unavailableEndpoints.some((e) => e.endpoint === endpoint), 'the breaker to trip');
      const ep = (await ctx.status()).unavailableEndpoints.find((e) => e.endpoint === endpoint)!;
      assert.equal(ep.state, 'open');
      assert.equal(ep.cooldownMs, cooldownSec * 1000);
      assert.ok(ep.failuresInARow >= 2, `tripped after ${ep.failuresInARow} failures`);
      // Attempts in flight at the trip still fail (their paced connect retries take up to ~1 s); after them,
      // nothing runs against the endpoint while the breaker is open.
      const counts = async () => (await h.api<{ counts: Record<string, number> }>('GET', `/api/v1/jobs/${r.body.jobId}`)).body.counts;
      await until(async () => ((await counts())['ACTIVE'] ?? 0) === 0, 'attempts in flight at the trip to end');
      await sleep(300);
      const job = { counts: await counts() };
      assert.equal(job.counts['ACTIVE'] ?? 0, 0, 'nothing started while the breaker is open');
      const failedAtTrip = job.counts['FAILED'] ?? 0;
      assert.ok(failedAtTrip >= 2 && failedAtTrip <= 4, `${failedAtTrip} files failed before the breaker held the rest`);
      return { jobId: r.body.jobId, port, files, root, dst, failedAtTrip };
    },
    async bringBack(port: number, root: string) {
      server = await startH2FileServer({ root, port, host: '127.0.0.1' });
    },
    /** Every file either failed before the trip, or finished with exactly one attempt (it never ran against the dead endpoint). */
    async assertWaitersUntouched(t: { jobId: string; files: FixtureFile[]; root: string; dst: string; failedAtTrip: number }) {
      await until(async () => {
        const j = (await h.api<{ state: string }>('GET', `/api/v1/jobs/${t.jobId}`)).body;
        return j.state !== 'ACTIVE';
      }, 'the job to end');
      const job = (await h.api<{ state: string; counts: Record<string, number> }>('GET', `/api/v1/jobs/${t.jobId}`)).body;
      assert.equal(job.state, 'FINISHED_DIRTY');
      assert.equal(job.counts['FAILED'], t.failedAtTrip, 'no file failed after the breaker tripped');
      assert.equal(job.counts['FINISHED'], t.files.length - t.failedAtTrip);
      for (let i = 0; i < t.files.length; i++) {
        const f = await ctx.file(t.jobId, i);
        if (f.state === 'FAILED') {
          assert.equal(f.attempts.length, 1);
          assert.equal(f.attempts[0]!.errorCode, 'CARGO_ERR_NETWORK');
          continue;
        }
        assert.equal(f.state, 'FINISHED');
        assert.deepEqual(f.attempts.map((a) => a.outcome), ['ok'], `file ${i} ran only once the endpoint was back`);
        assert.ok(sameContent(`${t.root}/${t.files[i]!.name}`, `${t.dst}/${t.files[i]!.name}`));
      }
      assert.deepEqual((await ctx.status()).unavailableEndpoints, [], 'the breaker closed');
    },
  };
  return ctx;
}

describe('port: per-endpoint circuit breaker, closed by a probe after the cool-down', () => {
  const s = scenario(3);
  before(() => s.start());
  after(() => s.stop());

  test('a refusing source trips its breaker; waiting files spend no retries; a probe closes it when the source is back', async () => {
    const t = await s.tripWith(16);
    await s.bringBack(t.port, t.root);
    await s.assertWaitersUntouched(t);
  });
});

describe('port: per-endpoint circuit breaker, closed by an operator', () => {
  const s = scenario(600);
  before(() => s.start());
  after(() => s.stop());

  test('admin start on the endpoint closes a breaker with a long cool-down at once', async () => {
    const t = await s.tripWith(8);
    await s.bringBack(t.port, t.root);
    await sleep(500);
    // Still open: nothing moves during a 10-minute cool-down by itself.
    const waiting = (await s.h.api<{ counts: Record<string, number> }>('GET', `/api/v1/jobs/${t.jobId}`)).body.counts;
    assert.equal(waiting['FINISHED'] ?? 0, 0);
    // The close is announced on the events channel (what /events serves), as a close by a successful probe is.
    const sub = s.h.redis.duplicate();
    const announced = new Promise<Record<string, unknown>>((resolve) => {
      sub.on('message', (_ch: string, msg: string) => {
        const e = JSON.parse(msg) as Record<string, unknown>;
        if (e['t'] === 'endpoint') resolve(e);
      });
    });
    await sub.subscribe(`${s.h.cfg.redis.prefix}:events`);
    try {
      const r = await s.h.api('POST', '/api/v1/admin/start', { scope: 'endpoint', target: `127.0.0.1:${t.port}` });
      assert.equal(r.status, 200);
      let timer: NodeJS.Timeout | undefined;
      const noEvent = new Promise<Record<string, unknown>>((r) => { timer = setTimeout(() => r({ none: 'no endpoint event within 10 s' }), 10_000); });
      const event = await Promise.race([announced, noEvent]);
      clearTimeout(timer);
      assert.deepEqual(event, { t: 'endpoint', endpoint: `127.0.0.1:${t.port}`, state: 'available' });
    } finally {
      sub.disconnect();
    }
    await s.assertWaitersUntouched(t);
  });
});

describe('port: per-endpoint circuit breaker, given up on an endpoint that stays down', () => {
  const s = scenario(600, 3);
  before(() => s.start());
  after(() => s.stop());

  test('after the give-up time the waiting files run again and fail by their retries; the job ends', async () => {
    const t = await s.tripWith(8);
    const endpoint = `127.0.0.1:${t.port}`;
    await until(async () => (await s.h.api<{ state: string }>('GET', `/api/v1/jobs/${t.jobId}`)).body.state !== 'ACTIVE', 'the job to end', 20_000);
    const job = (await s.h.api<{ state: string; counts: Record<string, number> }>('GET', `/api/v1/jobs/${t.jobId}`)).body;
    assert.equal(job.state, 'FAILED');
    assert.equal(job.counts['FAILED'], 8);
    for (let i = 0; i < 8; i++) {
      const f = await s.file(t.jobId, i);
      assert.equal(f.attempts.length, 1, `file ${i}: one attempt (retries 0), made before the trip or after the give-up`);
    }
    const ep = (await s.status()).unavailableEndpoints.find((e) => e.endpoint === endpoint);
    assert.equal(ep?.state, 'given-up');
  });
});
