/**
 * Group commit of local publishes (services/transfer/local/commit-queue.ts): files published together are made
 * durable and named in batches by one thread; each caller gets its own file's outcome.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { groupCommit, groupCommitStats } from '../../services/transfer/local/commit-queue.js';
import { LocalPartFile } from '../../services/transfer/local/local-part-file.js';
import { TransferErrorCode } from '../../services/transfer/transfer-errors.js';
import { isCargoError } from '../../errors/cargo-error.js';
import { tempDir } from '../support/fixtures.js';

describe('group commit of local publishes', () => {
  test('200 files published at once: all at their names with their bytes, no part file left, in far fewer batches', async () => {
    const dir = tempDir('gc-many');
    const before = groupCommitStats();
    const bodies = Array.from({ length: 200 }, () => randomBytes(4096));
    await Promise.all(bodies.map(async (b, i) => {
      const part = await LocalPartFile.open(join(dir, `f${i}`), undefined, { tag: `t${i}` });
      await part.writeAt(b, 0);
      await part.publish(false, { grouped: true });
    }));
    for (let i = 0; i < bodies.length; i++) assert.ok(readFileSync(join(dir, `f${i}`)).equals(bodies[i]!), `f${i}`);
    assert.equal(readdirSync(dir).length, bodies.length, 'only the final names');
    const after = groupCommitStats();
    assert.equal(after.files - before.files, bodies.length);
    assert.ok(after.batches - before.batches < bodies.length / 4, `${after.batches - before.batches} batches for ${bodies.length} files`);
  });

  test('one file of a batch whose name exists fails alone (DEST_EXISTS), its part file kept; overwrite replaces', async () => {
    const dir = tempDir('gc-exists');
    writeFileSync(join(dir, 'taken'), 'someone else');
    const parts = await Promise.all(['a', 'taken', 'b'].map(async (n) => {
      const p = await LocalPartFile.open(join(dir, n), undefined, { tag: 'x' });
      await p.writeAt(Buffer.from(`ours ${n}`), 0);
      return p;
    }));
    const results = await Promise.allSettled(parts.map((p) => p.publish(false, { grouped: true })));
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[2]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    const err = (results[1] as PromiseRejectedResult).reason as unknown;
    assert.ok(isCargoError(err) && err.code === TransferErrorCode.destExists, String(err));
    assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'someone else');
    assert.ok(existsSync(parts[1]!.tempPath), 'the refused part file stays for its owner to discard');
    assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'ours a');
    await groupCommit({ tempPath: parts[1]!.tempPath, finalPath: join(dir, 'taken'), overwrite: true });
    assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'ours taken');
    assert.ok(!existsSync(parts[1]!.tempPath));
  });

  test('a part file that vanished fails with a local I/O error, not a success', async () => {
    const dir = tempDir('gc-missing');
    await assert.rejects(groupCommit({ tempPath: join(dir, '.gone.cargoport-part-x'), finalPath: join(dir, 'gone'), overwrite: false }),
      (e: { code?: string }) => e.code === 'ENOENT');
    assert.ok(!existsSync(join(dir, 'gone')));
  });
});
