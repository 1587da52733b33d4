/**
 * The storage endpoint over real HTTP/2 + TLS: WebDAV verbs, ranges, validators, digests, atomic publish,
 * multi-stream ranged PUT, listings, public prefixes and the authorisation hook.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { adler32 } from '../../services/checksum/adler32.js';

let srv: TestStorageServer;
let s: ClientHttp2Session;

before(async () => {
  srv = await startStorageServer({
    publicPrefixes: ['/public'],
    // A stand-in policy: anonymous requests may do nothing, "Bearer ok" may do everything.
    authorize: (req) => req.headers['authorization'] === 'Bearer ok',
  });
  s = h2Connect(srv.origin);
});
after(async () => {
  s.close();
  await srv.close();
});

const auth = { authorization: 'Bearer ok' };
const adlerHex = (b: Buffer) => adler32(b).toString(16).padStart(8, '0');

test('PUT then GET round-trips bytes; HEAD gives length, ETag, Last-Modified', async () => {
  const body = Buffer.from('hello cargoport\n');
  const put = await h2Request(s, 'PUT', '/data/round/trip.txt', auth, body);
  assert.equal(put.status, 201);
  const get = await h2Request(s, 'GET', '/data/round/trip.txt', auth);
  assert.equal(get.status, 200);
  assert.deepEqual(get.body, body);
  const head = await h2Request(s, 'HEAD', '/data/round/trip.txt', auth);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(body.length));
  assert.match(String(head.headers['etag']), /^"[0-9a-f-]+"$/);
  assert.ok(head.headers['last-modified']);
  const again = await h2Request(s, 'PUT', '/data/round/trip.txt', auth, 'x');
  assert.equal(again.status, 204, 'overwrite answers 204');
  const noOverwrite = await h2Request(s, 'PUT', '/data/round/trip.txt', { ...auth, overwrite: 'F' }, 'y');
  assert.equal(noOverwrite.status, 412);
});

test('Want-Digest → Digest adler32 8 hex digits, md5 base64; Want-Repr-Digest → Repr-Digest', async () => {
  const body = Buffer.from('Wikipedia');
  await h2Request(s, 'PUT', '/data/sum/wiki', auth, body);
  const a = await h2Request(s, 'HEAD', '/data/sum/wiki', { ...auth, 'want-digest': 'ADLER32' });
  assert.equal(a.headers['digest'], 'adler32=11e60398');
  const m = await h2Request(s, 'HEAD', '/data/sum/wiki', { ...auth, 'want-digest': 'md5' });
  assert.equal(m.headers['digest'], 'md5=' + createHash('md5').update(body).digest('base64'));
  const r = await h2Request(s, 'GET', '/data/sum/wiki', { ...auth, 'want-repr-digest': 'adler=5, sha-256=3' });
  assert.equal(r.headers['repr-digest'], 'adler=:EeYDmA==:');
});

test('PUT verifies a supplied Digest / Repr-Digest: mismatch → 412 and nothing published', async () => {
  const body = Buffer.from('checked bytes');
  const bad = await h2Request(s, 'PUT', '/data/sum/bad', { ...auth, digest: 'adler32=00000001' }, body);
  assert.equal(bad.status, 412);
  assert.equal((await h2Request(s, 'HEAD', '/data/sum/bad', auth)).status, 404);
  const badRepr = await h2Request(s, 'PUT', '/data/sum/bad', { ...auth, 'repr-digest': 'sha-256=:' + Buffer.alloc(32).toString('base64') + ':' }, body);
  assert.equal(badRepr.status, 412);
  const good = await h2Request(s, 'PUT', '/data/sum/good', { ...auth, digest: `adler32=${adlerHex(body)}` }, body);
  assert.equal(good.status, 201);
  assert.equal(readdirSync(srv.storage.buffer.incomingDir).length, 0, 'no temp files left in the buffer');
});

test('Range: single, multi (multipart/byteranges), suffix, If-Range, bad ranges → 416', async () => {
  const body = Buffer.from('0123456789abcdefghij');
  await h2Request(s, 'PUT', '/data/range/f', auth, body);
  const one = await h2Request(s, 'GET', '/data/range/f', { ...auth, range: 'bytes=2-5' });
  assert.equal(one.status, 206);
  assert.equal(one.body.toString(), '2345');
  assert.equal(one.headers['content-range'], 'bytes 2-5/20');
  const suffix = await h2Request(s, 'GET', '/data/range/f', { ...auth, range: 'bytes=-3' });
  assert.equal(suffix.body.toString(), 'hij');
  const multi = await h2Request(s, 'GET', '/data/range/f', { ...auth, range: 'bytes=0-1,10-11' });
  assert.equal(multi.status, 206);
  const ct = String(multi.headers['content-type']);
  assert.match(ct, /^multipart\/byteranges; boundary=/);
  const text = multi.body.toString();
  assert.match(text, /content-range: bytes 0-1\/20\r\n\r\n01\r\n/);
  assert.match(text, /content-range: bytes 10-11\/20\r\n\r\nab\r\n/);
  assert.equal(multi.headers['content-length'], String(multi.body.length));
  for (const bad of ['bytes=30-40', 'bytes=5-2', 'bytes=abc', 'bytes=-', 'bytes=' + Array(100).fill('0-0').join(',')]) {
    const r = await h2Request(s, 'GET', '/data/range/f', { ...auth, range: bad });
    assert.equal(r.status, 416, bad);
    assert.equal(r.headers['content-range'], 'bytes */20');
  }
  const etag = String(one.headers['etag']);
  const ifRangeOk = await h2Request(s, 'GET', '/data/range/f', { ...auth, range: 'bytes=0-0', 'if-range': etag });
  assert.equal(ifRangeOk.status, 206);
  const ifRangeStale = await h2Request(s, 'GET', '/data/range/f', { ...auth, range: 'bytes=0-0', 'if-range': '"stale"' });
  assert.equal(ifRangeStale.status, 200);
  assert.equal(ifRangeStale.body.length, 20);
  const notModified = await h2Request(s, 'GET', '/data/range/f', { ...auth, 'if-none-match': etag });
  assert.equal(notModified.status, 304);
});

