/**
 * Sources that frame their answers the way naive, broken or hostile HTTP/1.x servers do, through the whole port
 * (real Redis, workers, file publication): a raw node:net server (test/support/naive-http-server.ts) answering
 * HTTP/1.0 with no Content-Length, close-delimited bodies, `Connection: close`, chunked with trailers, early FIN,
 * early RST, a Content-Length shorter or longer than the body, garbage after the body.
 *
 * Before Node's http client carried HTTP/1.x GETs (services/transfer/http/http1-get.ts), undici's HTTP/1 parser
 * asserted `!this.paused` whenever such a server ended the connection while a body was held back, and the process
 * (gateway and workers) died. A job rate limit makes the hold-back certain here.
 *
 * Each job must end on its own: correct bytes where the framing is sound, a clear per-file error (and nothing
 * published) where it is not; the port answers throughout and runs the next job.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeRandomFiles, sameContent, sleep, tempDir, type FixtureFile } from '../support/fixtures.js';
import { startNaiveHttpServer, type NaiveBehaviour, type NaiveHttpServer } from '../support/naive-http-server.js';
import { startHarness, type Harness } from '../support/port-harness.js';

const MiB = 1024 * 1024;

interface FileView {
  state: string;
  error?: { code: string; message: string };
  attempts: Array<{ protocol?: string; error?: { code: string } }>;
}

describe('port: naive and broken HTTP/1.x sources', () => {
  let h: Harness;
  let src: NaiveHttpServer;
  let root: string;
  let small: FixtureFile[];
  let large: FixtureFile[];

  before(async () => {
    root = tempDir('naive-src');
    // Sizes across the body buffer of a response (64 KiB) and the socket's reads, where the hold-back falls.
    small = makeRandomFiles(root, 200, 1, 256 * 1024, 's');
    large = makeRandomFiles(root, 3, 6 * MiB, 9 * MiB, 'L');
    src = await startNaiveHttpServer(root);
    h = await startHarness();
  });
  after(async () => {
    await h.close();
    await src.close();
  });

  async function runJob(behaviour: NaiveBehaviour, files: FixtureFile[], params: Record<string, unknown> = {}): Promise<{ jobId: string; job: Record<string, unknown>; dst: string }> {
    const dst = tempDir(`naive-dst-${behaviour}`);
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: `${src.origin}/${behaviour}/${f.name}`, destination: `file://${dst}/${f.name}`, checksum: `adler32:${f.adler32}` })),
      params: { retries: 0, ...params },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const job = await h.waitJob(r.body.jobId, 180_000);
    return { jobId: r.body.jobId, job, dst };
  }

  async function fileView(jobId: string, i: number): Promise<FileView> {
    return (await h.api<FileView>('GET', `/api/v1/jobs/${jobId}/files/${i}`)).body;
  }

  async function portAlive(): Promise<void> {
    const r = await h.api<{ status: string }>('GET', '/healthz');
    assert.equal(r.status, 200);
  }

  const sound: NaiveBehaviour[] = ['http10', 'no-length-close', 'close', 'chunked-trailers'];
  for (const behaviour of sound) {
    test(`${behaviour}: 200 small files, byte for byte, with their checksums`, async () => {
      const { job, dst } = await runJob(behaviour, small);
      assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
      for (const f of small) assert.ok(sameContent(join(root, f.name), join(dst, f.name)), f.name);
      await portAlive();
    });
    test(`${behaviour}: 3 large files held back by a job rate limit, byte for byte, with their checksums`, async () => {
      const { jobId, job, dst } = await runJob(behaviour, large.map((f) => f), { bandwidthBytesPerSec: 40 * MiB });
      assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
      for (const f of large) assert.ok(sameContent(join(root, f.name), join(dst, f.name)), f.name);
      assert.equal((await fileView(jobId, 0)).attempts[0]?.protocol, 'http/1.1');
      await portAlive();
    });
  }

  const broken: Array<{ behaviour: NaiveBehaviour; code: string; message: RegExp }> = [
    { behaviour: 'early-close', code: 'CARGO_ERR_NETWORK', message: /aborted|closed|received \d+ bytes, expected/ },
    { behaviour: 'early-reset', code: 'CARGO_ERR_NETWORK', message: /ECONNRESET|aborted|reset/ },
    { behaviour: 'length-long', code: 'CARGO_ERR_NETWORK', message: /aborted|closed|received \d+ bytes, expected/ },
    { behaviour: 'length-short', code: 'CARGO_ERR_SOURCE_FRAMING', message: /where its body should have ended/ },
    { behaviour: 'garbage-after', code: 'CARGO_ERR_SOURCE_FRAMING', message: /where its body should have ended/ },
  ];
  for (const { behaviour, code, message } of broken) {
    test(`${behaviour}: every file fails with ${code}, nothing is published, the port lives`, async () => {
      const files = [...small.slice(0, 20), large[0]!];
      const { jobId, job, dst } = await runJob(behaviour, files, { bandwidthBytesPerSec: 40 * MiB });
      assert.equal(job['state'], 'FAILED', JSON.stringify(job['counts']));
      for (const i of [0, files.length - 1]) {
        const v = await fileView(jobId, i);
        assert.equal(v.state, 'FAILED');
        assert.equal(v.error?.code, code, JSON.stringify(v.error));
        assert.match(v.error!.message, message);
      }
      // Not one file at the destination: a truncated or over-long body is never published. The part file a failed
      // attempt kept for resuming goes once the file is FAILED (the worker removes it just after recording that).
      const listed = (): string[] => (existsSync(dst) ? readdirSync(dst) : []);
      assert.deepEqual(listed().filter((n) => !n.includes('.cargoport-part-')), []);
      for (let i = 0; i < 100 && listed().length > 0; i++) await sleep(50);
      assert.deepEqual(listed(), []);
      await portAlive();
    });
  }

  test('after all of it, the same port runs a clean job', async () => {
    const { job, dst } = await runJob('close', small.slice(0, 30));
    assert.equal(job['state'], 'FINISHED');
    for (const f of small.slice(0, 30)) assert.ok(sameContent(join(root, f.name), join(dst, f.name)));
  });
});
