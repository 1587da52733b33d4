/**
 * Recurring exports on real Redis and BullMQ job schedulers, on a fast clock (one virtual hour = 100 real ms) that
 * BullMQ's own repeat strategy (cron-parser) is driven through: local times across a DST change, one catch-up run
 * for ticks missed while no port ran, and runs of one export that never overlap. The gateway serves the API; the
 * ticks run in an ExportService built here exactly as the gateway builds its own, so the test can stop it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { buildGatewayAuth } from '../../gateway/auth.js';
import { SubmissionAuthoriser } from '../../gateway/job-authorisation.js';
import { manifestFetcher } from '../../gateway/manifest-fetch.js';
import { submitJob } from '../../gateway/job-submission.js';
import { fastClock, type ExportClock } from '../../services/exports/export-clock.js';
import { ExportService } from '../../services/exports/export-service.js';
import type { RunReport } from '../../services/exports/export-store.js';
import { JobStore } from '../../services/jobs/job-store.js';
import { redisOptionsFromUrl } from '../../services/jobs/redis-connection.js';
import { makeRandomFiles, sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { TEST_REDIS_URL } from '../support/redis.js';

const HOUR = 3_600_000;
const SPEED = 36_000; // one virtual hour = 100 real ms

describe('exports: schedules on BullMQ job schedulers (fast clock)', () => {
  let h: Harness;
  let redis: Redis;
  let svc: ExportService | undefined;
  let clock: ExportClock = fastClock(Date.now(), 1);
  // The gateway (which upserts the job schedulers) and the ticking service here see the same clock, set per test.
  const shared: ExportClock = { now: () => clock.now(), toVirtual: (r) => clock.toVirtual(r), toReal: (v) => clock.toReal(v), get speed() { return clock.speed; } };
  const root = tempDir('exports-sched');

  /** An ExportService like the gateway's (same submission path, same store), ticking on `clock`. */
  function startTicks(): ExportService {
    const auth = buildGatewayAuth(h.cfg);
    const store = new JobStore(redis, h.cfg.redis.prefix);
    const submissions = new SubmissionAuthoriser(auth);
    svc = new ExportService({
      redis, prefix: h.cfg.redis.prefix, connection: redisOptionsFromUrl(TEST_REDIS_URL, 'worker') as ConnectionOptions, queries: store.queries,
      submit: (p, raw) => submitJob({ cfg: h.cfg, queries: store.queries, store, submissions }, p, raw),
      localAreas: auth.localAreas, fetchText: manifestFetcher(h.cfg, auth.addressPolicy), maxFilesPerJob: h.cfg.jobs.maxFilesPerJob,
      runWorker: true, clock: shared, pollMs: 50, drainDelaySec: 0.05,
    });
    return svc;
  }

  async function runs(name: string): Promise<RunReport[]> {
    const r = await h.api<{ runs: RunReport[] }>('GET', `/api/v1/exports/${name}/runs?limit=100`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.runs.slice().reverse();
  }

  async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  before(async () => {
    h = await startHarness({ exports: { runTicks: false, pollMs: 50 } }, { exportClock: shared });
    redis = new Redis(TEST_REDIS_URL);
  });
  after(async () => {
    await svc?.close();
    redis.disconnect();
    await h.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('next ticks of a cron in Europe/Zurich keep 01:00 local across both DST changes (BullMQ\'s parser)', () => {
    const def = { name: 'x', schedule: { cron: '0 1 * * *', timezone: 'Europe/Zurich' }, selection: { dir: '/x' }, destinations: ['file:///y'] };
    const spring = ExportService.nextTicks(def, Date.parse('2026-03-27T12:00:00Z'), 3).map((t) => new Date(t).toISOString());
    assert.deepEqual(spring, ['2026-03-28T00:00:00.000Z', '2026-03-29T00:00:00.000Z', '2026-03-29T23:00:00.000Z']);
    const autumn = ExportService.nextTicks(def, Date.parse('2026-10-23T12:00:00Z'), 3).map((t) => new Date(t).toISOString());
    assert.deepEqual(autumn, ['2026-10-23T23:00:00.000Z', '2026-10-24T23:00:00.000Z', '2026-10-26T00:00:00.000Z']);
  });

  test('a nightly schedule fires at 01:00 Zurich time before and after the spring DST change', async () => {
    // Virtual 2026-03-27 17:00 local: the first tick is eight virtual hours (800 ms) away.
    clock = fastClock(Date.parse('2026-03-27T16:00:00Z'), SPEED);
    const s = startTicks();
    const src = join(root, 'dst-src');
    mkdirSync(src, { recursive: true });
    const created = await h.api('POST', '/api/v1/exports', {
      name: 'nightly-dst', schedule: { cron: '0 1 * * *', timezone: 'Europe/Zurich' },
      selection: { dir: src, subdir: '{yesterday}' }, destinations: [`file://${root}/dst-out/{date}`],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const got = await until(async () => {
      const r = (await runs('nightly-dst')).filter((x) => x.state !== 'running');
      return r.length >= 3 ? r : undefined;
    }, 'three nightly runs');
    await h.api('POST', '/api/v1/exports/nightly-dst/pause');
    await s.close();
    svc = undefined;
    assert.deepEqual(got.slice(0, 3).map((r) => r.scheduledFor), ['2026-03-28T00:00:00.000Z', '2026-03-29T00:00:00.000Z', '2026-03-29T23:00:00.000Z'], JSON.stringify(got.map((r) => [r.scheduledFor, r.startedAt, r.trigger])));
    for (const r of got.slice(0, 3)) {
      const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Zurich', hour: '2-digit', minute: '2-digit' }).format(new Date(r.scheduledFor));
      assert.equal(local, '01:00');
      assert.equal(r.trigger, 'schedule');
      assert.equal(r.state, 'succeeded', JSON.stringify(got.map((x) => [x.runId, x.scheduledFor, x.state, x.reason])));
      // {yesterday} in the run's own time zone: the directory of the day before the run.
      assert.match(r.note ?? '', /^2026-03-(27|28|29) does not exist/);
    }
    assert.deepEqual(got.slice(0, 3).map((r) => r.note!.slice(0, 10)), ['2026-03-27', '2026-03-28', '2026-03-29']);
  });

  test('ticks missed while no port ran are caught up by one run', async () => {
    clock = fastClock(Date.parse('2026-05-01T00:00:00Z'), SPEED);
    let s = startTicks();
    const src = join(root, 'cu-src');
    mkdirSync(src, { recursive: true });
    assert.equal((await h.api('POST', '/api/v1/exports', {
      name: 'hourly', schedule: { everyMinutes: 240 }, selection: { dir: src }, destinations: [`file://${root}/cu-out`],
    })).status, 201);
    await until(async () => ((await runs('hourly')).filter((r) => r.state === 'succeeded').length >= 2 ? true : undefined), 'two hourly runs');
    // The port goes down for more than three ticks.
    await s.close();
    const downAt = clock.now();
    const before = (await runs('hourly')).length;
    // Down for 5.5 ticks of the virtual clock (not a fixed real sleep: under load the close itself eats ticks).
    const TICK_MS = 240 * 60_000;
    while (clock.now() - downAt < 5.5 * TICK_MS) await sleep(50);
    const upAt = clock.now();
    s = startTicks();
    await until(async () => ((await runs('hourly')).length >= before + 3 ? true : undefined), 'runs after the restart').catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify((await runs('hourly')).map((r) => [r.trigger, r.scheduledFor, r.state, r.reason]))}`);
    });
    await h.api('POST', '/api/v1/exports/hourly/pause');
    await s.close();
    svc = undefined;
    const all = await runs('hourly');
    const afterRestart = all.slice(before);
    const catchUps = afterRestart.filter((r) => r.trigger === 'catch-up');
    assert.equal(catchUps.length, 1, JSON.stringify(afterRestart.map((r) => [r.trigger, r.scheduledFor])));
    assert.ok(catchUps[0]!.missedTicks! >= 3, `missed ${catchUps[0]!.missedTicks}`);
    // Only one run is due inside the downtime (the pending tick); the next ones come after the restart.
    const inDowntime = all.filter((r) => Date.parse(r.scheduledFor) > downAt && Date.parse(r.scheduledFor) < upAt);
    assert.ok(inDowntime.length <= 1, JSON.stringify(inDowntime.map((r) => r.scheduledFor)));
    assert.equal(afterRestart[0]!.trigger, 'catch-up');
    for (const r of afterRestart.slice(1)) assert.equal(r.trigger, 'schedule');
  });

  test('two runs of one export never overlap: the second is skipped while the first waits for its jobs', async () => {
    clock = fastClock(Date.now(), 1);
    const s = startTicks();
    const src = join(root, 'ov-src');
    makeRandomFiles(src, 2, 1000, 2000);
    assert.equal((await h.api('POST', '/api/v1/exports', {
      name: 'overlap', schedule: { cron: '0 3 * * *' }, selection: { dir: src }, destinations: [`file://${root}/ov-out`],
    })).status, 201);
    assert.equal((await h.api('POST', '/api/v1/admin/pause', { scope: 'port' })).status, 200);
    const first = (await h.api<{ runId: string }>('POST', '/api/v1/exports/overlap/run')).body.runId;
    await until(async () => {
      const r = (await runs('overlap')).find((x) => x.runId === first);
      return r && r.jobs.length === 1 ? r : undefined;
    }, 'the first run to submit its job');
    const second = (await h.api<{ runId: string }>('POST', '/api/v1/exports/overlap/run')).body.runId;
    const skipped = await until(async () => {
      const r = (await runs('overlap')).find((x) => x.runId === second);
      return r && r.state !== 'running' ? r : undefined;
    }, 'the second run to end');
    assert.equal(skipped.state, 'skipped');
    assert.match(skipped.reason ?? '', new RegExp(first));
    assert.equal((await h.api('POST', '/api/v1/admin/resume', { scope: 'port' })).status, 200);
    const done = await until(async () => {
      const r = (await runs('overlap')).find((x) => x.runId === first);
      return r && r.state !== 'running' ? r : undefined;
    }, 'the first run to end');
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.files.finished, 2);
    await s.close();
    svc = undefined;
  });

  test('a run still going at its deadline is announced on the events channel when the deadline passes, and counted', async () => {
    // Virtual 02:00 Zurich; the deadline 06:00 comes 400 real ms later (or a day later on a slow start) while the run
    // waits on a paused port.
    clock = fastClock(Date.parse('2026-06-10T00:00:00Z'), SPEED);
    const s = startTicks();
    const src = join(root, 'late-src');
    makeRandomFiles(src, 1, 1000, 2000);
    const events: Array<Record<string, unknown>> = [];
    const sub = new Redis(TEST_REDIS_URL);
    await sub.subscribe(`${h.cfg.redis.prefix}:events`);
    sub.on('message', (_c, m) => {
      const e = JSON.parse(m) as Record<string, unknown>;
      if (String(e['type']).startsWith('export')) events.push(e);
    });
    try {
      assert.equal((await h.api('POST', '/api/v1/exports', {
        name: 'late', schedule: { cron: '0 5 * * *', timezone: 'Europe/Zurich' }, selection: { dir: src }, destinations: [`file://${root}/late-out`],
        params: { deadline: '06:00' },
      })).status, 201);
      assert.equal((await h.api('POST', '/api/v1/admin/pause', { scope: 'port' })).status, 200);
      const runId = (await h.api<{ runId: string }>('POST', '/api/v1/exports/late/run')).body.runId;
      const missed = await until(async () => events.find((e) => e['type'] === 'export-deadline-missed' && e['runId'] === runId), 'the deadline event');
      assert.equal(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Zurich', hour: '2-digit', minute: '2-digit' }).format(new Date(String(missed['deadline']))), '06:00');
      const during = (await h.api<RunReport>('GET', `/api/v1/exports/late/runs/${runId}`)).body;
      assert.equal(during.state, 'running', 'announced before the run ends');
      assert.equal(during.deadlineMissed, true);
      const metrics = await h.api<string>('GET', '/metrics');
      assert.match(metrics.body, /cargoport_export_deadline_missed_total\{export="late"\} 1/);
      assert.equal((await h.api('POST', '/api/v1/admin/resume', { scope: 'port' })).status, 200);
      const end = await until(async () => events.find((e) => e['type'] === 'export-run' && e['runId'] === runId), 'the run\'s end event');
      assert.equal(end['state'], 'succeeded');
      assert.equal(end['deadlineMissed'], true);
    } finally {
      await h.api('POST', '/api/v1/admin/resume', { scope: 'port' });
      sub.disconnect();
      await s.close();
      svc = undefined;
    }
  });
});