test('collections: MKCOL, HEAD 200, listing as JSON and HTML, PROPFIND Depth 0/1, MOVE, DELETE', async () => {
  assert.equal((await h2Request(s, 'MKCOL', '/data/col', auth)).status, 201);
  assert.equal((await h2Request(s, 'MKCOL', '/data/col', auth)).status, 405);
  assert.equal((await h2Request(s, 'MKCOL', '/data/missing/parent/col', auth)).status, 409);
  assert.equal((await h2Request(s, 'HEAD', '/data/col', auth)).status, 200);
  await h2Request(s, 'PUT', '/data/col/a%20b.txt', auth, 'abc');
  const json = await h2Request(s, 'GET', '/data/col/', { ...auth, accept: 'application/json' });
  const listing = JSON.parse(json.body.toString());
  assert.deepEqual(listing.entries.map((e: { name: string }) => e.name), ['a b.txt']);
  const html = await h2Request(s, 'GET', '/data/col/', { ...auth, accept: 'text/html' });
  assert.match(html.body.toString(), /<a href="\/data\/col\/a%20b.txt">a b.txt<\/a>/);
  const pf0 = await h2Request(s, 'PROPFIND', '/data/col/a%20b.txt', { ...auth, depth: '0' });
  assert.equal(pf0.status, 207);
  const x0 = pf0.body.toString();
  assert.match(x0, /<D:multistatus xmlns:D="DAV:">/);
  assert.match(x0, /<D:getcontentlength>3<\/D:getcontentlength>/);
  assert.match(x0, /<D:resourcetype\/>/);
  assert.match(x0, /<D:status>HTTP\/1.1 200 OK<\/D:status>/);
  const pf1 = await h2Request(s, 'PROPFIND', '/data/col', { ...auth, depth: '1' });
  const x1 = pf1.body.toString();
  assert.equal((x1.match(/<D:response>/g) ?? []).length, 2);
  assert.match(x1, /<D:href>\/data\/col\/<\/D:href>.*<D:collection\/>/);
  assert.equal((await h2Request(s, 'PROPFIND', '/data/col', { ...auth, depth: 'infinity' })).status, 403);
  const mv = await h2Request(s, 'MOVE', '/data/col/a%20b.txt', { ...auth, destination: `${srv.origin}/data/col/c.txt` });
  assert.equal(mv.status, 201);
  assert.equal((await h2Request(s, 'GET', '/data/col/c.txt', auth)).body.toString(), 'abc');
  assert.equal((await h2Request(s, 'DELETE', '/data/col', auth)).status, 204);
  assert.equal((await h2Request(s, 'HEAD', '/data/col', auth)).status, 404);
  const opt = await h2Request(s, 'OPTIONS', '/data/', auth);
  assert.equal(opt.headers['dav'], '1');
});

