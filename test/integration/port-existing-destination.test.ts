/**
 * A destination that already exists, through the whole port (real Redis, TLS, HTTP/2): the job option `existing`.
 * - Default skip-identical: a resubmitted job over identical destinations ends FINISHED (not FINISHED_DIRTY), each file
 *   with a note that it was already there and nothing moved; a destination with other content fails the file with
 *   CARGO_ERR_DEST_EXISTS naming the difference; one that cannot be compared (no checksum anywhere) fails saying so.
 * - `overwrite` replaces, `fail` fails, and `overwrite: true` still means overwrite (contradicting `existing` is a 400).
 * - The same for a remote (WebDAV PUT) destination, compared through a HEAD with Want-Digest.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sameContent, tempDir, type FixtureFile } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

interface FileView { state: string; checksumValue?: string; error?: { code: string; message: string }; attempts: Array<{ outcome?: string; note?: string; bytes?: number; rateBytesPerSec?: number }> }

describe('port: a destination that already exists (job option `existing`)', () => {
  let h: Harness;
  let src: H2FileServer;
  let plain: H2FileServer;
  let dav: H2FileServer;
  before(async () => {
    h = await startHarness();
    src = await startH2FileServer({ root: tempDir('existing-src') });
    plain = await startH2FileServer({ root: tempDir('existing-plain') });
    plain.faults.noDigest = true;
    dav = await startH2FileServer({ root: tempDir('existing-dav') });
  });
  after(async () => {
    await h.close();
    await src.close();
    await plain.close();
    await dav.close();
  });

  async function run(files: Array<{ source: string; destination: string; checksum?: string }>, params: Record<string, unknown> = {}): Promise<{ jobId: string; state: string; views: FileView[] }> {
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', { files, params: { retries: 1, retryDelaySec: 0, ...params } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const job = await h.waitJob(r.body.jobId);
    const views: FileView[] = [];
    for (let i = 0; i < files.length; i++) views.push((await h.api<FileView>('GET', `/api/v1/jobs/${r.body.jobId}/files/${i}`)).body);
    return { jobId: r.body.jobId, state: job['state'] as string, views };
  }
  const pulls = (server: H2FileServer, list: FixtureFile[], dir: string, sums: boolean) =>
    list.map((f) => ({ source: server.url(`/${f.name}`), destination: `file://${dir}/${f.name}`, ...(sums ? { checksum: `adler32:${f.adler32}` } : {}) }));

  test('a resubmitted job over identical destinations finishes clean; other content fails naming the difference', async () => {
    const files = makeRandomFiles(src.root, 5, 64 * 1024, 1024 * 1024, 'r');
    const dst = tempDir('existing-dst');
    // No checksums in the submission: the source announces its adler32 (Digest), the destination's is computed.
    const first = await run(pulls(src, files, dst, false));
    assert.equal(first.state, 'FINISHED');
    const again = await run(pulls(src, files, dst, false));
    assert.equal(again.state, 'FINISHED', JSON.stringify(again.views.map((v) => v.error)));
    for (const [i, v] of again.views.entries()) {
      assert.equal(v.attempts.length, 1);
      assert.match(v.attempts[0]!.note ?? '', /already at the destination.*adler32/);
      assert.equal(v.attempts[0]!.rateBytesPerSec, 0, 'nothing moved');
      assert.equal(v.checksumValue, files[i]!.adler32);
    }
    // Same size, other bytes: not the file; skip-identical never replaces it.
    writeFileSync(join(dst, files[0]!.name), randomBytes(files[0]!.size));
    const changed = await run(pulls(src, files, dst, true));
    assert.equal(changed.state, 'FINISHED_DIRTY');
    assert.equal(changed.views[0]!.state, 'FAILED');
    assert.equal(changed.views[0]!.error?.code, 'CARGO_ERR_DEST_EXISTS');
    assert.match(changed.views[0]!.error!.message, /destination's adler32 is [0-9a-f]{8}, the source's [0-9a-f]{8}/);
    assert.ok(!sameContent(join(src.root, files[0]!.name), join(dst, files[0]!.name)), 'left as it was');

    const replaced = await run(pulls(src, files, dst, true), { existing: 'overwrite' });
    assert.equal(replaced.state, 'FINISHED');
    for (const f of files) assert.ok(sameContent(join(src.root, f.name), join(dst, f.name)), f.name);
    const refused = await run(pulls(src, files, dst, true), { existing: 'fail' });
    assert.equal(refused.state, 'FAILED');
    for (const v of refused.views) assert.equal(v.error?.code, 'CARGO_ERR_DEST_EXISTS');
    const legacy = await run(pulls(src, files.slice(0, 1), dst, true), { overwrite: true });
    assert.equal(legacy.state, 'FINISHED');
    assert.equal(legacy.views[0]!.attempts[0]!.note, undefined, 'overwrite: true moved the file again');
  });

  test('without a checksum anywhere, an existing destination cannot be told identical: it fails saying why', async () => {
    const files = makeRandomFiles(plain.root, 2, 64 * 1024, 128 * 1024, 'n');
    const dst = tempDir('existing-nosum');
    assert.equal((await run(pulls(plain, files, dst, false))).state, 'FINISHED');
    const again = await run(pulls(plain, files, dst, false));
    assert.equal(again.state, 'FAILED');
    for (const v of again.views) {
      assert.equal(v.error?.code, 'CARGO_ERR_DEST_EXISTS');
      assert.match(v.error!.message, /neither the submission nor the source gives a adler32 checksum/);
    }
  });

  test('a remote destination is compared through a HEAD with Want-Digest', async () => {
    const local = tempDir('existing-push-src');
    const files = makeRandomFiles(local, 3, 64 * 1024, 512 * 1024, 'u');
    const pushes = files.map((f) => ({ source: `file://${join(local, f.name)}`, destination: dav.url(`/up/${f.name}`) }));
    assert.equal((await run(pushes)).state, 'FINISHED');
    const puts = () => dav.requests.filter((q) => q.method === 'PUT').length;
    const before = puts();
    const again = await run(pushes);
    assert.equal(again.state, 'FINISHED', JSON.stringify(again.views.map((v) => v.error)));
    for (const v of again.views) assert.match(v.attempts[0]!.note ?? '', /already at the destination/);
    assert.equal(puts(), before, 'nothing was uploaded again');
  });

  test('overwrite: true contradicting existing is refused naming the field', async () => {
    const r = await h.api<{ code: string; field: string }>('POST', '/api/v1/jobs', {
      files: [{ source: src.url('/x'), destination: 'file:///tmp/cargoport-existing-x' }], params: { overwrite: true, existing: 'fail' },
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.field, 'params.existing');
  });
});
