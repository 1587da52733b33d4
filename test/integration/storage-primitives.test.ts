/**
 * The storage layer's building blocks on a real file system: safe-path parsing and confinement (symlinks),
 * range parsing, ranged-upload coverage, atomic publish of the POSIX backend, buffer quota and eviction,
 * nearline recall, ISO 8601 durations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, symlinkSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLogicalPath, ConfinedRoot, isWithin } from '../../services/storage/safe-path.js';
import { PosixBackend } from '../../services/storage/posix-backend.js';
import { NearlineBackend } from '../../services/storage/nearline-backend.js';
import { createPortStorage } from '../../services/storage/port-storage.js';
import { addRange, coveredBytes } from '../../services/storage/ranged-upload.js';
import { parseRangeHeader, parseContentRange } from '../../gateway/storage/range-header.js';
import { parseIsoDurationMs } from '../../gateway/storage/iso-duration.js';
import { isCargoError } from '../../errors/cargo-error.js';
import { JsonStateFile } from '../../services/storage/json-state-file.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return isCargoError(e) ? e.code : 'other';
  }
  return undefined;
};
const codeAsync = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e) => (isCargoError(e) ? e.code : (e as NodeJS.ErrnoException).code ?? 'other'),
  );

test('parseLogicalPath: canonical forms and refusals', () => {
  assert.deepEqual(parseLogicalPath('/a//b/c/').segments, ['a', 'b', 'c']);
  assert.equal(parseLogicalPath('/a//b/c/').path, '/a/b/c');
  assert.equal(parseLogicalPath('/a//b/c/').trailingSlash, true);
  assert.equal(parseLogicalPath('/').path, '/');
  assert.equal(parseLogicalPath('/a%20b/%C3%A9').path, '/a b/é');
  for (const bad of ['/..', '/a/../b', '/%2e%2E', '/.%2e/x', '/%252e%252e/x', '/a%2fb', '/a%00', '/a%0a', '/a\\b', '/%zz', 'rel', '/.cargoport-tmp-x', '/' + 'x'.repeat(256), '/abcdefgh'.repeat(600)]) {
    assert.equal(code(() => parseLogicalPath(bad)), 'CARGO_ERR_BAD_PATH', bad);
  }
  assert.ok(isWithin('/foo', '/foo/bar'));
  assert.ok(!isWithin('/foo', '/foobar'));
});

test('ConfinedRoot: symlinks inside are fine, escaping and dangling ones are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cargoport-confine-'));
  try {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'in'), { recursive: true });
    mkdirSync(join(dir, 'out'));
    symlinkSync(join(dir, 'out'), join(root, 'escape'));
    symlinkSync(join(root, 'in'), join(root, 'alias'));
    symlinkSync('/nonexistent/target', join(root, 'dangling'));
    const r = await ConfinedRoot.open(root);
    assert.equal(await r.confine('/alias/x'), r.realRoot + '/alias/x');
    assert.equal(await r.confine('/new/deep/file'), r.realRoot + '/new/deep/file');
    assert.equal(await codeAsync(r.confine('/escape')), 'CARGO_ERR_FORBIDDEN');
    assert.equal(await codeAsync(r.confine('/escape/new/file')), 'CARGO_ERR_FORBIDDEN');
    assert.equal(await codeAsync(r.confine('/dangling')), 'CARGO_ERR_FORBIDDEN');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('range parsing: suffix, open-ended, coalescing, 416 cases, other units ignored', () => {
  assert.deepEqual(parseRangeHeader('bytes=0-0', 10), { kind: 'partial', ranges: [{ start: 0, end: 0 }] });
  assert.deepEqual(parseRangeHeader('bytes=5-', 10), { kind: 'partial', ranges: [{ start: 5, end: 9 }] });
  assert.deepEqual(parseRangeHeader('bytes=-20', 10), { kind: 'partial', ranges: [{ start: 0, end: 9 }] });
  assert.deepEqual(parseRangeHeader('bytes=0-3,2-5,20-30', 10), { kind: 'partial', ranges: [{ start: 0, end: 5 }] });
  assert.deepEqual(parseRangeHeader('items=0-1', 10), { kind: 'full' });
  for (const bad of ['bytes=10-', 'bytes=3-1', 'bytes=x-1', 'bytes', 'bytes=-0', 'bytes=1-2,a']) {
    assert.equal(parseRangeHeader(bad, 10).kind, 'unsatisfiable', bad);
  }
  assert.equal(parseRangeHeader('bytes=0-', 0).kind, 'unsatisfiable');
  assert.deepEqual(parseContentRange('bytes 0-9/20'), { start: 0, end: 9, total: 20 });
  assert.equal(parseContentRange('bytes 0-20/20'), null);
  assert.equal(parseContentRange('bytes */20'), null);
  assert.equal(parseContentRange('bytes 5-1/20'), null);
});

test('ranged-upload coverage: merge, overlap, gaps', () => {
  let d: Array<[number, number]> = [];
  d = addRange(d, 10, 20);
  d = addRange(d, 0, 5);
  assert.equal(coveredBytes(d), 15);
  d = addRange(d, 5, 10);
  assert.deepEqual(d, [[0, 20]]);
  d = addRange(d, 15, 25);
  assert.deepEqual(d, [[0, 25]]);
});

test('ISO 8601 durations for diskLifetime', () => {
  assert.equal(parseIsoDurationMs('PT1H'), 3_600_000);
  assert.equal(parseIsoDurationMs('P1DT30M'), 88_200_000);
  assert.equal(parseIsoDurationMs('PT0.5S'), 500);
  for (const bad of ['P', 'PT', '1H', 'P1M2', 'P1Y', '']) assert.equal(parseIsoDurationMs(bad), undefined, bad);
});

