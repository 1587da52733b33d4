/**
 * Packed small-file jobs through the queue (`params.processing.pack`, services/jobs/packed-runner.ts): a real port
 * (gateway + worker) ships local files as tar archives to a cargoport storage endpoint and to a local directory.
 * Names, sizes, modes, mtimes and bytes arrive; every file has its own state and attempt; a file whose bytes miss
 * its submitted checksum, or whose source is missing, fails alone; a member the destination refuses once is retried alone (the others are sent
 * once).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { tempDir } from '../support/fixtures.js';
import { adler32 } from '../../services/checksum/adler32.js';
import { CargoError } from '../../errors/cargo-error.js';

interface FileRow { fileId: number; state: string; destination: string; error?: { code: string }; attempts: Array<{ note?: string; errorCode?: string }> }

describe('port: packed small-file jobs', () => {
  let h: Harness;
  let s: TestStorageServer;
  let src: string;
  const names: string[] = [];
  /** Paths the storage endpoint received (reception stage runs once per member received). */
  const received: string[] = [];
  let failOnce = true;
  before(async () => {
    s = await startStorageServer({
      receptionStages: [{
        name: 'fail-once',
        run: async ({ path }) => {
          received.push(path);
          if (path.endsWith('/f07.dat') && failOnce) {
            failOnce = false;
            throw new CargoError('CARGO_ERR_CHECKSUM_MISMATCH', 'refused once by the test');
          }
        },
      }],
    });
    h = await startHarness({ scheduler: { bundleFiles: 16, bundleMaxBytes: 1048576 } });
    src = tempDir('packed-src');
    for (let i = 0; i < 30; i++) {
      const name = i < 10 ? `a/f${String(i).padStart(2, '0')}.dat` : i < 20 ? `b/c/f${i}.dat` : `f${i}.dat`;
      mkdirSync(join(src, name, '..'), { recursive: true });
      const body = Buffer.alloc(1000 + i * 3001, i);
      writeFileSync(join(src, name), body);
      chmodSync(join(src, name), i % 2 ? 0o640 : 0o604);
      utimesSync(join(src, name), 1_600_000_000 + i + 0.5, 1_600_000_000 + i + 0.5);
      names.push(name);
    }
  });
  after(async () => {
    await h?.close();
    await s?.close();
  });

  const files = async (jobId: string) => (await h.api<{ files: FileRow[] }>('GET', `/api/v1/jobs/${jobId}/files?limit=100`)).body.files;
  const sum = (p: string) => adler32(readFileSync(p)).toString(16).padStart(8, '0');

  const submit = async (dest: (n: string) => string, wrongChecksum?: string, missing?: string) => {
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: [...names.map((n) => ({
        source: `file://${join(src, n)}`, destination: dest(n), size: statSync(join(src, n)).size,
        checksum: n === wrongChecksum ? 'adler32:00000001' : `adler32:${sum(join(src, n))}`,
      })), ...(missing ? [{ source: `file://${join(src, missing)}`, destination: dest(missing), size: 10 }] : [])],
      params: { retries: 2, retryDelaySec: 0, processing: { pack: { maxMembers: 8 } } },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.jobId;
  };

  const assertSame = (root: string, skip: string[]) => {
    for (const n of names) {
      if (skip.includes(n)) continue;
      const a = statSync(join(src, n));
      const b = statSync(join(root, n));
      assert.equal(b.size, a.size, n);
      assert.equal(b.mode & 0o777, a.mode & 0o777, n);
      assert.equal(b.mtimeMs, a.mtimeMs, n);
      assert.deepEqual(readFileSync(join(root, n)), readFileSync(join(src, n)), n);
    }
  };

  test('to a cargoport endpoint: the tree arrives, a wrong checksum fails alone, a refused member is resent alone', async () => {
    const jobId = await submit((n) => `${s.base}/packed/${n}`, 'f25.dat', 'b/missing.dat');
    const job = await h.waitJob(jobId, 60_000);
    const rows = await files(jobId);
    const failed = rows.filter((f) => f.state !== 'FINISHED');
    assert.deepEqual(failed.map((f) => [f.destination.split('/').pop(), f.error?.code]), [['f25.dat', 'CARGO_ERR_CHECKSUM_MISMATCH'], ['missing.dat', 'CARGO_ERR_SOURCE_NOT_FOUND']], JSON.stringify(job));
    assert.equal(job['state'], 'FINISHED_DIRTY');
    assertSame(join(s.permanentDir, 'packed'), ['f25.dat']);
    assert.ok(rows.filter((f) => f.state === 'FINISHED').every((f) => f.attempts.at(-1)?.note === 'sent packed (tar)'));
    // f07 was refused once and sent again; every other file was received exactly once.
    const counts = new Map<string, number>();
    for (const p of received) counts.set(p, (counts.get(p) ?? 0) + 1);
    assert.equal(counts.get('/packed/a/f07.dat'), 2);
    assert.ok([...counts.entries()].filter(([p]) => !p.endsWith('/f07.dat')).every(([, n]) => n === 1), JSON.stringify([...counts]));
    assert.equal(counts.size, 29);
    const f07 = rows.find((f) => f.destination.endsWith('/f07.dat'))!;
    assert.deepEqual(f07.attempts.map((a) => a.errorCode ?? 'ok'), ['CARGO_ERR_CHECKSUM_MISMATCH', 'ok']);
  });

  test('from an HTTP/2 source (the endpoint of the first test) to a local directory and back to a cargoport endpoint', async () => {
    const there = names.filter((n) => n !== 'f25.dat');
    const dst = tempDir('packed-http-dst');
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: [...there.map((n) => ({ source: `${s.base}/packed/${n}`, destination: `file://${join(dst, n)}`, size: statSync(join(src, n)).size, checksum: `adler32:${sum(join(src, n))}` })),
        { source: `${s.base}/packed/nope.dat`, destination: `file://${join(dst, 'nope.dat')}`, size: 10 }],
      params: { retries: 1, retryDelaySec: 0, processing: { pack: { maxMembers: 8 } } },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await h.waitJob(r.body.jobId, 60_000);
    const rows = await files(r.body.jobId);
    assert.deepEqual(rows.filter((f) => f.state !== 'FINISHED').map((f) => [f.destination.split('/').pop(), f.error?.code]), [['nope.dat', 'CARGO_ERR_SOURCE_NOT_FOUND']]);
    assert.ok(rows.filter((f) => f.state === 'FINISHED').every((f) => f.attempts.at(-1)?.note === 'sent packed (tar)'));
    for (const n of there) assert.deepEqual(readFileSync(join(dst, n)), readFileSync(join(src, n)), n);

    const r2 = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: there.map((n) => ({ source: `${s.base}/packed/${n}`, destination: `${s.base}/again/${n}`, size: statSync(join(src, n)).size })),
      params: { processing: { pack: { maxMembers: 8 } } },
    });
    const job2 = await h.waitJob(r2.body.jobId, 60_000);
    assert.equal(job2['state'], 'FINISHED', JSON.stringify(await files(r2.body.jobId)));
    for (const n of there) assert.deepEqual(readFileSync(join(s.permanentDir, 'again', n)), readFileSync(join(src, n)), n);
  });

  test('to a local directory: the worker unpacks, each member published durably', async () => {
    const dst = tempDir('packed-dst');
    const jobId = await submit((n) => `file://${join(dst, n)}`);
    const job = await h.waitJob(jobId, 60_000);
    assert.equal(job['state'], 'FINISHED', JSON.stringify(await files(jobId)));
    assertSame(dst, []);
  });
});
