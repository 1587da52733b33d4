/**
 * Part files are named per attempt, so an attempt removes what an earlier attempt of the same file left behind
 * (a worker killed before its first checkpoint), never another job's part file and never the one it resumes.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { LocalPartFile, partFileName } from '../../services/transfer/local/local-part-file.js';
import { partFileTags } from '../../services/jobs/transfer-runner.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

describe('part files of earlier attempts', () => {
  let srv: H2FileServer;
  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
    srv = await startH2FileServer({ root: tempDir('parts-src') });
  });
  after(async () => {
    await srv.close();
    await engine.close();
  });

  test('the runner tags a part file with job, file and attempt, and names the earlier attempts', () => {
    assert.deepEqual(partFileTags('0a1b2c3d-4e5f-6789-abcd-ef0123456789', 7, 1), { partTag: '0a1b2c3d4e5f-7-1', stalePartTags: [] });
    assert.deepEqual(partFileTags('0a1b2c3d-4e5f-6789-abcd-ef0123456789', 7, 3).stalePartTags, ['0a1b2c3d4e5f-7-1', '0a1b2c3d4e5f-7-2']);
  });

  test('an attempt removes the part file a killed earlier attempt left, and only that one', async () => {
    const [f] = makeRandomFiles(srv.root, 1, 300_000, 300_000, 'pf');
    const dst = tempDir('parts-dst');
    const final = join(dst, f!.name);
    const leftover = partFileName(final, 'job1-0-1');
    const othersJob = partFileName(final, 'job2-0-1');
    writeFileSync(leftover, 'half of an attempt');
    writeFileSync(othersJob, 'another job writing the same name');
    const r = await engine.transfer({
      source: srv.url(`/${f!.name}`), destination: `file://${final}`, verify: 'none', overwrite: true,
      partTag: 'job1-0-2', stalePartTags: ['job1-0-1'],
    }, { signal: new AbortController().signal, gate: new PauseGate() });
    assert.equal(r.bytes, 300_000);
    assert.ok(readFileSync(final).equals(readFileSync(join(srv.root, f!.name))));
    assert.equal(existsSync(leftover), false, 'the earlier attempt\'s part file is gone');
    assert.equal(existsSync(othersJob), true, 'another job\'s part file is left alone');
    assert.deepEqual(readdirSync(dst).sort(), [f!.name, `.${f!.name}.cargoport-part-job2-0-1`].sort());
  });

  test('a part file being resumed is not removed even when an earlier attempt named it', async () => {
    const dst = tempDir('parts-resume');
    const final = join(dst, 'r.bin');
    const earlier = partFileName(final, 'job1-0-1');
    writeFileSync(earlier, Buffer.alloc(4096, 7));
    const part = await LocalPartFile.open(final, { tempPath: earlier, done: [[0, 4096]] }, { tag: 'job1-0-2', staleTags: ['job1-0-1'] });
    try {
      assert.equal(part.tempPath, earlier);
      assert.equal(part.resumedSize, 4096);
    } finally {
      await part.discard();
    }
  });
});