test('PosixBackend: temp + atomic publish; no-overwrite publish is atomic; abort leaves nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cargoport-posix-'));
  try {
    const b = await PosixBackend.create(dir);
    const t = await b.createTemp('/a/f', { overwrite: false });
    await t.handle.write('hello');
    assert.equal(await codeAsync(b.stat('/a/f')), 'CARGO_ERR_NOT_FOUND', 'invisible before commit');
    assert.equal(readdirSync(join(dir, 'a')).length, 1, 'only the temp file');
    assert.equal((await b.list('/a')).length, 0, 'temp files are not listed');
    await t.commit();
    assert.equal(readFileSync(join(dir, 'a/f'), 'utf8'), 'hello');
    const t2 = await b.createTemp('/a/g', { overwrite: false });
    writeFileSync(join(dir, 'a/g'), 'raced in');
    assert.equal(await codeAsync(t2.commit()), 'CARGO_ERR_EXISTS');
    assert.equal(readFileSync(join(dir, 'a/g'), 'utf8'), 'raced in');
    const t3 = await b.createTemp('/a/h', { overwrite: true });
    await t3.abort();
    assert.deepEqual(readdirSync(join(dir, 'a')).sort(), ['f', 'g']);
    await b.move('/a/f', '/a/g', { overwrite: false }).catch(() => undefined);
    assert.equal(readFileSync(join(dir, 'a/g'), 'utf8'), 'raced in');
    assert.equal(await codeAsync(b.delete('/a')), 'CARGO_ERR_NOT_EMPTY');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('buffer: quota refuses what cannot fit, evicts released copies LRU; nearline recall coalesces', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cargoport-buffer-'));
  try {
    mkdirSync(join(dir, 'perm'));
    for (const n of ['a', 'b', 'c']) writeFileSync(join(dir, 'perm', n), Buffer.alloc(400, n));
    const s = await createPortStorage({ permanentDir: join(dir, 'perm'), bufferDir: join(dir, 'buf'), bufferQuotaBytes: 1000, nearline: { recallLatencyMs: 20 } });
    const tape = s.permanent as NearlineBackend;
    assert.equal((await s.stat('/a')).locality, 'TAPE');
    assert.equal(await codeAsync(s.openRead('/a')), 'CARGO_ERR_NEARLINE');
    await Promise.all([s.stage('/a'), s.stage('/a')]);
    await s.stage('/b');
    assert.equal(s.buffer.usedBytes, 800);
    assert.equal(await codeAsync(s.stage('/c')), 'CARGO_ERR_NO_SPACE');
    s.release('/a');
    await s.stage('/c');
    assert.equal((await s.stat('/a')).locality, 'TAPE', 'a was evicted');
    assert.equal((await s.stat('/b')).locality, 'DISK_AND_TAPE');
    const h = await s.openRead('/c');
    assert.equal(h.stat.size, 400);
    await h.close();
    assert.equal(tape.isOnDisk('/c'), false, 'the buffer holds the disk copy, not the tape cache');
    // uploads reserve quota too
    assert.equal(await codeAsync(s.beginUpload('/big', { overwrite: false, expectedSize: 5000 })), 'CARGO_ERR_NO_SPACE');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeStreamAt: a body that ended badly before we read it fails at once instead of waiting forever', async () => {
  const { writeStreamAt } = await import('../../services/storage/write-stream-at.js');
  const { PassThrough } = await import('node:stream');
  const { open } = await import('node:fs/promises');
  const dir = mkdtempSync(join(tmpdir(), 'cargoport-wsa-'));
  const fh = await open(join(dir, 'f'), 'w');
  try {
    // An HTTP request body whose client went away while the handler awaited a stat: its events are already gone.
    const gone = new PassThrough();
    gone.on('error', () => undefined);
    gone.destroy(new Error('client went away'));
    await new Promise((r) => setImmediate(r));
    await assert.rejects(writeStreamAt(fh, gone, 0), (e: Error & { code?: string }) => e.code === 'CARGO_ERR_SHORT_BODY');
    // A body that was already read to its end by someone else cannot be written either.
    const consumed = new PassThrough();
    consumed.end(Buffer.from('x'));
    consumed.resume();
    await new Promise((r) => consumed.once('end', r));
    await assert.rejects(writeStreamAt(fh, consumed, 0), (e: Error & { code?: string }) => e.code === 'CARGO_ERR_SHORT_BODY');
    // A healthy body still works.
    const ok = new PassThrough();
    ok.end(Buffer.from('hello'));
    assert.equal(await writeStreamAt(fh, ok, 0), 5);
  } finally {
    await fh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('JsonStateFile: writes the latest state atomically; a closed one writes nothing more', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cargoport-state-'));
  const path = join(dir, 'state.json');
  let value = { n: 1 };
  const file = new JsonStateFile(path, () => value, 10);
  await file.save();
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { n: 1 });
  value = { n: 2 };
  file.saveSoon();
  await file.close();
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { n: 2 }, 'close writes what is pending');
  // Work finishing in the closed instance (e.g. a recall that outlived its endpoint) must not overwrite the file
  // a new instance now owns.
  value = { n: 3 };
  await file.save();
  file.saveSoon();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { n: 2 });
  assert.deepEqual(readdirSync(dir), ['state.json'], 'no temp file left');
  rmSync(dir, { recursive: true, force: true });
});
