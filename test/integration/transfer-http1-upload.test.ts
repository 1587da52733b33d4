/**
 * Pushes to an HTTP/1.1-only destination go through Node's http client so the request carries
 * `Content-Length` capitalised, as curl and davix send it. The server here behaves like XRootD 5.5's XrdHttp:
 * it reads a body only when the raw header name is exactly `Content-Length`, else stores an empty file and
 * still answers 201.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { canonicalHeaderName } from '../../services/transfer/http/http1-upload.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

describe('transfer engine: HTTP/1.1 uploads', () => {
  let server: Server;
  let origin = '';
  const stored = new Map<string, Buffer>();
  const rawNames: string[][] = [];
  const putPorts = new Set<number>();

  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
    server = createServer({ key: testTls().key, cert: testTls().cert, ALPNProtocols: ['http/1.1'] }, (req, res) => {
      const names = req.rawHeaders.filter((_, i) => i % 2 === 0);
      if (req.method === 'PUT') {
        rawNames.push(names);
        putPorts.add(req.socket.remotePort!);
      }
      if (req.method === 'HEAD') {
        const b = stored.get(req.url!);
        res.writeHead(b ? 200 : 404, { 'Content-Length': String(b?.length ?? 0) }).end();
        return;
      }
      if (req.method !== 'PUT') return void res.writeHead(405).end();
      const exact = names.includes('Content-Length');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => { if (exact) chunks.push(c); });
      req.on('end', () => {
        stored.set(req.url!, Buffer.concat(chunks));
        res.writeHead(201, { 'Content-Length': '0' }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await engine.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('a push to a case-sensitive HTTP/1.1 server stores every byte and reports http/1.1', async () => {
    const dir = tempDir('http1-upload');
    const files = makeRandomFiles(dir, 3, 300_000, 600_000);
    for (const f of files) {
      const r = await engine.transfer(
        { source: `file://${dir}/${f.name}`, destination: `${origin}/up/${f.name}`, verify: 'none', overwrite: true },
        { signal: new AbortController().signal, gate: new PauseGate() },
      );
      assert.equal(r.protocol, 'http/1.1');
      assert.equal(r.remoteIp, '127.0.0.1');
      assert.ok(stored.get(`/up/${f.name}`)!.equals(readFileSync(`${dir}/${f.name}`)), `${f.name} stored whole`);
    }
    assert.ok(rawNames.length >= 3);
    for (const names of rawNames) assert.ok(names.includes('Content-Length'), `raw header names: ${names.join(', ')}`);
    // (undici closes an HTTP/1.1 connection after every HEAD, so only the PUTs' connections can be counted. The
    // agent frees a socket just after the response ends, so a busy machine may open a second one; three would
    // mean no reuse at all.)
    assert.ok(putPorts.size < 3, `the uploads reuse keep-alive connections (${putPorts.size} used for 3 PUTs)`);
  });

  test('overwrite=false: the existing file is refused before any byte is sent', async () => {
    const dir = tempDir('http1-upload-exists');
    const [f] = makeRandomFiles(dir, 1, 1000, 1000);
    stored.set(`/exists/${f!.name}`, Buffer.from('old'));
    const puts = rawNames.length;
    await assert.rejects(
      engine.transfer(
        { source: `file://${dir}/${f!.name}`, destination: `${origin}/exists/${f!.name}`, verify: 'none', overwrite: false },
        { signal: new AbortController().signal, gate: new PauseGate() },
      ),
      (e: Error & { code?: string }) => e.code === 'CARGO_ERR_DEST_EXISTS',
    );
    assert.equal(rawNames.length, puts);
  });

  test('canonical header names', () => {
    assert.equal(canonicalHeaderName('content-length'), 'Content-Length');
    assert.equal(canonicalHeaderName('want-digest'), 'Want-Digest');
    assert.equal(canonicalHeaderName('if-none-match'), 'If-None-Match');
    assert.equal(canonicalHeaderName('authorization'), 'Authorization');
    assert.equal(canonicalHeaderName('scitag'), 'SciTag');
    assert.equal(canonicalHeaderName('transferheaderscitag'), 'TransferHeaderSciTag');
    assert.equal(canonicalHeaderName('transferheaderauthorization'), 'TransferHeaderAuthorization');
    assert.equal(canonicalHeaderName('x-number-of-streams'), 'X-Number-Of-Streams');
  });
});
