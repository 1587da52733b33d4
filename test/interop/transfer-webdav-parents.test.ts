/**
 * Pushes into WebDAV servers whose parent collections do not exist yet. lighttpd's mod_webdav (a plain WebDAV
 * server) answers such a PUT with 409 Conflict, as RFC 4918 §9.7.1 says; the port then creates the missing
 * collections with MKCOL, top-down from the deepest one that exists, and uploads once more (gfal2 and FTS do the
 * same), remembers that the origin needs this, and makes the parents of later files first. Before an HTTP-TPC push,
 * whose PUT the port never sees, the parents are made first. The port's own storage endpoint creates parents itself.
 * Before parent-collections.ts every file pushed into a new directory of lighttpd FAILED with HTTP 409.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { TransferError } from '../../services/transfer/transfer-errors.js';
import type { TransferRequest } from '../../services/transfer/types.js';
import { makeRandomFiles, sameContent, tempDir } from '../support/fixtures.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { hasLighttpdWebdav, startLighttpdWebdav, type LighttpdWebdav, type LoggedRequest } from '../support/lighttpd-webdav.js';
import { startHarness } from '../support/port-harness.js';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });
const req = (source: string, destination: string, extra: Partial<TransferRequest> = {}): TransferRequest =>
  ({ source, destination, verify: 'none', overwrite: false, ...extra });
const brief = (rs: LoggedRequest[]): string[] => rs.map((r) => `${r.method} ${r.path} ${r.status}`);

describe('pushes into a plain WebDAV server (lighttpd mod_webdav) with missing parent collections', {
  skip: hasLighttpdWebdav() ? false : 'lighttpd with mod_webdav and mod_openssl is not installed',
}, () => {
  let dav: LighttpdWebdav;
  let davs: LighttpdWebdav;
  let src: H2FileServer;
  let storage: TestStorageServer;
  const local = tempDir('dav-parents-src');
  const body = randomBytes(1024 * 1024 + 3);
  const file = join(local, 'file.bin');

  before(async () => {
    writeFileSync(file, body);
    dav = await startLighttpdWebdav();
    davs = await startLighttpdWebdav({ tls: true });
    src = await startH2FileServer({ root: tempDir('dav-parents-remote') });
    writeFileSync(join(src.root, 'remote.bin'), body);
    storage = await startStorageServer({ tpc: { engine, allowLocal: true, markerIntervalMs: 50 } });
    writeFileSync(join(storage.permanentDir, 'tpc-src.bin'), body);
    await engine.reconfigure({ ca: testTls().cert });
  });
  after(async () => {
    await engine.close();
    await dav.close();
    await davs.close();
    await src.close();
    await storage.close();
  });

  test('three missing levels: 409, MKCOL up to the deepest existing collection and down again, then the PUT once more', async () => {
    const r = await engine.transfer(req(pathToFileURL(file).href, `${dav.origin}/a/b/c/file.bin`), ctl());
    assert.equal(r.bytes, body.length);
    assert.ok(readFileSync(join(dav.root, 'a/b/c/file.bin')).equals(body));
    assert.deepEqual(brief(await dav.requests()).filter((l) => !l.startsWith('HEAD')), [
      'PUT /a/b/c/file.bin 409',
      'MKCOL /a/b/c 409', 'MKCOL /a/b 409', 'MKCOL /a 201', 'MKCOL /a/b 201', 'MKCOL /a/b/c 201',
      'PUT /a/b/c/file.bin 201',
    ]);
  });

  test('the origin is remembered: a new directory is made before the PUT (no 409), a known one costs nothing', async () => {
    const before = (await dav.requests()).length;
    await engine.transfer(req(pathToFileURL(file).href, `${dav.origin}/a/d/one.bin`), ctl());
    await engine.transfer(req(pathToFileURL(file).href, `${dav.origin}/a/d/two.bin`), ctl());
    assert.deepEqual(brief((await dav.requests()).slice(before)).filter((l) => !l.startsWith('HEAD')), [
      'MKCOL /a/d 201', 'PUT /a/d/one.bin 201', 'PUT /a/d/two.bin 201',
    ]);
    for (const n of ['one.bin', 'two.bin']) assert.ok(readFileSync(join(dav.root, 'a/d', n)).equals(body));
  });

  test('over TLS (HTTP/1.1 upload), as a stream-through from a remote source read again for the second PUT', async () => {
    const r = await engine.transfer(req(`${src.origin}/remote.bin`, `${davs.origin}/s/t/remote.bin`), ctl());
    assert.equal(r.bytes, body.length);
    assert.ok(readFileSync(join(davs.root, 's/t/remote.bin')).equals(body));
    const puts = (await davs.requests()).filter((q) => q.method === 'PUT').map((q) => q.status);
    assert.deepEqual(puts, [409, 201]);
  });

  test('a parent that is a file: MKCOL says it exists (405), the second 409 is final and says so', async () => {
    // (overwrite: lighttpd answers a HEAD below a file with the file, path-info style, which reads as 'exists'.)
    writeFileSync(join(dav.root, 'plain-file'), 'not a collection');
    await assert.rejects(engine.transfer(req(pathToFileURL(file).href, `${dav.origin}/plain-file/x.bin`, { overwrite: true }), ctl()), (e: unknown) => {
      assert.ok(e instanceof TransferError);
      assert.equal(e.code, 'CARGO_ERR_DEST_CONFLICT');
      assert.equal(e.field, 'destination');
      assert.match(e.message, /409.*also after its parent collections were created/);
      return true;
    });
  });

  test('a TPC push (the storage endpoint writes into lighttpd): the parents are made before the copy, no 409', async () => {
    const before = (await dav.requests()).length;
    const r = await engine.transfer(req(`${storage.base}/tpc-src.bin`, `${dav.origin}/tpc/deep/copied.bin`, { copyMode: 'push' }), ctl());
    assert.equal(r.protocol, 'tpc-push');
    assert.ok(readFileSync(join(dav.root, 'tpc/deep/copied.bin')).equals(body));
    const seen = brief((await dav.requests()).slice(before)).filter((l) => !l.startsWith('HEAD'));
    assert.deepEqual(seen.slice(0, 4), ['MKCOL /tpc/deep 409', 'MKCOL /tpc 201', 'MKCOL /tpc/deep 201', 'PUT /tpc/deep/copied.bin 201']);
  });

  test('a job of 60 files into 3 new nested directories through the port: all FINISHED, each directory made once', async () => {
    const h = await startHarness();
    try {
      const root = tempDir('dav-parents-job');
      const dirs = ['job/x/1', 'job/x/2', 'job/y'];
      const files = dirs.flatMap((d, i) => {
        mkdirSync(join(root, d), { recursive: true });
        return makeRandomFiles(join(root, d), 20, 1, 300_000, `f${i}-`).map((f) => ({ ...f, rel: `${d}/${f.name}` }));
      });
      const before = (await dav.requests()).length;
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: files.map((f) => ({ source: pathToFileURL(join(root, f.rel)).href, destination: `${dav.origin}/${f.rel}`, checksum: `adler32:${f.adler32}` })),
        params: { retries: 0 },
      });
      assert.equal(r.status, 201);
      const job = await h.waitJob(r.body.jobId, 120_000);
      assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
      for (const f of files) assert.ok(sameContent(join(root, f.rel), join(dav.root, f.rel)), f.rel);
      const made = (await dav.requests()).slice(before).filter((q) => q.method === 'MKCOL' && q.status === 201).map((q) => q.path).sort();
      assert.deepEqual(made, ['/job', '/job/x', '/job/x/1', '/job/x/2', '/job/y']);
    } finally {
      await h.close();
    }
  });
});

describe('pushes into the port\'s own storage endpoint with missing parent collections', () => {
  let storage: TestStorageServer;
  before(async () => {
    storage = await startStorageServer();
    await engine.reconfigure({ ca: testTls().cert });
  });
  after(async () => {
    await engine.close();
    await storage.close();
  });

  test('it creates them itself: the push succeeds at once', async () => {
    const body = randomBytes(200_000);
    const file = join(tempDir('dav-parents-own'), 'own.bin');
    writeFileSync(file, body);
    const r = await engine.transfer(req(pathToFileURL(file).href, `${storage.base}/new/nested/dir/own.bin`), ctl());
    assert.equal(r.bytes, body.length);
    assert.ok(readFileSync(join(storage.permanentDir, 'new/nested/dir/own.bin')).equals(body));
  });
});
