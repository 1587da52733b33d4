/**
 * A source that answers `Content-Encoding: gzip` although the port asked for no coding, through the whole port
 * (test/support/naive-http-server.ts, behaviours `gzip` and `gzip-close`). Before content-coding.ts such files were
 * stored compressed and reported FINISHED with no word of it.
 *
 * - keep (default): the encoded bytes are stored as received; the attempt records `contentEncoding: gzip` and the
 *   file carries a warning; a checksum given for the decoded bytes fails CARGO_ERR_CONTENT_ENCODING naming the
 *   mode that would match, nothing is published;
 * - decode: the decoded bytes are stored and match the checksums of the server's files; a large file whose encoded
 *   representation is served in ranges is not split (it would be decoded piecewise), but pulled as one stream.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { adler32 } from '../../services/checksum/adler32.js';
import { makeRandomFiles, sameContent, tempDir, type FixtureFile } from '../support/fixtures.js';
import { startNaiveHttpServer, type NaiveHttpServer } from '../support/naive-http-server.js';
import { startHarness, type Harness } from '../support/port-harness.js';

const MiB = 1024 * 1024;
const hex = (b: Buffer): string => adler32(b).toString(16).padStart(8, '0');

interface FileView {
  state: string;
  warnings?: string[];
  error?: { code: string; message: string };
  attempts: Array<{ contentEncoding?: string; warnings?: string[]; streams?: number }>;
}

describe('port: a source that sends Content-Encoding: gzip unasked', () => {
  let h: Harness;
  let src: NaiveHttpServer;
  let root: string;
  let files: FixtureFile[];
  let large: FixtureFile;

  before(async () => {
    root = tempDir('coding-src');
    files = makeRandomFiles(root, 200, 1, 128 * 1024, 'g');
    [large] = makeRandomFiles(root, 1, 40 * MiB, 40 * MiB, 'big');
    src = await startNaiveHttpServer(root);
    h = await startHarness();
  });
  after(async () => {
    await h.close();
    await src.close();
  });

  async function run(list: Array<{ name: string; checksum?: string }>, behaviour: string, params: Record<string, unknown> = {}) {
    const dst = tempDir('coding-dst');
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: list.map((f) => ({ source: `${src.origin}/${behaviour}/${f.name}`, destination: `file://${dst}/${f.name}`, ...(f.checksum ? { checksum: f.checksum } : {}) })),
      params: { retries: 0, ...params },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const job = await h.waitJob(r.body.jobId, 180_000);
    const view = async (i: number): Promise<FileView> => (await h.api<FileView>('GET', `/api/v1/jobs/${r.body.jobId}/files/${i}`)).body;
    return { job, dst, view };
  }

  test('keep (default): 200 files stored as sent (gzip), FINISHED with the coding on the attempt and a warning on the file', async () => {
    // The checksum of the bytes as sent (the gzip) is what the stored files must have.
    const { job, dst, view } = await run(files.map((f) => ({ name: f.name, checksum: `adler32:${hex(gzipSync(readFileSync(join(root, f.name))))}` })), 'gzip');
    assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
    for (const f of files) assert.ok(gunzipSync(readFileSync(join(dst, f.name))).equals(readFileSync(join(root, f.name))), f.name);
    const v = await view(0);
    assert.equal(v.attempts.at(-1)?.contentEncoding, 'gzip');
    assert.equal(v.warnings?.length, 1);
    assert.match(v.warnings![0]!, /Content-Encoding: gzip.*stored as received.*contentEncoding "decode"/);
  });

  test('keep: a checksum of the decoded bytes fails CARGO_ERR_CONTENT_ENCODING, naming decode; nothing published', async () => {
    const some = files.slice(0, 10);
    const { job, dst, view } = await run(some.map((f) => ({ name: f.name, checksum: `adler32:${f.adler32}` })), 'gzip');
    assert.equal(job['state'], 'FAILED', JSON.stringify(job['counts']));
    const v = await view(0);
    assert.equal(v.error?.code, 'CARGO_ERR_CONTENT_ENCODING', JSON.stringify(v.error));
    assert.match(v.error!.message, /decoded form matches the checksum.*contentEncoding "decode"/);
    assert.deepEqual(existsSync(dst) ? readdirSync(dst) : [], []);
  });

  test('decode: 200 files (kept-alive and close-delimited) stored decoded, matching the server\'s checksums', async () => {
    for (const behaviour of ['gzip', 'gzip-close']) {
      const { job, dst, view } = await run(files.map((f) => ({ name: f.name, checksum: `adler32:${f.adler32}` })), behaviour, { contentEncoding: 'decode' });
      assert.equal(job['state'], 'FINISHED', `${behaviour}: ${JSON.stringify(job['counts'])}`);
      for (const f of files) assert.ok(sameContent(join(root, f.name), join(dst, f.name)), `${behaviour} ${f.name}`);
      const v = await view(0);
      assert.equal(v.attempts.at(-1)?.contentEncoding, 'gzip');
      assert.equal(v.warnings, undefined, 'asked for: no warning');
    }
  });

  test('decode: a 40 MiB file whose gzip is served in ranges is pulled as one stream, not decoded range by range', async () => {
    const { job, dst, view } = await run([{ name: large.name, checksum: `adler32:${large.adler32}` }], 'gzip', { contentEncoding: 'decode' });
    assert.equal(job['state'], 'FINISHED', JSON.stringify(await view(0)));
    assert.ok(sameContent(join(root, large.name), join(dst, large.name)));
    assert.equal((await view(0)).attempts.at(-1)?.streams, 1);
  });

  test('decode: a checksum of the bytes as sent (the gzip) fails CARGO_ERR_CONTENT_ENCODING, naming keep', async () => {
    const f = files[0]!;
    const { job, view } = await run([{ name: f.name, checksum: `adler32:${hex(gzipSync(readFileSync(join(root, f.name))))}` }], 'gzip', { contentEncoding: 'decode' });
    assert.equal(job['state'], 'FAILED');
    const v = await view(0);
    assert.equal(v.error?.code, 'CARGO_ERR_CONTENT_ENCODING');
    assert.match(v.error!.message, /sent \(encoded\) match the checksum.*contentEncoding "keep"/);
  });

  test('the submission refuses an unknown contentEncoding, naming the field', async () => {
    const r = await h.api<{ code: string; field?: string; detail?: string }>('POST', '/api/v1/jobs', {
      files: [{ source: `${src.origin}/gzip/${files[0]!.name}`, destination: `file://${tempDir('coding-bad')}/x` }],
      params: { contentEncoding: 'gunzip' },
    });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.body), /contentEncoding/);
  });
});
