/**
 * The storage endpoint's packed upload (gateway/storage/packed-put.ts): a tar PUT to a collection with
 * `X-Cargoport-Unpack: 1` publishes every member (names, sizes, modes, mtimes, bytes) and answers one result per
 * member; a member with a wrong checksum or on a path the caller may not create fails alone; hostile archives
 * (`..`, absolute paths, links, devices, a 10 GB declared size, truncations, garbage) are refused with 422 and
 * nothing of them is written.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { adler32 } from '../../services/checksum/adler32.js';

type Entry = { header: Partial<tar.Header> & { name: string }; body?: Buffer };

/** A tar archive of `entries` (checksum records added to files unless `pax` is given). */
async function archive(entries: Entry[], opts: { noEnd?: boolean; cut?: number } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (e.body) pack.entry(e.header, e.body, cb);
      else pack.entry(e.header, cb);
    });
  }
  pack.finalize();
  await done;
  let buf = Buffer.concat(chunks);
  if (opts.noEnd) buf = buf.subarray(0, buf.length - 1024);
  if (opts.cut !== undefined) buf = buf.subarray(0, opts.cut);
  return buf;
}

const sum = (b: Buffer) => adler32(b).toString(16).padStart(8, '0');
const file = (name: string, body: Buffer, extra: Partial<tar.Header> = {}): Entry => ({
  header: { name, type: 'file', size: body.length, mode: 0o640, mtime: new Date(1_700_000_000_000), pax: { 'SCHILY.xattr.user.cargoport.adler32': sum(body), mtime: '1700000000.25' }, ...extra },
  body,
});

