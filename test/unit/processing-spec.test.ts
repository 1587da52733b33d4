/**
 * services/processing: a job's params.processing is validated with errors naming the field; unknown stages and
 * hooks are named; the operator's rules wrap the job's stages (most specific rule per side); renames compose;
 * hook parameters are matched against the hook's rules; archive entry names and links are checked; a job's files
 * are split into archives by count and bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../config/load.js';
import { createProcessing, type Processing } from '../../services/processing/processing-service.js';
import { checkSymlinkTarget, hardlinkSegments, memberKind, memberSegments } from '../../services/processing/archive-entry-policy.js';
import { planArchives } from '../../services/processing/pack-plan.js';
import { processingJsonSchema } from '../../services/processing/processing-spec.js';

const err = (code: string, re: RegExp) => (e: Error & { code?: string }) => {
  assert.equal(e.code, code, e.message);
  assert.match(e.message, re);
  return true;
};

describe('processing spec and chain resolution', () => {
  let p: Processing;
  before(async () => {
    const cfg = loadConfig({
      env: {},
      overrides: {
        dataDir: '/tmp/cargoport-unit-processing',
        processing: {
          hooks: { gzip: { command: ['/bin/cat'], params: { LEVEL: '[1-9]' }, sides: ['emission'] } },
          rules: [
            { pathPrefix: '/archive', reception: [{ stage: 'checksum', algs: ['sha256'], label: 'site' }] },
            { endpoint: 'local', pathPrefix: '/archive/raw', reception: [{ stage: 'checksum', algs: ['md5'], label: 'raw' }] },
            { endpoint: 'https://src.example:443', emission: [{ stage: 'checksum', label: 'at-source' }] },
          ],
        },
      },
    });
    p = await createProcessing(cfg);
  });
  after(() => p.close());

  test('a valid spec: stages, options with defaults, pack', () => {
    const plan = p.parseJobSpec({
      emission: [{ stage: 'zstd', level: 5, suffix: true }],
      reception: [{ stage: 'unzstd', stripSuffix: true }],
      pack: { maxMembers: 10 },
    });
    assert.equal(plan.emission[0]!.definition.name, 'zstd');
    assert.deepEqual(plan.emission[0]!.options, { level: 5, windowLog: undefined, threads: 0, checksum: true, suffix: true });
    assert.deepEqual(plan.pack, { maxMembers: 10, maxBytes: 256 * 1024 * 1024, zstdLevel: 0, checksums: ['adler32'] });
    assert.deepEqual(p.parseJobSpec(undefined), { emission: [], reception: [] });
  });

  test('errors name the field and the cause', () => {
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'zstd', level: 30 }] }),
      err('CARGO_ERR_BAD_PROCESSING', /params\.processing\.emission\[0\]\.level: must be an integer from 1 to 19/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'zstd', levle: 3 }] }),
      err('CARGO_ERR_BAD_PROCESSING', /emission\[0\]\.levle: unknown option of stage "zstd" \(known: level, windowLog, threads, checksum, suffix\)/));
    assert.throws(() => p.parseJobSpec({ reception: [{ stage: 'zstd' }, { stage: 'brotli' }] }),
      err('CARGO_ERR_UNKNOWN_STAGE', /reception\[1\]\.stage: unknown stage "brotli" \(known: zstd, unzstd, checksum, untar, hook\)/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'untar' }] }),
      err('CARGO_ERR_BAD_PROCESSING', /emission\[0\]\.stage: stage "untar" cannot run at emission/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'zstd', threads: 9 }] }), err('CARGO_ERR_BAD_PROCESSING', /threads: must be an integer from 0 to 2/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'checksum', algs: ['crc64'] }] }), err('CARGO_ERR_BAD_PROCESSING', /algs\[0\]: unknown checksum algorithm "crc64"/));
    assert.throws(() => p.parseJobSpec({ emision: [] }), err('CARGO_ERR_BAD_PROCESSING', /params\.processing\.emision: unknown key/));
    assert.throws(() => p.parseJobSpec(['zstd']), err('CARGO_ERR_BAD_PROCESSING', /params\.processing: must be an object/));
    assert.throws(() => p.parseJobSpec({ emission: Array.from({ length: 9 }, () => ({ stage: 'zstd' })) }), err('CARGO_ERR_BAD_PROCESSING', /has 9 stages, at most 8/));
    assert.throws(() => p.parseJobSpec({ pack: { zstdLevel: 20 } }), err('CARGO_ERR_BAD_PROCESSING', /pack\.zstdLevel: must be an integer from 0 to 19/));
  });

  test('hooks: unknown names, undeclared parameters, values outside the rule, sides', () => {
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'hook', hook: 'virus' }] }), err('CARGO_ERR_UNKNOWN_STAGE', /no hook "virus" is registered \(known: gzip\)/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'hook' }] }), err('CARGO_ERR_BAD_PROCESSING', /emission\[0\]\.hook: is required/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'hook', hook: 'gzip', params: { MODE: 'x' } }] }), err('CARGO_ERR_BAD_PROCESSING', /params\.MODE: hook "gzip" takes no parameter MODE/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'hook', hook: 'gzip', params: { LEVEL: '1; rm -rf /' } }] }), err('CARGO_ERR_BAD_PROCESSING', /params\.LEVEL: "1; rm -rf \/" is not allowed by hook "gzip"/));
    assert.throws(() => p.parseJobSpec({ emission: [{ stage: 'hook', hook: 'gzip', params: { LEVEL: '1\n' } }] }), err('CARGO_ERR_BAD_PROCESSING', /printable/));
    assert.throws(() => p.parseJobSpec({ reception: [{ stage: 'hook', hook: 'gzip' }] }), err('CARGO_ERR_BAD_PROCESSING', /hook "gzip" may not run at reception/));
    assert.equal(p.parseJobSpec({ emission: [{ stage: 'hook', hook: 'gzip', params: { LEVEL: '9' } }] }).emission.length, 1);
  });

  test('operator config: bad hooks and rules stop start-up naming the key', async () => {
    const make = (processing: Record<string, unknown>) => createProcessing(loadConfig({ env: {}, overrides: { processing } }));
    await assert.rejects(make({ hooks: { x: { command: ['gzip'] } } }), err('CARGO_ERR_CONFIG', /processing\.hooks\.x\.command: the program must be an absolute path/));
    await assert.rejects(make({ hooks: { x: { command: ['/nonexistent/prog'] } } }), err('CARGO_ERR_CONFIG', /processing\.hooks\.x\.command: \/nonexistent\/prog is not an executable/));
    await assert.rejects(make({ hooks: { x: { command: ['/bin/cat'], env: { CARGOPORT_X: '1' } } } }), err('CARGO_ERR_CONFIG', /processing\.hooks\.x\.env\.CARGOPORT_X/));
    await assert.rejects(make({ hooks: { x: { command: ['/bin/cat'], params: { level: '.*' } } } }), err('CARGO_ERR_CONFIG', /processing\.hooks\.x\.params\.level/));
    await assert.rejects(make({ rules: [{ pathPrefix: '/a', reception: [{ stage: 'zstd', level: 99 }] }] }), err('CARGO_ERR_CONFIG', /processing\.rules\[0\]\.reception\[0\]\.level/));
    await assert.rejects(make({ rules: [{ endpoint: 'dcache' }] }), err('CARGO_ERR_CONFIG', /processing\.rules\[0\]\.endpoint/));
    assert.throws(() => loadConfig({ env: { CARGOPORT_PROCESSING_HOOKS: '[1]' } }), /CARGOPORT_PROCESSING_HOOKS.*a mapping/);
    assert.equal(Object.keys(loadConfig({ env: { CARGOPORT_PROCESSING_HOOKS: '{"a":{}}' } }).processing.hooks)[0], 'a');
  });

  test('resolution: the operator\'s most specific rule wraps the job\'s stages, renames compose', () => {
    const plan = p.parseJobSpec({ emission: [{ stage: 'zstd', suffix: true }], reception: [{ stage: 'checksum', label: 'job' }] });
    const chain = p.resolve(plan, { endpoint: 'https://src.example:443', path: '/d/run1.fits' }, { endpoint: 'local', path: '/archive/raw/run1.fits' });
    assert.deepEqual(chain.emission.map((s) => s.definition.name), ['checksum', 'zstd']);
    assert.deepEqual(chain.reception.map((s) => `${s.definition.name}:${(s.options as { label?: string }).label}`), ['checksum:job', 'checksum:raw']);
    assert.equal(chain.destinationPath, '/archive/raw/run1.fits.zst');
    const built = chain.build();
    assert.deepEqual(built.stages.map((s) => s.name), ['gate', 'emission:checksum', 'emission:zstd', 'reception:checksum', 'reception:checksum#2']);
    // The generic /archive rule applies where the specific one does not; /archives is not below /archive.
    assert.equal(p.resolve(plan, { endpoint: 'local', path: '/x' }, { endpoint: 'local', path: '/archive/b' }).reception.length, 2);
    assert.equal(p.resolve(plan, { endpoint: 'local', path: '/x' }, { endpoint: 'local', path: '/archives/b' }).reception.length, 1);
    const unz = p.resolve(p.parseJobSpec({ reception: [{ stage: 'unzstd', stripSuffix: true }] }), { endpoint: 'local', path: '/a' }, { endpoint: 'local', path: '/b/x.dat.zst' });
    assert.equal(unz.destinationPath, '/b/x.dat');
    assert.equal(p.resolve(p.parseJobSpec({}), { endpoint: 'local', path: '/a' }, { endpoint: 'local', path: '/b' }).empty, true);
    assert.throws(() => p.resolve(p.parseJobSpec({ reception: [{ stage: 'untar' }] }), { endpoint: 'local', path: '/a' }, { endpoint: 'https://d.example', path: '/x.tar' }),
      err('CARGO_ERR_BAD_PROCESSING', /stage "untar" needs a local/));
  });

  test('the gateway schema is an envelope that accepts what parseProcessingSpec accepts', () => {
    assert.equal(processingJsonSchema.type, 'object');
    assert.deepEqual(Object.keys(processingJsonSchema.properties), ['emission', 'reception', 'pack']);
  });
});

describe('archive entry policy', () => {
  test('names: relative, no "..", bounded, no NUL', () => {
    assert.deepEqual(memberSegments('./a//b/c.txt', 100), ['a', 'b', 'c.txt']);
    assert.deepEqual(memberSegments('./', 100), []);
    for (const bad of ['../x', 'a/../../x', 'a/../b', '/etc/passwd', 'a\0b', 'x'.repeat(101)]) {
      assert.throws(() => memberSegments(bad, 100), (e: Error & { code?: string }) => e.code === 'CARGO_ERR_UNSAFE_ARCHIVE', bad);
    }
  });
  test('links: symlinks resolve inside the target, hard links name members', () => {
    assert.equal(checkSymlinkTarget(['a', 'b', 'l'], '../c/x', 100, 'a/b/l'), '../c/x');
    assert.equal(checkSymlinkTarget(['a', 'b', 'l'], '../../x', 100, 'a/b/l'), '../../x', 'a/b/../../x is the target\'s own x');
    for (const t of ['../../../x', '/etc/passwd', 'c/../../../../a', '']) {
      assert.throws(() => checkSymlinkTarget(['a', 'b', 'l'], t, 100, 'a/b/l'), (e: Error & { code?: string }) => e.code === 'CARGO_ERR_UNSAFE_ARCHIVE', t);
    }
    assert.throws(() => checkSymlinkTarget(['l'], '..', 100, 'l'), /outside/);
    assert.deepEqual(hardlinkSegments('a/x', 100, 'h'), ['a', 'x']);
    assert.throws(() => hardlinkSegments('../x', 100, 'h'), /hard link pointing outside/);
    assert.throws(() => hardlinkSegments('/etc/shadow', 100, 'h'), /hard link pointing outside/);
  });
  test('kinds: devices, FIFOs and unknown types are refused', () => {
    assert.equal(memberKind('contiguous-file', 'x'), 'file');
    assert.throws(() => memberKind('character-device', 'dev/null'), /device file refused/);
    assert.throws(() => memberKind('block-device', 'sda'), /device file refused/);
    assert.throws(() => memberKind('fifo', 'p'), /FIFO refused/);
    assert.throws(() => memberKind('gnu-sparse' as string, 's'), /type gnu-sparse refused/);
  });
});

test('pack planning: by member count and bytes; oversized files travel alone', () => {
  const files = Array.from({ length: 7 }, (_, i) => ({ id: String(i), size: i === 3 ? 1000 : 10 }));
  const plan = planArchives(files, { maxMembers: 2, maxBytes: 25 });
  assert.deepEqual(plan.archives.map((a) => a.map((f) => f.id)), [['0', '1'], ['2', '4'], ['5', '6']]);
  assert.deepEqual(plan.alone.map((f) => f.id), ['3']);
  assert.deepEqual(planArchives(files.slice(0, 3), { maxMembers: 100, maxBytes: 15 }).archives.length, 3);
});
