/**
 * Reception stages run on an imported file in the buffer before it is published: for a plain PUT and for an
 * HTTP-TPC pull. A refusal publishes nothing and names the stage; a stage may rewrite the file in place.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientHttp2Session } from 'node:http2';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { testTls } from '../support/tls.js';
import type { ReceivedFile, ReceptionStage } from '../../services/storage/reception-stage.js';
import { createTransferEngine } from '../../services/transfer/engine.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

let srv: TestStorageServer;
let peer: TestStorageServer;
let s: ClientHttp2Session;
let sp: ClientHttp2Session;
const seen: Array<ReceivedFile & { publishedAlready: boolean; inBuffer: boolean }> = [];

const stages: ReceptionStage[] = [
  {
    name: 'inspect',
    async run(r) {
      seen.push({ ...r, publishedAlready: existsSync(join(srv.permanentDir, r.path)), inBuffer: r.file.startsWith(srv.storage.buffer.dir) });
      if (readFileSync(r.file).subarray(0, 6).toString() === 'REFUSE') throw new Error('content not accepted');
    },
  },
  {
    // Rewrites in place, as a decompressing stage would.
    name: 'upper-case .txt',
    async run(r) {
      if (r.path.endsWith('.txt')) writeFileSync(r.file, readFileSync(r.file, 'utf8').toUpperCase());
    },
  },
];

before(async () => {
  await engine.reconfigure({ ca: testTls().cert });
  srv = await startStorageServer({ receptionStages: stages, tpc: { engine, allowLocal: true, markerIntervalMs: 50 } });
  peer = await startStorageServer();
  s = h2Connect(srv.origin);
  sp = h2Connect(peer.origin);
});
after(async () => {
  s.close();
  sp.close();
  await engine.close();
  await srv.close();
  await peer.close();
});

test('PUT: stages see the complete file in the buffer before it is published; a stage may rewrite it', async () => {
  const r = await h2Request(s, 'PUT', '/data/in/a.txt', {}, 'hello reception');
  assert.equal(r.status, 201);
  const call = seen.find((c) => c.path === '/in/a.txt')!;
  assert.ok(call.inBuffer, `stage ran on the buffer copy (${call.file})`);
  assert.equal(call.publishedAlready, false, 'nothing was published before the stages ran');
  assert.equal((await h2Request(s, 'GET', '/data/in/a.txt')).body.toString(), 'HELLO RECEPTION');
  assert.equal((await h2Request(s, 'HEAD', '/data/in/a.txt')).headers['content-length'], String('HELLO RECEPTION'.length));
});

test('PUT: a refusing stage → 422 naming it, nothing published, buffer clean', async () => {
  const r = await h2Request(s, 'PUT', '/data/in/bad.bin', {}, 'REFUSE this file');
  assert.equal(r.status, 422, r.body.toString());
  const problem = JSON.parse(r.body.toString());
  assert.equal(problem.code, 'CARGO_ERR_RECEPTION_REFUSED');
  assert.equal(problem.title, 'Unprocessable Entity');
  assert.equal(problem.detail, 'reception stage "inspect" refused /in/bad.bin: content not accepted');
  assert.equal(problem.type, 'urn:cargoport:error:CARGO_ERR_RECEPTION_REFUSED');
  assert.equal((await h2Request(s, 'HEAD', '/data/in/bad.bin')).status, 404);
  assert.deepEqual(readdirSync(srv.storage.buffer.incomingDir), []);
});

test('HTTP-TPC pull: the pulled file passes the stages too; a refusal is the COPY failure', async () => {
  assert.equal((await h2Request(sp, 'PUT', '/data/ok.txt', {}, 'pulled text')).status, 201);
  assert.equal((await h2Request(sp, 'PUT', '/data/bad.bin', {}, 'REFUSE pulled')).status, 201);
  const ok = await h2Request(s, 'COPY', '/data/tpc/ok.txt', { source: `${peer.base}/ok.txt`, credential: 'none' });
  assert.match(ok.body.toString(), /success: Created/);
  assert.equal((await h2Request(s, 'GET', '/data/tpc/ok.txt')).body.toString(), 'PULLED TEXT');
  const bad = await h2Request(s, 'COPY', '/data/tpc/bad.bin', { source: `${peer.base}/bad.bin`, credential: 'none' });
  assert.match(bad.body.toString(), /failure: .*"inspect" refused/);
  assert.equal((await h2Request(s, 'HEAD', '/data/tpc/bad.bin')).status, 404);
  assert.deepEqual(readdirSync(srv.storage.buffer.incomingDir), []);
});
