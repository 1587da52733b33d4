/**
 * Tar packing and unpacking (services/processing): a packed tree unpacks to the same names, sizes, modes, mtimes,
 * nested and empty directories, empty files and long names, with every member's checksums carried and verified;
 * hostile archives are refused with CARGO_ERR_UNSAFE_ARCHIVE and nothing is written outside the target and no part
 * file stays; a member whose checksum does not match fails alone; GNU tar reads what we pack and we read what it
 * packs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import tar from 'tar-stream';
import { createTarPack, membersOfDirectory, membersOfGlob, membersOfList } from '../../services/processing/tar-pack.js';
import { TarUnpacker, type MemberReport, type TarUnpackOptions } from '../../services/processing/tar-unpack.js';
import { ZstdThreadPool } from '../../services/processing/zstd-thread-pool.js';
import { tempDir } from '../support/fixtures.js';
import { adler32 } from '../../services/checksum/adler32.js';

const LIMITS = { maxMemberBytes: 1024 ** 3, maxNameBytes: 4096, maxMembers: 100_000 };

/** Every path below `dir` with type, size, mode and mtime (µs), for comparing trees with assertSameTree. */
function treeOf(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r), { bigint: true });
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f';
      // mtimes compared to the microsecond (utimes takes a double of seconds)
      out.push(`${r} ${kind} ${kind === 'f' ? st.size : ''} ${(Number(st.mode) & 0o777).toString(8)} ${kind === 'l' ? '' : st.mtimeNs / 1000n}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

async function unpack(archive: Readable | Buffer, opts: Partial<TarUnpackOptions> & { target: string }): Promise<{ reports: MemberReport[]; manifest: string }> {
  const reports: MemberReport[] = [];
  let manifest = '';
  const src = Buffer.isBuffer(archive) ? Readable.from([archive]) : archive;
  await pipeline(src, new TarUnpacker({ ...LIMITS, ...opts, onMember: (r) => {
    reports.push(r);
    opts.onMember?.(r);
  } }), new Writable({
    write(c, _e, cb) {
      manifest += c;
      cb();
    },
  }));
  return { reports, manifest };
}

/** An archive built entry by entry with tar-stream (hostile ones included). */
async function archiveOf(entries: Array<{ header: Parameters<tar.Pack['entry']>[0]; body?: Buffer }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) await new Promise<void>((res, rej) => pack.entry(e.header, e.body ?? Buffer.alloc(0), (err) => (err ? rej(err) : res())));
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Same paths, kinds, sizes and modes; mtimes within 2 µs (utimes takes a double of seconds, ~0.2 µs steps at today's dates). */
function assertSameTree(actual: string[], expected: string[]): void {
  const strip = (l: string) => l.replace(/ \d*$/, '');
  assert.deepEqual(actual.map(strip), expected.map(strip));
  actual.forEach((l, i) => {
    const a = l.match(/ (\d*)$/)![1]!;
    const e = expected[i]!.match(/ (\d*)$/)![1]!;
    if (a !== '' || e !== '') assert.ok(Math.abs(Number(a) - Number(e)) <= 2, `${strip(l)}: mtime ${a} µs, expected ${e}`);
  });
}

function makeTree(root: string): void {
  mkdirSync(join(root, 'nested/deeper/deepest'), { recursive: true });
  mkdirSync(join(root, 'empty-dir'));
  writeFileSync(join(root, 'nested/deeper/deepest/data.bin'), randomBytes(200_000));
  writeFileSync(join(root, 'nested/small.txt'), 'small\n');
  writeFileSync(join(root, 'empty-file'), '');
  writeFileSync(join(root, 'big.bin'), randomBytes(3 * 1024 * 1024 + 17)); // streamed, not inline
  const long = `${'long-directory-name-'.repeat(6)}/${'very-long-file-name-'.repeat(10)}.dat`;
  mkdirSync(join(root, long, '..'), { recursive: true });
  writeFileSync(join(root, long), randomBytes(1000));
  chmodSync(join(root, 'nested/small.txt'), 0o640);
  chmodSync(join(root, 'nested/deeper'), 0o750);
  utimesSync(join(root, 'nested/small.txt'), 1_600_000_000.123456, 1_500_000_000.654321);
  utimesSync(join(root, 'empty-dir'), 1_400_000_000, 1_400_000_000);
}

function assertNothingOutside(parent: string, target: string): void {
  assert.deepEqual(readdirSync(parent).sort(), ['outside', 'target'], 'nothing written beside the target');
  assert.deepEqual(readdirSync(join(parent, 'outside')), ['keep.txt'], 'nothing written outside');
  assert.equal(readFileSync(join(parent, 'outside', 'keep.txt'), 'utf8'), 'untouched');
  const parts = treeOf(target).filter((l) => l.includes('cargoport-part'));
  assert.deepEqual(parts, [], 'no part file stays');
}

function hostileSetup(tag: string): { parent: string; target: string } {
  const parent = tempDir(tag);
  mkdirSync(join(parent, 'target'));
  mkdirSync(join(parent, 'outside'));
  writeFileSync(join(parent, 'outside', 'keep.txt'), 'untouched');
  return { parent, target: join(parent, 'target') };
}

const unsafe = (re: RegExp) => (e: Error & { code?: string }) => {
  assert.equal(e.code, 'CARGO_ERR_UNSAFE_ARCHIVE', e.message);
  assert.match(e.message, re);
  return true;
};

describe('tar pack and unpack', () => {
  test('round trip reproduces the tree; every member carries and passes its checksums', async () => {
    const src = tempDir('tar-src');
    makeTree(src);
    const dst = join(tempDir('tar-dst'), 'into');
    const packed: string[] = [];
    const { reports, manifest } = await unpack(
      createTarPack(await membersOfDirectory(src), { checksums: ['adler32', 'sha256'], onMember: (m) => packed.push(m.name) }),
      { target: dst, requireChecksums: true },
    );
    assertSameTree(treeOf(dst), treeOf(src));
    const files = reports.filter((r) => r.kind === 'file');
    assert.equal(files.length, 5);
    for (const r of files) {
      assert.equal(r.state, 'published');
      assert.match(r.checksums.adler32!, /^[0-9a-f]{8}$/);
      assert.match(r.checksums.sha256!, /^[0-9a-f]{64}$/);
    }
    assert.equal(manifest.trim().split('\n').length, files.length, 'one manifest line per published member');
    assert.equal(packed.length, treeOf(src).length);
  });

  test('through zstd on the thread pool (a .tar.zst), with publish at the end', async () => {
    const src = tempDir('tarzst-src');
    makeTree(src);
    const dst = tempDir('tarzst-dst');
    const pool = new ZstdThreadPool({ threads: 1 });
    try {
      await pipeline(
        createTarPack(await membersOfDirectory(src), { checksums: ['crc32c'] }),
        pool.createStream({ mode: 'compress', level: 3 }),
        pool.createStream({ mode: 'decompress', windowLogMax: 27 }),
        new TarUnpacker({ ...LIMITS, target: dst, publish: 'end' }),
        new Writable({ write: (_c, _e, cb) => cb() }),
      );
    } finally {
      await pool.close();
    }
    assertSameTree(treeOf(dst), treeOf(src));
  });

  test('globs and lists select members; a list path leaving the root is refused', async () => {
    const src = tempDir('tar-glob');
    makeTree(src);
    assert.deepEqual((await membersOfGlob(src, 'nested/**/*.bin')).map((m) => m.name), ['nested/deeper/deepest/data.bin']);
    assert.deepEqual(membersOfList(src, ['nested/small.txt']).map((m) => m.name), ['nested/small.txt']);
    assert.throws(() => membersOfList(src, ['../etc/passwd']), /outside the packed root/);
  });

  test('packing refuses a symlink in the input and a file that vanished, naming it', async () => {
    const src = tempDir('tar-pack-bad');
    writeFileSync(join(src, 'a'), 'a');
    symlinkSync('/etc/passwd', join(src, 'link'));
    await assert.rejects(pipeline(createTarPack(await membersOfDirectory(src), { checksums: ['adler32'] }), new Writable({ write: (_c, _e, cb) => cb() })),
      /packing link: is a symbolic link/);
    await assert.rejects(pipeline(createTarPack([{ source: join(src, 'gone'), name: 'gone' }], { checksums: ['adler32'] }), new Writable({ write: (_c, _e, cb) => cb() })),
      /packing gone: ENOENT/);
  });

  test('GNU tar lists what we pack (and skips our checksum records silently); we unpack what GNU tar packs', async () => {
    const src = tempDir('tar-gnu');
    makeTree(src);
    const bufs: Buffer[] = [];
    await pipeline(createTarPack(await membersOfDirectory(src), { checksums: ['adler32'] }), new Writable({ write: (c, _e, cb) => { bufs.push(c); cb(); } }));
    const listing = execFileSync('tar', ['-tf', '-'], { input: Buffer.concat(bufs), stdio: ['pipe', 'pipe', 'pipe'] }).toString();
    assert.ok(listing.includes('nested/deeper/deepest/data.bin'));
    const out = tempDir('tar-gnu-x');
    const r = execFileSync('tar', ['-xf', '-', '-C', out], { input: Buffer.concat(bufs), stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(r.toString(), '');
    assert.deepEqual(treeOf(out).filter((l) => !l.includes(' d ')).map((l) => l.split(' ').slice(0, 3).join(' ')),
      treeOf(src).filter((l) => !l.includes(' d ')).map((l) => l.split(' ').slice(0, 3).join(' ')));
    // POSIX format keeps sub-second mtimes, as ours does
    const gnu = execFileSync('tar', ['--format=posix', '-cf', '-', '-C', src, '.'], { maxBuffer: 64 * 1024 * 1024 });
    const dst = tempDir('tar-from-gnu');
    await unpack(gnu, { target: dst });
    assertSameTree(treeOf(dst), treeOf(src));
  });

  test('a member whose checksum does not match fails alone; the others are published', async () => {
    const { target } = hostileSetup('tar-badsum');
    const archive = await archiveOf([
      { header: { name: 'good.txt', size: 4, pax: { 'SCHILY.xattr.user.cargoport.adler32': adler32(Buffer.from('good')).toString(16).padStart(8, '0') } }, body: Buffer.from('good') },
      { header: { name: 'bad.txt', size: 3, pax: { 'SCHILY.xattr.user.cargoport.adler32': '00000001' } }, body: Buffer.from('bad') },
      { header: { name: 'after.txt', size: 5 }, body: Buffer.from('after') },
    ]);
    const reports: MemberReport[] = [];
    await assert.rejects(unpack(archive, { target, onMember: (r) => reports.push(r) }),
      (e: Error & { code?: string }) => e.code === 'CARGO_ERR_STAGE_FAILED' && /1 of 3 members failed: bad\.txt \(adler32 [0-9a-f]{8} does not match the archive's 00000001\)/.test(e.message));
    assert.deepEqual(readdirSync(target).sort(), ['after.txt', 'good.txt']);
    const bad = reports.find((r) => r.name === 'bad.txt')!;
    assert.equal(bad.state, 'failed');
    assert.equal(bad.code, 'CARGO_ERR_CHECKSUM_MISMATCH');
  });

  test('an existing file is not replaced unless overwrite is on', async () => {
    const dst = tempDir('tar-exists');
    writeFileSync(join(dst, 'a.txt'), 'old');
    const archive = await archiveOf([{ header: { name: 'a.txt', size: 3 }, body: Buffer.from('new') }]);
    await assert.rejects(unpack(archive, { target: dst }), /a\.txt \(exists/);
    assert.equal(readFileSync(join(dst, 'a.txt'), 'utf8'), 'old');
    await unpack(archive, { target: dst, overwrite: true });
    assert.equal(readFileSync(join(dst, 'a.txt'), 'utf8'), 'new');
  });
});

describe('hostile archives are refused and nothing escapes', () => {
  const cases: Array<{ name: string; entries: Array<{ header: Parameters<tar.Pack['entry']>[0]; body?: Buffer }>; error: RegExp; opts?: Partial<TarUnpackOptions> }> = [
    { name: '../ in a name', entries: [{ header: { name: '../outside/evil.txt', size: 4 }, body: Buffer.from('evil') }], error: /"\.\.\/outside\/evil\.txt": path contains "\.\."/ },
    { name: 'a name that climbs back in', entries: [{ header: { name: 'a/../../outside/x', size: 1 }, body: Buffer.from('x') }], error: /path contains "\.\."/ },
    { name: 'an absolute path', entries: [{ header: { name: '/tmp/evil-absolute', size: 4 }, body: Buffer.from('evil') }], error: /absolute path/ },
    { name: 'a symlink pointing outside', entries: [{ header: { name: 'escape', type: 'symlink', linkname: '../outside' } }], error: /symlink pointing outside the target/ },
    { name: 'a symlink to an absolute path', entries: [{ header: { name: 'etc', type: 'symlink', linkname: '/etc' } }], error: /symlink to an absolute path/ },
    { name: 'a file written through an earlier symlink member', entries: [
      { header: { name: 'sub', type: 'directory' } },
      { header: { name: 'inner', type: 'symlink', linkname: 'sub' } },
      { header: { name: 'inner/x', size: 1 }, body: Buffer.from('x') },
    ], error: /path passes through the link member inner/ },
    { name: 'a hard link pointing outside', entries: [{ header: { name: 'h', type: 'link', linkname: '../outside/keep.txt' } }], error: /hard link pointing outside the target/ },
    { name: 'a hard link to an absolute path', entries: [{ header: { name: 'h', type: 'link', linkname: '/etc/passwd' } }], error: /hard link pointing outside/ },
    { name: 'a hard link to a file not in the archive', entries: [{ header: { name: 'h', type: 'link', linkname: 'nothere' } }], error: /not an earlier file of this archive/ },
    { name: 'a character device', entries: [{ header: { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 } }], error: /device file refused/ },
    { name: 'a block device', entries: [{ header: { name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 } }], error: /device file refused/ },
    { name: 'a FIFO', entries: [{ header: { name: 'pipe', type: 'fifo' } }], error: /FIFO refused/ },
    { name: 'a 10 GB declared size (PAX size record)', entries: [{ header: { name: 'huge.bin', size: 0, pax: { size: '10000000000' } } }], error: /declares 10000000000 bytes, more than the 1073741824 allowed/ },
    { name: 'a size beyond the quota', entries: [{ header: { name: 'a', size: 600 }, body: Buffer.alloc(600) }, { header: { name: 'b', size: 600 }, body: Buffer.alloc(600) }], error: /beyond the quota/, opts: { quotaBytes: 1000 } },
    { name: 'a size other than announced', entries: [{ header: { name: 'a', size: 10 }, body: Buffer.alloc(10) }], error: /declares 10 bytes, the sender announced 9/, opts: { expected: new Map([['a', 9]]) } },
    { name: 'a member not announced', entries: [{ header: { name: 'b', size: 1 }, body: Buffer.alloc(1) }], error: /did not announce/, opts: { expected: new Map([['a', 9]]) } },
    { name: 'a name longer than allowed', entries: [{ header: { name: 'n'.repeat(300), size: 1 }, body: Buffer.alloc(1) }], error: /name longer than 200 bytes/, opts: { maxNameBytes: 200 } },
    { name: 'too many members', entries: [{ header: { name: 'a', size: 0 } }, { header: { name: 'b', size: 0 } }], error: /more than 1 members/, opts: { maxMembers: 1 } },
    { name: 'a duplicate name', entries: [{ header: { name: 'a', size: 1 }, body: Buffer.from('1') }, { header: { name: './a', size: 1 }, body: Buffer.from('2') }], error: /appears twice/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { parent, target } = hostileSetup('tar-hostile');
      const archive = await archiveOf(c.entries);
      await assert.rejects(unpack(archive, { target, ...c.opts }), unsafe(c.error));
      assertNothingOutside(parent, target);
      assert.equal(existsSync('/tmp/evil-absolute'), false);
    });
  }

  test('a symlink already in the target that points outside is not followed', async () => {
    const { parent, target } = hostileSetup('tar-planted');
    symlinkSync(join(parent, 'outside'), join(target, 'planted'));
    const archive = await archiveOf([{ header: { name: 'planted/evil.txt', size: 4 }, body: Buffer.from('evil') }]);
    await assert.rejects(unpack(archive, { target }), unsafe(/passes through planted, which is not a directory/));
    assertNothingOutside(parent, target);
  });

  test('a bad header checksum, a cut inside a member and a cut between members are refused; nothing partial is published', async () => {
    const good = await archiveOf([
      { header: { name: 'one.bin', size: 100_000 }, body: randomBytes(100_000) },
      { header: { name: 'two.bin', size: 100_000 }, body: randomBytes(100_000) },
    ]);
    const corrupt = Buffer.from(good);
    corrupt[1] ^= 0x20; // inside the first header's name field: the header checksum no longer matches
    const variants: Array<[string, Buffer, RegExp]> = [
      ['bad checksum', corrupt, /not a valid tar archive: Invalid tar header/],
      ['cut inside a member', good.subarray(0, 512 + 50_000), /not a valid tar archive: Unexpected end of data/],
      ['cut between members', good.subarray(0, 2 * (512 + 100_352)), /truncated: the archive has no end-of-archive marker/],
    ];
    for (const [what, bytes, re] of variants) {
      const { parent, target } = hostileSetup('tar-cut');
      await assert.rejects(unpack(bytes, { target, publish: 'end' }), unsafe(re), what);
      assertNothingOutside(parent, target);
      assert.deepEqual(readdirSync(target), [], `${what}: nothing published with publish: end`);
    }
    // Published one by one, the complete first member of a cut archive stays; the cut one never appears.
    const { target } = hostileSetup('tar-cut-each');
    await assert.rejects(unpack(good.subarray(0, 512 + 100_352 + 512 + 50_000), { target }), unsafe(/Unexpected end of data/));
    assert.deepEqual(readdirSync(target), ['one.bin']);
  });
});