test('multi-stream ranged PUT: parallel parts assemble one file published when complete', async () => {
  const total = 3 * 1024 * 1024 + 17;
  const body = Buffer.alloc(total);
  for (let i = 0; i < total; i++) body[i] = (i * 31 + 7) & 0xff;
  const parts = 4;
  const step = Math.ceil(total / parts);
  const id = { 'cargo-upload-id': 'u1' };
  const results = await Promise.all(
    Array.from({ length: parts }, (_, i) => {
      const start = i * step;
      const end = Math.min(total, start + step) - 1;
      return h2Request(
        s,
        'PUT',
        '/data/multi/big.bin',
        { ...auth, ...id, 'content-range': `bytes ${start}-${end}/${total}`, 'repr-digest': `adler=:${Buffer.from(adlerHex(body), 'hex').toString('base64')}:` },
        body.subarray(start, end + 1),
      );
    }),
  );
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [201, 202, 202, 202]);
  const get = await h2Request(s, 'GET', '/data/multi/big.bin', auth);
  assert.ok(get.body.equals(body));
  // A part alone does not publish anything.
  const lone = await h2Request(s, 'PUT', '/data/multi/partial.bin', { ...auth, 'content-range': 'bytes 0-1/10' }, 'ab');
  assert.equal(lone.status, 202);
  assert.equal(lone.headers['cargo-upload-received'], '2');
  assert.equal((await h2Request(s, 'HEAD', '/data/multi/partial.bin', auth)).status, 404);
  const badCr = await h2Request(s, 'PUT', '/data/multi/x', { ...auth, 'content-range': 'bytes 5-2/10' }, 'ab');
  assert.equal(badCr.status, 400);
});

test('public prefix: anonymous read-only; elsewhere the authorize hook decides (403 before 404)', async () => {
  await h2Request(s, 'PUT', '/data/public/open.txt', auth, 'public');
  assert.equal((await h2Request(s, 'GET', '/data/public/open.txt')).body.toString(), 'public');
  assert.equal((await h2Request(s, 'PROPFIND', '/data/public', { depth: '1' })).status, 207);
  assert.equal((await h2Request(s, 'PUT', '/data/public/new.txt', {}, 'x')).status, 403);
  assert.equal((await h2Request(s, 'DELETE', '/data/public/open.txt')).status, 403);
  assert.equal((await h2Request(s, 'GET', '/data/private/missing')).status, 403);
  assert.equal((await h2Request(s, 'GET', '/data/private/missing', auth)).status, 404);
});

test('symlinks: inside the root are followed, escaping ones are refused for read and write', async () => {
  const outside = join(srv.dir, 'outside');
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret'), 'secret');
  mkdirSync(join(srv.permanentDir, 'links'), { recursive: true });
  symlinkSync(outside, join(srv.permanentDir, 'links', 'out'));
  symlinkSync(join(outside, 'secret'), join(srv.permanentDir, 'links', 'secret'));
  symlinkSync(join(outside, 'nothing-yet'), join(srv.permanentDir, 'links', 'dangling'));
  writeFileSync(join(srv.permanentDir, 'links', 'real'), 'inside');
  symlinkSync(join(srv.permanentDir, 'links', 'real'), join(srv.permanentDir, 'links', 'alias'));
  assert.equal((await h2Request(s, 'GET', '/data/links/alias', auth)).body.toString(), 'inside');
  for (const [m, p] of [
    ['GET', '/data/links/secret'],
    ['GET', '/data/links/out/secret'],
    ['PUT', '/data/links/out/planted'],
    ['PUT', '/data/links/dangling'],
    ['MKCOL', '/data/links/out/dir'],
    ['DELETE', '/data/links/out/secret'],
    ['PROPFIND', '/data/links/out'],
  ] as const) {
    const r = await h2Request(s, m, p, { ...auth, depth: '0' }, m === 'PUT' ? 'planted' : undefined);
    assert.equal(r.status, 403, `${m} ${p}`);
  }
  assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
  assert.equal(existsSync(join(outside, 'planted')), false);
  assert.equal(existsSync(join(outside, 'nothing-yet')), false);
  const listing = JSON.parse((await h2Request(s, 'GET', '/data/links/', { ...auth, accept: 'application/json' })).body.toString());
  assert.deepEqual(listing.entries.map((e: { name: string }) => e.name).sort(), ['alias', 'real']);
});

test('an error answer to HEAD has headers and no body (no stream error on the server)', async () => {
  const streamErrors: string[] = [];
  const onSession = (sess: import('node:http2').ServerHttp2Session) =>
    sess.on('stream', (st) => st.on('error', (e: Error) => streamErrors.push(e.message)));
  srv.app.server.on('session', onSession);
  const fresh = h2Connect(srv.origin);
  try {
    const r = await h2Request(fresh, 'HEAD', '/data/no/such/file.bin', auth);
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.body.length, 0);
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(streamErrors, []);
  } finally {
    fresh.close();
    srv.app.server.off('session', onSession);
  }
});

test('close() settles while a client holds an HTTP/2 upload half-finished (GOAWAY, then the session is destroyed)', { timeout: 20_000 }, async () => {
  const other = await startStorageServer();
  const sess = h2Connect(other.origin);
  const put = sess.request({ ':method': 'PUT', ':path': '/data/half.bin', 'content-length': '1000000' });
  put.on('error', () => undefined);
  put.write(Buffer.alloc(1000, 1));
  await new Promise((r) => setTimeout(r, 200));
  // Without the shutdown helper this waits for Fastify's http2SessionTimeout (72 s) or forever.
  await other.close();
  sess.destroy();
});
