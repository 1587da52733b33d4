import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { JobStore } from '../../services/jobs/job-store.js';
import { jobScriptSources } from '../../services/jobs/lua-scripts.js';
import type { NewJob } from '../../services/jobs/model.js';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';

const params = { priority: 3, retries: 1, retryDelaySec: 0, verifyChecksum: 'none' as const, overwrite: false };

function job(owner: string, n: number, host = 'a.example', prio = 3): NewJob {
  return {
    owner,
    params: { ...params, priority: prio },
    files: Array.from({ length: n }, (_, i) => ({ source: `https://${host}/f${i}`, destination: `file:///tmp/x/${owner}/${host}/${i}`, size: 10 })),
  };
}

describe('job store (real Redis)', () => {
  let redis: Redis;
  let store: JobStore;
  let prefix: string;
  before(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  after(async () => {
    redis.disconnect();
  });

  test('every script compiles in Redis', async () => {
    for (const [name, src] of Object.entries(jobScriptSources())) {
      assert.match(String(await redis.script('LOAD', src)), /^[0-9a-f]{40}$/, name);
    }
  });

  test('a job goes SUBMITTED → QUEUED → ACTIVE → FINISHED with counts, attempts and job completion', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('alice', 3));
    let s = await store.queries.getJob(jobId);
    assert.equal(s.counts.SUBMITTED, 3);
    assert.equal(s.bytesTotal, 30);
    const members = await store.feed(10, 100, 10, 10);
    assert.equal(members.length, 3);
    s = await store.queries.getJob(jobId);
    assert.equal(s.counts.QUEUED, 3);
    for (const m of members) {
      const r = await store.start(m, 'w1');
      assert.equal(r.kind, 'run');
      if (r.kind !== 'run') continue;
      assert.equal(r.spec.size, 10);
      const e = await store.end({ jobId, idx: Number(m.split('_')[1]), run: r.run, link: r.spec.link, outcome: 'ok', report: { bytes: 10, checksumValue: '00000001' } });
      assert.equal(e.kind, 'finished');
    }
    s = await store.queries.getJob(jobId);
    assert.equal(s.state, 'FINISHED');
    assert.equal(s.counts.FINISHED, 3);
    assert.equal(s.bytesDone, 30);
    const f = await store.queries.getFile(jobId, 1);
    assert.equal(f.attempts.length, 1);
    assert.equal(f.attempts[0]!.outcome, 'ok');
    assert.equal(f.checksumValue, '00000001');
    // a second delivery of the same queue member is a no-op
    assert.equal((await store.start(members[0]!, 'w2')).kind, 'skip');
    assert.deepEqual((await store.queries.activeSlots()).links, {});
    await dropPrefix(redis, prefix);
  });

  test('group claim and group END: one script call each for a bundle, per-file outcomes as START/END one by one', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('gina', 6));
    const members = await store.feed(10, 100, 10, 10);
    assert.equal(members.length, 6);
    // A stale member (wrong generation) in the bundle is skipped; the others are claimed in order.
    const stale = members[5]!.replace(/_(\d+)$/, (_m, q: string) => `_${Number(q) + 7}`);
    const claims = await store.startMany([...members.slice(0, 5), stale], 'wb');
    assert.deepEqual(claims.map((c) => c.kind), ['run', 'run', 'run', 'run', 'run', 'skip']);
    const s1 = await store.queries.getJob(jobId);
    assert.equal(s1.counts.ACTIVE, 5);
    assert.equal(s1.counts.QUEUED, 1);
    const runs = claims.slice(0, 5).map((c, i) => {
      assert.ok(c.kind === 'run');
      return { jobId, idx: i, run: c.run, link: c.spec.link };
    });
    const ends = await store.endMany([
      { ...runs[0]!, outcome: 'ok', report: { bytes: 10, checksumValue: '0000000a' }, unreportedBytes: 10 },
      { ...runs[1]!, outcome: 'ok', report: { bytes: 10 }, unreportedBytes: 10 },
      { ...runs[2]!, outcome: 'error', report: { errorCode: 'CARGO_ERR_NETWORK', errorMessage: 'reset' }, retryable: true, retryDelayMs: 0 },
      { ...runs[3]!, outcome: 'error', report: { errorCode: 'CARGO_ERR_CHECKSUM_MISMATCH', errorMessage: 'bad' }, retryable: false },
      { ...runs[4]!, outcome: 'requeue', report: { errorCode: 'CARGO_ERR_ABORTED', errorMessage: 'stopped' } },
      // The same run closed twice in one batch: the second is stale, as a second END call would be.
      { ...runs[0]!, outcome: 'ok', report: { bytes: 10 } },
    ]);
    assert.deepEqual(ends.map((e) => e.kind), ['finished', 'finished', 'queued', 'failed', 'queued', 'stale']);
    const f0 = await store.queries.getFile(jobId, 0);
    assert.equal(f0.state, 'FINISHED');
    assert.equal(f0.checksumValue, '0000000a');
    assert.equal((await store.queries.getFile(jobId, 3)).error?.code, 'CARGO_ERR_CHECKSUM_MISMATCH');
    const s2 = await store.queries.getJob(jobId);
    assert.equal(s2.counts.FINISHED, 2);
    assert.equal(s2.counts.FAILED, 1);
    assert.equal(s2.counts.QUEUED, 3);
    assert.equal(s2.counts.ACTIVE, 0);
    assert.equal(s2.bytesDone, 20);
    // The requeued ones and the one never claimed finish through the same calls; the job then ends.
    const left = [...ends.flatMap((e) => (e.kind === 'queued' ? [e.member] : [])), members[5]!];
    const again = await store.startMany(left, 'wb');
    assert.deepEqual(again.map((c) => c.kind), ['run', 'run', 'run']);
    const idxs = left.map((m) => Number(m.split('_')[1]));
    await store.endMany(again.map((c, i) => {
      assert.ok(c.kind === 'run');
      return { jobId, idx: idxs[i]!, run: c.run, link: c.spec.link, outcome: 'ok' as const, report: { bytes: 10 } };
    }));
    const s3 = await store.queries.getJob(jobId);
    assert.equal(s3.state, 'FINISHED_DIRTY');
    assert.equal(s3.counts.FINISHED, 5);
    assert.deepEqual((await store.queries.activeSlots()).links, {});
    await dropPrefix(redis, prefix);
  });

  test('link limit holds files back; retryable errors requeue, fatal ones fail; job ends FINISHED_DIRTY', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('bob', 5));
    const m = await store.feed(10, 100, 2, 10);
    assert.equal(m.length, 2, 'only linkMax files may be queued on one link');
    const r0 = await store.start(m[0]!, 'w');
    assert.ok(r0.kind === 'run');
    const e0 = await store.end({ jobId, idx: 0, run: r0.run, link: r0.spec.link, outcome: 'error', report: { errorCode: 'CARGO_ERR_NETWORK', errorMessage: 'reset' }, retryable: true, retryDelayMs: 0 });
    assert.equal(e0.kind, 'queued');
    const again = e0.kind === 'queued' ? e0.member : '';
    const r0b = await store.start(again, 'w');
    assert.ok(r0b.kind === 'run');
    const e0b = await store.end({ jobId, idx: 0, run: r0b.run, link: r0b.spec.link, outcome: 'error', report: { errorCode: 'CARGO_ERR_NETWORK', errorMessage: 'reset again' }, retryable: true, retryDelayMs: 0 });
    assert.equal(e0b.kind, 'failed', 'retries=1 allows one retry only');
    const f0 = await store.queries.getFile(jobId, 0);
    assert.equal(f0.state, 'FAILED');
    assert.equal(f0.attempts.length, 2);
    assert.equal(f0.error?.code, 'CARGO_ERR_NETWORK');
    // the slot of file 0 is free again: one more can be fed
    const r1 = await store.start(m[1]!, 'w');
    assert.ok(r1.kind === 'run');
    const m2 = await store.feed(10, 100, 2, 10);
    assert.equal(m2.length, 1);
    await store.end({ jobId, idx: 1, run: r1.run, link: r1.spec.link, outcome: 'ok', report: { bytes: 10 } });
    const r2 = await store.start(m2[0]!, 'w');
    assert.ok(r2.kind === 'run');
    await store.end({ jobId, idx: 2, run: r2.run, link: r2.spec.link, outcome: 'ok', report: { bytes: 10 } });
    for (let round = 0; round < 5; round++) {
      for (const mm of await store.feed(10, 100, 2, 10)) {
        const r = await store.start(mm, 'w');
        if (r.kind === 'run') await store.end({ jobId, idx: Number(mm.split('_')[1]), run: r.run, link: r.spec.link, outcome: 'ok', report: { bytes: 10 } });
      }
    }
    const s = await store.queries.getJob(jobId);
    assert.equal(s.counts.FINISHED, 4);
    assert.equal(s.state, 'FINISHED_DIRTY');
    await dropPrefix(redis, prefix);
  });

  test('fairness: a 10-file job of another owner is not starved by a 1000-file job', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const big = await store.createJob(job('big', 1000));
    const small = await store.createJob(job('small', 10, 'b.example'));
    // owners take turns, up to 8 files a turn: big 8, small 8, big 8, small 2, big 4
    const fed = await store.feed(30, 100, 1000, 1000);
    const smallCount = fed.filter((x) => x.startsWith(small.jobId)).length;
    const bigCount = fed.filter((x) => x.startsWith(big.jobId)).length;
    assert.equal(smallCount, 10, 'the small job is served completely in the first rounds');
    assert.equal(bigCount, 20);
    await dropPrefix(redis, prefix);
  });

  test('priority: within an owner the higher-priority job goes first', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const low = await store.createJob(job('carol', 5, 'a.example', 1));
    const high = await store.createJob(job('carol', 5, 'b.example', 5));
    const fed = await store.feed(5, 100, 100, 100);
    assert.ok(fed.every((x) => x.startsWith(high.jobId)), 'all five from the high-priority job');
    assert.equal((await store.feed(5, 100, 100, 100)).filter((x) => x.startsWith(low.jobId)).length, 5);
    await dropPrefix(redis, prefix);
  });

  test('cancel: waiting files become CANCELED at once, slots are released, job is CANCELED', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('dave', 50));
    await store.feed(10, 100, 100, 100);
    const s = await store.cancelJob(jobId);
    assert.equal(s.state, 'CANCELED');
    assert.equal(s.counts.CANCELED, 50);
    assert.deepEqual((await store.queries.activeSlots()).links, {});
    assert.equal((await store.queries.activeSlots()).queued, 0);
    await dropPrefix(redis, prefix);
  });

  test('admin pause of a link: queued files go back to their lane, nothing new is fed for it', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('erin', 3));
    const fed = await store.feed(10, 100, 100, 100);
    await redis.hset(`${prefix}:admin`, 'link:a.example:443>local', 'paused');
    assert.equal((await store.start(fed[0]!, 'w')).kind, 'deferred');
    assert.equal((await store.feed(10, 100, 100, 100)).length, 0);
    const s = await store.queries.getJob(jobId);
    assert.equal(s.counts.SUBMITTED, 1);
    await redis.hdel(`${prefix}:admin`, 'link:a.example:443>local');
    assert.equal((await store.feed(10, 100, 100, 100)).length, 1);
    await dropPrefix(redis, prefix);
  });

  test('a run redelivered after its worker died resumes from the last saved checkpoint', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('frank', 1));
    const [m] = await store.feed(10, 100, 10, 10);
    const r1 = await store.start(m!, 'doomed-worker');
    assert.ok(r1.kind === 'run');
    assert.equal(r1.state.rs, undefined);
    await store.saveCheckpoints([{ jobId, idx: 0, run: r1.run, resume: { tempPath: '/tmp/x/.f.part', etag: '"e1"', size: 10, done: [[0, 6]] } }]);
    // the worker dies: BullMQ redelivers the same queue member to another worker
    const r2 = await store.start(m!, 'survivor');
    assert.ok(r2.kind === 'run');
    assert.deepEqual(r2.state.rs, { tempPath: '/tmp/x/.f.part', etag: '"e1"', size: 10, done: [[0, 6]] });
    assert.equal(r2.state.a[0]!.errorCode, 'CARGO_ERR_WORKER_LOST');
    assert.equal((await store.end({ jobId, idx: 0, run: r2.run, link: r2.spec.link, outcome: 'ok', report: { bytes: 10, resumedBytes: 6 } })).kind, 'finished');
    assert.equal(await redis.hlen(`${prefix}:job:${jobId}:cp`), 0, 'checkpoint dropped once the file is closed');
    await dropPrefix(redis, prefix);
  });

  test('a checkpoint written after its run ended is never taken for a later run\'s', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('grace', 1));
    const [m] = await store.feed(10, 100, 10, 10);
    const r1 = await store.start(m!, 'w1');
    assert.ok(r1.kind === 'run');
    const e1 = await store.end({ jobId, idx: 0, run: r1.run, link: r1.spec.link, outcome: 'error', report: { errorCode: 'CARGO_ERR_NETWORK', errorMessage: 'reset' }, retryable: true });
    assert.ok(e1.kind === 'queued');
    // run 1's progress flush lands after its END, then run 2's worker dies before its first checkpoint
    await store.saveCheckpoints([{ jobId, idx: 0, run: r1.run, resume: { tempPath: '/tmp/x/.f.part-1', size: 10, done: [[0, 4]] } }]);
    const r2 = await store.start(e1.member, 'w2');
    assert.ok(r2.kind === 'run');
    const r3 = await store.start(e1.member, 'w3');
    assert.ok(r3.kind === 'run');
    assert.equal(r3.state.rs, undefined, 'run 1\'s checkpoint is not run 2\'s');
    await dropPrefix(redis, prefix);
  });

  test('cancel is final: a lost run of a canceled file is closed CANCELED, not run again', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('heidi', 2));
    const [m0, m1] = await store.feed(10, 100, 10, 10);
    const r0 = await store.start(m0!, 'doomed');
    const r1 = await store.start(m1!, 'doomed');
    assert.ok(r0.kind === 'run' && r1.kind === 'run');
    // the worker holding both dies; one file is canceled, then the whole job
    assert.equal((await store.cancelFile(jobId, 0)).state, 'ACTIVE');
    const again0 = await store.start(m0!, 'survivor');
    assert.ok(again0.kind === 'skip' && again0.reason === 'canceled');
    assert.equal(again0.lostRun?.run, r0.run);
    assert.equal(again0.lostRun?.spec.destination, 'file:///tmp/x/heidi/a.example/0');
    await store.cancelJob(jobId);
    assert.equal((await store.start(m1!, 'survivor')).kind, 'skip');
    const s = await store.queries.getJob(jobId);
    assert.equal(s.state, 'CANCELED');
    assert.equal(s.counts.CANCELED, 2);
    assert.equal(s.counts.ACTIVE, 0);
    const f = await store.queries.getFile(jobId, 1);
    assert.equal(f.attempts.length, 1);
    assert.equal(f.attempts[0]!.outcome, 'canceled');
    assert.equal(f.attempts[0]!.errorCode, 'CARGO_ERR_WORKER_LOST');
    assert.deepEqual((await store.queries.activeSlots()), { links: {}, endpoints: {}, queued: 0, active: 0 });
    await dropPrefix(redis, prefix);
  });

  test('a crashed worker process: its files requeued from their checkpoint at once, failed after the crash limit, canceled ones closed', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const { jobId } = await store.createJob(job('ivan', 3));
    const fed = await store.feed(10, 100, 10, 10);
    const runs = [];
    for (const m of fed) runs.push(await store.start(m, 'child-1'));
    assert.ok(runs.every((r) => r.kind === 'run'));
    const r0 = runs[0]!;
    assert.ok(r0.kind === 'run');
    await store.saveCheckpoints([{ jobId, idx: 0, run: r0.run, resume: { tempPath: '/tmp/x/.f.part', size: 10, done: [[0, 7]] } }]);
    await store.cancelFile(jobId, 2);
    // a file held by another (live) worker is not touched
    const { jobId: other } = await store.createJob(job('judy', 1, 'b.example'));
    const [om] = await store.feed(10, 100, 10, 10);
    assert.equal((await store.start(om!, 'child-2')).kind, 'run');

    const rec = await store.recordWorkerCrash('child-1', 2, 'signal SIGKILL');
    assert.equal(rec.requeued.length, 2);
    assert.deepEqual(rec.closed.map((c) => [c.jobId, c.idx, c.run]), [[jobId, 2, 1]]);
    let s = await store.queries.getJob(jobId);
    assert.equal(s.counts.QUEUED, 2);
    assert.equal(s.counts.CANCELED, 1);
    assert.equal((await store.queries.getJob(other)).counts.ACTIVE, 1);
    const f0 = await store.queries.getFile(jobId, 0);
    assert.equal(f0.attempts[0]!.outcome, 'crashed');
    assert.equal(f0.attempts[0]!.errorCode, 'CARGO_ERR_WORKER_CRASHED');
    assert.match(f0.attempts[0]!.errorMessage!, /SIGKILL/);
    // the dead process's queue members are stale; the new ones resume from the crashed run's checkpoint
    assert.equal((await store.start(fed[0]!, 'child-3')).kind, 'skip');
    const again = await Promise.all(rec.requeued.map((m) => store.start(m, 'child-3')));
    const a0 = again.find((r) => r.kind === 'run' && r.spec.source.endsWith('/f0'));
    assert.ok(a0 && a0.kind === 'run');
    assert.deepEqual(a0.state.rs, { tempPath: '/tmp/x/.f.part', size: 10, done: [[0, 7]] });
    assert.equal(a0.state.t, 0, 'a crash spends no try');

    // the second crash reaches the limit: FAILED with the crash code, the job closes
    const rec2 = await store.recordWorkerCrash('child-3', 2, 'exit code 1: AssertionError: boom');
    assert.equal(rec2.requeued.length, 0);
    assert.equal(rec2.closed.length, 2);
    s = await store.queries.getJob(jobId);
    assert.equal(s.state, 'FAILED');
    assert.equal(s.counts.FAILED, 2);
    const f1 = await store.queries.getFile(jobId, 1);
    assert.equal(f1.error?.code, 'CARGO_ERR_WORKER_CRASHED');
    assert.match(f1.error!.message, /crashed 2 times.*AssertionError: boom/);
    const slots = await store.queries.activeSlots();
    assert.equal(slots.active, 1, 'only the other worker\'s file is active');
    assert.equal(slots.queued, 0);
    await dropPrefix(redis, prefix);
  });

  test('a full destination holds its files without spending tries and pauses only what writes to it', async () => {
    prefix = uniquePrefix();
    store = new JobStore(redis, prefix);
    const pulls = await store.createJob(job('ivan', 3));
    const [m] = await store.feed(1, 100, 10, 10);
    const r = await store.start(m!, 'w');
    assert.ok(r.kind === 'run');
    const full = { endpoint: 'local', detail: 'ENOSPC: local file /tmp/x: no space left on device' };
    const e = await store.end({ jobId: pulls.jobId, idx: 0, run: r.run, link: r.spec.link, outcome: 'error', report: { errorCode: 'CARGO_ERR_LOCAL_IO', errorMessage: 'ENOSPC' }, retryable: true, fullDestination: full });
    assert.ok(e.kind === 'queued');
    const f = await store.queries.getFile(pulls.jobId, 0);
    assert.equal(f.attempts[0]!.outcome, 'held');
    assert.equal((await store.start(e.member, 'w')).kind, 'deferred', 'held while the destination is full');
    const [ep] = await store.queries.unavailableEndpoints();
    assert.equal(ep?.endpoint, 'local');
    assert.equal(ep?.cause, 'full');
    assert.match(ep?.detail ?? '', /ENOSPC/);
    assert.deepEqual(await store.feed(10, 100, 10, 10), [], 'nothing new is written to the full destination');
    // Reading from the same (full) local file system to a remote destination goes on, and its success does not
    // close the breaker of a destination it did not write to.
    const pushes = await store.createJob({ owner: 'judy', params: { ...params }, files: [{ source: 'file:///tmp/x/up', destination: 'https://b.example/up', size: 10 }] });
    const fed = await store.feed(10, 100, 10, 10);
    assert.equal(fed.length, 1);
    const p = await store.start(fed[0]!, 'w');
    assert.ok(p.kind === 'run');
    await store.end({ jobId: pushes.jobId, idx: 0, run: p.run, link: p.spec.link, outcome: 'ok', report: { bytes: 10 } });
    assert.equal((await store.queries.unavailableEndpoints()).length, 1);
    // The first write that succeeds there (a probe, once the cool-down is over) closes it; the held file kept its tries.
    await redis.hset(`${prefix}:trip`, 'local', Date.now() - 1);
    const probe = await store.feed(1, 100, 10, 10);
    const pr = await store.start(probe[0]!, 'w');
    assert.ok(pr.kind === 'run');
    assert.equal(pr.state.t, 0, 'a hold spends no try');
    await store.end({ jobId: pulls.jobId, idx: Number(probe[0]!.split('_')[1]), run: pr.run, link: pr.spec.link, outcome: 'ok', report: { bytes: 10 } });
    assert.deepEqual(await store.queries.unavailableEndpoints(), []);
    await dropPrefix(redis, prefix);
  });
});
