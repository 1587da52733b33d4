/**
 * Processing stages through a real port (gateway, worker, Redis, TLS): a job's emission and reception stages run
 * in the worker's transfer (zstd on the library's threads, checksum records, site hooks), the file is published at
 * the chain's name, the stages' records are on the file's attempt; a failing hook fails the file with its stderr
 * and publishes nothing; an admin pause holds a staged transfer; the operator's rules apply and a job cannot
 * bypass them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compress, decompress } from 'zstd-napi';
import { adler32 } from '../../services/checksum/adler32.js';
import { fileLine } from '../../bin/commands/files.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

const MiB = 1024 * 1024;

interface FileView {
  state: string;
  destination: string;
  error?: { code: string; message: string };
  attempts: Array<{ processing?: Array<Record<string, unknown>>; publishedAs?: string; errorCode?: string; errorMessage?: string }>;
}

/** Text-like bytes that compress (~4:1 with zstd level 1), different on every call. */
function compressible(size: number): Buffer {
  const words = ['SIMPLE', 'BITPIX', 'NAXIS1', 'NAXIS2', 'EXPTIME', 'DATE-OBS', 'TELESCOP', '= ', 'T', '16', '2048', '\n'];
  const out = Buffer.alloc(size);
  let o = 0;
  while (o < size) o += out.write(`${words[Math.floor(Math.random() * words.length)]!}${Math.floor(Math.random() * 100)} `, o);
  return out;
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const adler = (b: Buffer) => adler32(b).toString(16).padStart(8, '0');

function hookScript(dir: string, name: string, body: string): string {
  const p = join(dir, `${name}.sh`);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('port: processing stages (zstd, checksums, hooks, rules)', () => {
  let h: Harness;
  let src: H2FileServer;
  let srcDir: string;
  let ruledDir: string;
  let siteDir: string;
  before(async () => {
    srcDir = tempDir('proc-src');
    ruledDir = tempDir('proc-ruled');
    siteDir = tempDir('proc-site');
    const hooks = tempDir('proc-hooks');
    const sh = (name: string, body: string) => ['/bin/sh', hookScript(hooks, name, body)];
    h = await startHarness({
      workers: { concurrency: 4 },
      processing: {
        threads: 1,
        hooks: {
          reject: { command: sh('reject', 'cat >/dev/null\necho "line one" >&2\necho "bad FITS header at card 7" >&2\nexit 1') },
          hang: { command: sh('hang', 'exec sleep 600'), timeoutSec: 1, graceSec: 1 },
          garbage: { command: sh('garbage', 'cat >/dev/null\nhead -c 4096 /dev/urandom'), sides: ['emission'] },
          upper: { command: ['/usr/bin/tr', 'a-z', 'A-Z'] },
          tempfail: { command: sh('tempfail', 'cat >/dev/null\necho "archive busy, try later" >&2\nexit 75') },
        },
        rules: [
          { pathPrefix: ruledDir, reception: [{ stage: 'hook', hook: 'reject' }] },
          { pathPrefix: siteDir, reception: [{ stage: 'checksum', algs: ['sha256'], label: 'site' }] },
          // Uploads into the port's own storage endpoint (paths below storage.urlPrefix).
          { endpoint: 'storage', pathPrefix: '/ingest', reception: [{ stage: 'hook', hook: 'reject' }] },
          { endpoint: 'storage', pathPrefix: '/zst', reception: [{ stage: 'unzstd' }] },
        ],
      },
    });
    src = await startH2FileServer({ root: tempDir('proc-h2') });
  });
  after(async () => {
    await h?.close();
    await src?.close();
  });

  async function submit(files: Array<Record<string, unknown>>, processing?: unknown, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', { files, params: { retries: 0, ...(processing ? { processing } : {}), ...extra } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.jobId;
  }
  const fileView = async (jobId: string, i = 0) => (await h.api<FileView>('GET', `/api/v1/jobs/${jobId}/files/${i}`)).body;
  const record = (f: FileView, label: string) => f.attempts.at(-1)?.processing?.find((r) => r['label'] === label) as { bytes: number; checksums: Record<string, string> } | undefined;

  test('compress at emission + decompress at reception: identical bytes, checksums recorded and verified', async () => {
    const data = compressible(3 * MiB + 12345);
    writeFileSync(join(srcDir, 'a.txt'), data);
    const dst = tempDir('proc-rt');
    const jobId = await submit([{ source: `file://${srcDir}/a.txt`, destination: `file://${dst}/a.txt`, checksum: `adler32:${adler(data)}` }], {
      emission: [{ stage: 'checksum', algs: ['sha256'], label: 'raw' }, { stage: 'zstd', level: 1 }, { stage: 'checksum', algs: ['adler32'], label: 'wire' }],
      reception: [{ stage: 'unzstd' }, { stage: 'checksum', algs: ['sha256', 'adler32'], label: 'final' }],
    });
    const job = await h.waitJob(jobId);
    const f = await fileView(jobId);
    assert.equal(job['state'], 'FINISHED', JSON.stringify(f));
    assert.ok(readFileSync(join(dst, 'a.txt')).equals(data), 'identical bytes');
    const raw = record(f, 'raw')!;
    const wire = record(f, 'wire')!;
    const fin = record(f, 'final')!;
    assert.equal(raw.checksums['sha256'], sha256(data));
    assert.equal(fin.checksums['sha256'], sha256(data));
    assert.equal(fin.checksums['adler32'], adler(data));
    assert.equal(raw.bytes, data.length);
    assert.ok(wire.bytes < data.length / 2, `compressed on the wire (${wire.bytes} of ${data.length})`);
    assert.deepEqual(readdirSync(dst), ['a.txt'], 'no part file left');
    // The listing (GET /jobs/:id/files) carries the records too.
    const page = (await h.api<{ files: FileView[] }>('GET', `/api/v1/jobs/${jobId}/files`)).body;
    assert.equal(record(page.files[0]!, 'final')?.checksums['sha256'], sha256(data));
    // `cargoport files` shows the records.
    const line = fileLine(page.files[0] as unknown as Parameters<typeof fileLine>[0]);
    assert.match(line, new RegExp(`final sha256=${sha256(data)},adler32=${adler(data)}`));
  });

  test('zstd suffix naming: an https source published as NAME.zst; unzstd stripSuffix publishes NAME back', async () => {
    const data = compressible(MiB);
    mkdirSync(join(src.root, 'z'), { recursive: true });
    writeFileSync(join(src.root, 'z', 'run42.fits'), data);
    const dst = tempDir('proc-zst');
    const jobId = await submit([{ source: src.url('/z/run42.fits'), destination: `file://${dst}/run42.fits` }], {
      emission: [{ stage: 'zstd', level: 3, suffix: true }],
    });
    assert.equal((await h.waitJob(jobId))['state'], 'FINISHED');
    assert.deepEqual(readdirSync(dst), ['run42.fits.zst']);
    const f = await fileView(jobId);
    assert.equal(f.attempts.at(-1)?.publishedAs, `file://${dst}/run42.fits.zst`);
    assert.ok(decompress(readFileSync(join(dst, 'run42.fits.zst'))).equals(data), 'a valid zstd frame of the source');
    // Back: the .zst file decompressed at reception, its suffix stripped.
    const back = tempDir('proc-unzst');
    const j2 = await submit([{ source: `file://${dst}/run42.fits.zst`, destination: `file://${back}/run42.fits.zst` }], { reception: [{ stage: 'unzstd', stripSuffix: true }] });
    assert.equal((await h.waitJob(j2))['state'], 'FINISHED');
    assert.deepEqual(readdirSync(back), ['run42.fits']);
    assert.ok(readFileSync(join(back, 'run42.fits')).equals(data));
  });

  test('a stream hook transforms the bytes (a file\'s own processing replaces the job\'s)', async () => {
    writeFileSync(join(srcDir, 'lower.txt'), 'hello processing\n');
    writeFileSync(join(srcDir, 'plain.txt'), 'left alone\n');
    const dst = tempDir('proc-hook-ok');
    const jobId = await submit([
      { source: `file://${srcDir}/lower.txt`, destination: `file://${dst}/lower.txt`, processing: { reception: [{ stage: 'hook', hook: 'upper' }] } },
      { source: `file://${srcDir}/plain.txt`, destination: `file://${dst}/plain.txt` },
    ]);
    assert.equal((await h.waitJob(jobId))['state'], 'FINISHED');
    assert.equal(readFileSync(join(dst, 'lower.txt'), 'utf8'), 'HELLO PROCESSING\n');
    assert.equal(readFileSync(join(dst, 'plain.txt'), 'utf8'), 'left alone\n');
    const own = (await h.api<{ processing?: unknown }>('GET', `/api/v1/jobs/${jobId}/files/0`)).body;
    assert.deepEqual(own.processing, { reception: [{ stage: 'hook', hook: 'upper' }] }, 'the file shows its own stages');
  });

  test('hooks that exit 1, hang past their limit or write garbage fail the file with the reason; nothing is published', async () => {
    const data = compressible(2 * MiB);
    writeFileSync(join(srcDir, 'h.txt'), data);
    const cases: Array<[string, unknown, RegExp]> = [
      ['exit1', { reception: [{ stage: 'hook', hook: 'reject' }] }, /bad FITS header at card 7/],
      ['hang', { reception: [{ stage: 'hook', hook: 'hang' }] }, /time|limit|signal/i],
      ['garbage', { emission: [{ stage: 'hook', hook: 'garbage' }], reception: [{ stage: 'unzstd' }] }, /unzstd/],
    ];
    for (const [name, processing, reason] of cases) {
      const dst = tempDir(`proc-fail-${name}`);
      const jobId = await submit([{ source: `file://${srcDir}/h.txt`, destination: `file://${dst}/h.txt` }], processing);
      assert.equal((await h.waitJob(jobId))['state'], 'FAILED', name);
      const f = await fileView(jobId);
      assert.equal(f.state, 'FAILED');
      assert.equal(f.error?.code, 'CARGO_ERR_STAGE_FAILED', `${name}: ${JSON.stringify(f.error)}`);
      assert.match(f.error!.message, reason, name);
      assert.deepEqual(readdirSync(dst), [], `${name}: nothing published, no part file left`);
    }
  });

  test('a hook exiting 75 (EX_TEMPFAIL) is retried: the file spends its retries, then fails with the reason', async () => {
    writeFileSync(join(srcDir, 't.txt'), 'x\n');
    const dst = tempDir('proc-tempfail');
    const jobId = await submit([{ source: `file://${srcDir}/t.txt`, destination: `file://${dst}/t.txt` }], { reception: [{ stage: 'hook', hook: 'tempfail' }] }, { retries: 1, retryDelaySec: 0 });
    assert.equal((await h.waitJob(jobId))['state'], 'FAILED');
    const f = await fileView(jobId);
    assert.equal(f.attempts.length, 2, 'retried once');
    assert.match(f.error!.message, /archive busy/);
    assert.deepEqual(readdirSync(dst), []);
  });

  test('the operator\'s rules apply to every job towards their paths and cannot be bypassed', async () => {
    writeFileSync(join(srcDir, 'r.txt'), 'some bytes\n');
    // A reception hook the operator put on ruledDir: a job asking no processing at all still runs it.
    const j1 = await submit([{ source: `file://${srcDir}/r.txt`, destination: `file://${ruledDir}/r.txt` }]);
    assert.equal((await h.waitJob(j1))['state'], 'FAILED');
    assert.match((await fileView(j1)).error!.message, /bad FITS header/);
    assert.equal(existsSync(join(ruledDir, 'r.txt')), false);
    // Nor a job with stages of its own: the rule's stage runs after them.
    const j2 = await submit([{ source: `file://${srcDir}/r.txt`, destination: `file://${ruledDir}/r2.txt` }], { reception: [{ stage: 'checksum' }] });
    assert.equal((await h.waitJob(j2))['state'], 'FAILED');
    assert.equal(existsSync(join(ruledDir, 'r2.txt')), false);
    // A checksum rule: its record is on every file towards siteDir, after the job's stages (it sees the final bytes).
    const j3 = await submit([{ source: `file://${srcDir}/r.txt`, destination: `file://${siteDir}/r.txt` }], { reception: [{ stage: 'hook', hook: 'upper' }] });
    assert.equal((await h.waitJob(j3))['state'], 'FINISHED');
    const site = record(await fileView(j3), 'site');
    assert.equal(site?.checksums['sha256'], sha256(Buffer.from('SOME BYTES\n')));
  });

  test('an admin pause holds a staged transfer (no byte moves, the transfer is not aborted); resume completes it', async () => {
    const data = compressible(8 * MiB);
    mkdirSync(join(src.root, 'p'), { recursive: true });
    writeFileSync(join(src.root, 'p', 'slow.txt'), data);
    src.faults.bytesPerSec = 2 * MiB;
    const dst = tempDir('proc-pause');
    const admin = (op: string) => h.api<Record<string, unknown>>('POST', `/api/v1/admin/${op}`, {});
    const bytes = () => h.workers.reduce((a, w) => a + [...w.pool.active.values()].reduce((b, t) => b + t.bytes, 0), 0);
    const active = () => h.workers.reduce((a, w) => a + w.pool.activeCount, 0);
    try {
      const jobId = await submit([{ source: src.url('/p/slow.txt'), destination: `file://${dst}/slow.txt` }], {
        emission: [{ stage: 'zstd', level: 1 }], reception: [{ stage: 'unzstd' }, { stage: 'checksum', label: 'final' }],
      });
      const deadline = Date.now() + 30_000;
      while (!(active() === 1 && bytes() > MiB)) {
        assert.ok(Date.now() < deadline, 'transfer to be moving');
        await sleep(50);
      }
      assert.equal((await admin('pause'))['body']['state'], 'paused');
      await sleep(300); // a chunk already past the gate may still land
      const held = bytes();
      const samples: number[] = [];
      for (let i = 0; i < 8; i++) {
        await sleep(200);
        samples.push(bytes());
      }
      assert.deepEqual(samples, new Array(8).fill(held), 'no byte moved during the pause');
      assert.equal(active(), 1, 'held, not aborted');
      assert.equal((await admin('resume'))['body']['state'], 'running');
      assert.equal((await h.waitJob(jobId))['state'], 'FINISHED');
      assert.ok(readFileSync(join(dst, 'slow.txt')).equals(data));
      const f = await fileView(jobId);
      assert.equal(f.attempts.length, 1, 'one attempt: paused in place');
      assert.equal(record(f, 'final')?.checksums['adler32'], adler(data));
    } finally {
      src.faults.bytesPerSec = 0;
      await admin('resume');
    }
  });

  test('the storage endpoint runs the operator\'s reception rules on uploads: a refusing hook → 422, nothing published; unzstd rewrites', async () => {
    const prefix = h.cfg.storage.urlPrefix;
    const data = compressible(300_000);
    let r = await h.api<Record<string, unknown>>('PUT', `${prefix}/ingest/a.fits`, data, { 'content-type': 'application/octet-stream' });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.match(String(r.body['detail']), /bad FITS header at card 7/);
    assert.equal((await h.api('GET', `${prefix}/ingest/a.fits`)).status, 404, 'nothing published');
    r = await h.api<Record<string, unknown>>('PUT', `${prefix}/zst/b.fits`, compress(data), { 'content-type': 'application/octet-stream' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const got = await h.api<string>('GET', `${prefix}/zst/b.fits`);
    assert.equal(got.status, 200);
    assert.equal(sha256(Buffer.from(got.body)), sha256(data));
    // Paths no rule names are stored as sent.
    r = await h.api<Record<string, unknown>>('PUT', `${prefix}/other/c.bin`, data, { 'content-type': 'application/octet-stream' });
    assert.equal(r.status, 201);
  });
});