describe('storage endpoint: packed upload', () => {
  let s: TestStorageServer;
  before(async () => {
    s = await startStorageServer({ authorize: (_req, _action, path) => !path.startsWith('/pk/secret') });
  });
  after(async () => s.close());

  const put = async (path: string, body: Buffer, headers: Record<string, string> = {}) => {
    const session = h2Connect(s.origin);
    try {
      const r = await h2Request(session, 'PUT', `/data${path}`, { 'content-type': 'application/x-tar', 'x-cargoport-unpack': '1', ...headers }, body);
      return { status: r.status, json: JSON.parse(r.body.toString() || '{}') as { members?: Array<{ name: string; state: string; code?: string; size: number }>; code?: string } };
    } finally {
      session.close();
    }
  };

  test('members are published with names, sizes, modes and mtimes; a bad checksum and a forbidden path fail alone', async () => {
    const a = Buffer.alloc(70_000, 1);
    const b = Buffer.alloc(0);
    const c = Buffer.from('hello');
    const bad = file('bad.dat', Buffer.from('xyz'));
    bad.header.pax = { 'SCHILY.xattr.user.cargoport.adler32': '00000001' };
    const body = await archive([
      { header: { name: 'sub', type: 'directory', mode: 0o755 } },
      file('sub/a.dat', a), file('b.dat', b, { mode: 0o600 }), file('deep/er/c.dat', c), bad,
    ]);
    const r = await put('/pk/', body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const byName = new Map(r.json.members!.map((m) => [m.name, m]));
    for (const n of ['sub/a.dat', 'b.dat', 'deep/er/c.dat']) assert.equal(byName.get(n)?.state, 'published', n);
    assert.equal(byName.get('bad.dat')?.state, 'failed');
    assert.equal(byName.get('bad.dat')?.code, 'CARGO_ERR_CHECKSUM_MISMATCH');
    const root = join(s.permanentDir, 'pk');
    assert.deepEqual(readFileSync(join(root, 'sub/a.dat')), a);
    assert.deepEqual(readFileSync(join(root, 'deep/er/c.dat')), c);
    assert.equal(statSync(join(root, 'b.dat')).size, 0);
    assert.equal(statSync(join(root, 'b.dat')).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'sub/a.dat')).mode & 0o777, 0o640);
    assert.equal(statSync(join(root, 'sub/a.dat')).mtimeMs, 1_700_000_000_250);
    assert.equal(existsSync(join(root, 'bad.dat')), false);

    const mixed = await archive([file('ok.dat', c), file('secret/x.dat', c)]);
    const r2 = await put('/pk/', mixed);
    assert.equal(r2.status, 200);
    const m2 = new Map(r2.json.members!.map((m) => [m.name, m]));
    assert.equal(m2.get('ok.dat')?.state, 'published');
    assert.equal(m2.get('secret/x.dat')?.code, 'CARGO_ERR_FORBIDDEN');
    assert.equal(existsSync(join(root, 'secret')), false);

    // An existing file without overwrite fails alone; with Overwrite: T it is replaced.
    const again = await archive([file('ok.dat', a), file('new.dat', c)]);
    const r3 = await put('/pk/', again, { overwrite: 'F' });
    const m3 = new Map(r3.json.members!.map((m) => [m.name, m]));
    assert.equal(m3.get('ok.dat')?.code, 'CARGO_ERR_EXISTS');
    assert.equal(m3.get('new.dat')?.state, 'published');
    assert.deepEqual(readFileSync(join(root, 'ok.dat')), c);
  });

  test('a collection the caller may not create, a missing unpack flag value or another media type are refused', async () => {
    const body = await archive([file('x.dat', Buffer.from('x'))]);
    assert.equal((await put('/pk/secret/', body)).status, 403);
    assert.equal((await put('/pk/', body, { 'x-cargoport-unpack': '2' })).status, 400);
    assert.equal((await put('/pk/', body, { 'content-type': 'application/octet-stream' })).status, 415);
    assert.equal((await put('/pk/file.tar', body)).status, 400);
  });

  test('hostile archives are refused (422) and nothing of them is written', async () => {
    const c = Buffer.from('payload');
    const cases: Array<[string, Buffer]> = [
      ['dot-dot', await archive([file('../escape.dat', c)])],
      ['dot-dot inside', await archive([file('a/../../escape.dat', c)])],
      ['absolute', await archive([file('/etc/escape.dat', c)])],
      ['symlink', await archive([{ header: { name: 'ln', type: 'symlink', linkname: '../../etc' } }, file('ln/escape.dat', c)])],
      ['hard link', await archive([{ header: { name: 'hl', type: 'link', linkname: '/etc/passwd' } }])],
      ['device', await archive([{ header: { name: 'dev', type: 'character-device', devmajor: 1, devminor: 3 } }])],
      ['fifo', await archive([{ header: { name: 'fifo', type: 'fifo' } }])],
      ['reserved name', await archive([file('.cargoport-x', c)])],
      ['truncated member', await archive([file('cut.dat', Buffer.alloc(4096, 7))], { cut: 512 + 1024 + 1000 })],
      ['garbage', Buffer.alloc(4096, 0x41)],
    ];
    // A 10 GB declared size: a header alone (the bytes are never sent).
    const big = await (async () => {
      const pack = tar.pack();
      const chunks: Buffer[] = [];
      pack.on("data", (x: unknown) => chunks.push(x as Buffer));
      const sink = pack.entry({ name: 'huge.dat', type: 'file', size: 10 * 1024 ** 3 });
      sink.write(Buffer.alloc(1024));
      await new Promise((r) => setTimeout(r, 50));
      return Buffer.concat(chunks);
    })();
    cases.push(['10 GB declared', big]);
    const s2 = await startStorageServer({ packed: { maxMemberBytes: 1024 ** 3 } });
    try {
      for (const [what, body] of cases) {
        if (process.env.PK_DEBUG) console.error("case", what);
        const session = h2Connect(s2.origin);
        const r = await h2Request(session, 'PUT', '/data/h/', { 'content-type': 'application/x-tar', 'x-cargoport-unpack': '1' }, body);
        session.close();
        assert.equal(r.status, 422, `${what}: ${r.body.toString()}`);
        const j = JSON.parse(r.body.toString()) as { code: string; members: unknown[] };
        assert.equal(j.code, 'CARGO_ERR_UNSAFE_ARCHIVE', what);
        assert.deepEqual(j.members, [], what);
      }
      // An archive cut between members (no end marker) is refused at its end: the complete, verified members before
      // the cut stay published and are listed, so the sender marks them and resends the rest.
      const session = h2Connect(s2.origin);
      const cut = await h2Request(session, 'PUT', '/data/ne/', { 'content-type': 'application/x-tar', 'x-cargoport-unpack': '1' }, await archive([file('noend.dat', c)], { noEnd: true }));
      session.close();
      assert.equal(cut.status, 422);
      const cj = JSON.parse(cut.body.toString()) as { code: string; members: Array<{ name: string; state: string }> };
      assert.equal(cj.code, 'CARGO_ERR_UNSAFE_ARCHIVE');
      assert.deepEqual(cj.members.map((m) => [m.name, m.state]), [['noend.dat', 'published']]);
      const left = existsSync(join(s2.permanentDir, 'h')) ? readdirSync(join(s2.permanentDir, 'h')) : [];
      assert.deepEqual(left, []);
      assert.equal(existsSync(join(s2.dir, 'escape.dat')), false);
      assert.deepEqual(readdirSync(join(s2.dir, 'buffer')).filter((n) => !n.startsWith('.') && !n.endsWith('.json')).flatMap((n) => statSync(join(s2.dir, 'buffer', n)).isDirectory() ? readdirSync(join(s2.dir, 'buffer', n)) : [n]), []);
    } finally {
      await s2.close();
    }
  });
});
