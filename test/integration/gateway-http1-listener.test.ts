/**
 * gateway.http1Port: an extra TLS listener that offers only HTTP/1.1 and serves the same routes (API and storage),
 * for peers whose HTTP/2 uploads are broken (XRootD 5.5 TPC push) and HTTP/1.1-only clients.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { after, before, test } from 'node:test';
import { startHarness, type Harness } from '../support/port-harness.js';
import { testTls } from '../support/tls.js';

let h: Harness;
before(async () => {
  h = await startHarness({ gateway: { http1Port: 0 } });
});
after(async () => {
  await h.close();
});

function get(port: number, path: string, method = 'GET', body?: Buffer): Promise<{ status: number; body: string; rawHeaderNames: string[] }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca: testTls().cert, servername: 'localhost', headers: body ? { 'Content-Length': String(body.length) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, rawHeaderNames: res.rawHeaders.filter((_, i) => i % 2 === 0) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the HTTP/1.1 listener negotiates only http/1.1 and serves the API and the storage endpoint', async () => {
  const port = h.gateway.http1Port!;
  assert.ok(port > 0 && port !== h.gateway.port);
  const alpn = await new Promise<string | false>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: testTls().cert, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      resolve(s.alpnProtocol ?? false);
      s.end();
    });
    s.on('error', reject);
  });
  assert.equal(alpn, 'http/1.1');
  assert.equal((await get(port, '/healthz')).status, 200);
  const put = await get(port, '/data/h1/x.bin', 'PUT', Buffer.from('over http/1.1'));
  assert.equal(put.status, 201, put.body);
  const back = await get(port, '/data/h1/x.bin');
  assert.equal(back.body, 'over http/1.1');
  const problem = await get(port, '/api/v1/jobs/00000000-0000-0000-0000-000000000000');
  assert.equal(problem.status, 404);
  assert.match(problem.body, /CARGO_ERR_JOB_NOT_FOUND/);
});
