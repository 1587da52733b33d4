/**
 * Processing stages through the real transfer engine (file:// → file://) and on their own: zstd at emission and
 * unzstd at reception give back identical bytes and checksums (compressible and random, small and 256 MiB);
 * checksum stages record raw and processed sums; site hooks that exit 1, overrun their limit or write garbage fail
 * the file with the reason and publish nothing; hooks get only the port's environment and validated parameters;
 * `files` io, module hooks and the example gzip hook work; back-pressure holds (a hook that stops reading stops the
 * source, a decompression bomb does not run ahead of its reader, a closed gate lets nothing into the stages); an
 * abort leaves no child process, no zstd session and no part file.
 */
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync, createReadStream } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { compress } from 'zstd-napi';
import { loadConfig } from '../../config/load.js';
import { createProcessing, type Processing } from '../../services/processing/processing-service.js';
import { gateStage } from '../../services/processing/gate-stage.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { adler32 } from '../../services/checksum/adler32.js';
import { tempDir } from '../support/fixtures.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const here = dirname(fileURLToPath(import.meta.url));
const exampleHook = join(here, '..', '..', '..', 'services', 'processing', 'examples', 'gzip-hook.sh');
const hex = (n: number) => n.toString(16).padStart(8, '0');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function script(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Text-like data zstd compresses well (words, numbers, FITS-like header cards). */
function compressible(bytes: number): Buffer {
  const words = Array.from({ length: 400 }, (_, i) => `CARD${i.toString(36)}= ${(i * 7919 % 1000) / 7}`);
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = 0; at < bytes; i++) at += out.write(`${words[(i * 31) % words.length]!.padEnd(40)} / comment ${i % 97}\n`, at);
  return out;
}

describe('processing stages', () => {
  let p: Processing;
  let hooksDir: string;
  let pidDir: string;

  before(async () => {
    await engine.reconfigure({});
    hooksDir = tempDir('hooks');
    pidDir = tempDir('hook-pids');
    const cfg = loadConfig({
      env: {},
      overrides: {
        dataDir: tempDir('processing-data'),
        processing: {
          threads: 1,
          hooks: {
            fail: { command: [script(hooksDir, 'fail.sh', 'cat >/dev/null; echo "bad input: no FITS header at byte 0" >&2; exit 1')] },
            tempfail: { command: [script(hooksDir, 'tempfail.sh', 'cat >/dev/null; echo "archive busy" >&2; exit 75')] },
            hang: {
              command: [script(hooksDir, 'hang.sh', `trap '' TERM; echo $$ > "$PIDDIR/hang.pid"; sleep 60 & echo $! > "$PIDDIR/hang-child.pid"; echo "stuck" >&2; wait`)],
              timeoutSec: 1, graceSec: 1, env: { PIDDIR: pidDir },
            },
            garbage: { command: [script(hooksDir, 'garbage.sh', `echo $$ > "$PIDDIR/garbage.pid"; head -c 200000 /dev/urandom; cat >/dev/null`)], env: { PIDDIR: pidDir } },
            env: { command: [script(hooksDir, 'env.sh', 'cat >/dev/null; env | sort')], params: { LEVEL: '[0-9]', NOTE: '[a-z ]{0,20}' } },
            upper: { command: [script(hooksDir, 'upper.sh', 'tr a-z A-Z < "$1" > "$2"')], io: 'files' },
            nooutput: { command: [script(hooksDir, 'nooutput.sh', 'exit 0')], io: 'files' },
            slow: { command: [script(hooksDir, 'slow.sh', `echo $$ > "$PIDDIR/slow.pid"; exec cat`)], env: { PIDDIR: pidDir } },
            stuck: { command: [script(hooksDir, 'stuck.sh', `echo $$ > "$PIDDIR/stuck.pid"; exec sleep 60`)], env: { PIDDIR: pidDir } },
            gzip: { command: [exampleHook], params: { LEVEL: '[1-9]' } },
            rot: { module: join(hooksDir, 'rot.mjs'), options: { shift: 1 } },
          },
        },
      },
    });
    writeFileSync(join(hooksDir, 'rot.mjs'), `import { Transform } from 'node:stream';
export function createStage(ctx) {
  return new Transform({ transform(c, _e, done) { const o = Buffer.from(c); for (let i = 0; i < o.length; i++) o[i] = (o[i] + ctx.options.shift) & 255; done(null, o); } });
}\n`);
    p = await createProcessing(cfg);
  });
  after(async () => {
    await p.close();
  });

  /** One file through the engine with `processing`; returns the result, the records and the published bytes. */
  async function run(data: Buffer, processing: unknown, opts: { signal?: AbortSignal; name?: string } = {}) {
    const srcDir = tempDir('stage-src');
    const dstDir = tempDir('stage-dst');
    writeFileSync(join(srcDir, 'in.dat'), data);
    const chain = p.resolve(p.parseJobSpec(processing), { endpoint: 'local', path: join(srcDir, 'in.dat') }, { endpoint: 'local', path: join(dstDir, opts.name ?? 'out.dat') });
    const signal = opts.signal ?? new AbortController().signal;
    const gate = new PauseGate();
    const built = chain.build({ signal, gate });
    const outcome = await engine.transfer({
      source: `file://${join(srcDir, 'in.dat')}`, destination: `file://${chain.destinationPath}`, verify: 'none', overwrite: false,
      checksum: { alg: 'adler32', value: hex(adler32(data)) },
    }, { signal, gate, stages: built.stages }).then((r) => ({ ok: true as const, r }), (e: Error & { code?: string; cause?: unknown }) => ({ ok: false as const, e }));
    return { outcome, records: built.recorder.records(), dstDir, path: chain.destinationPath };
  }

  for (const [kind, make] of [['compressible', compressible], ['random', randomBytes]] as const) {
    for (const size of [100_000, 256 * 1024 * 1024]) {
      test(`zstd at emission, unzstd at reception: ${kind}, ${size} bytes back identical, checksums recorded`, async () => {
        const data = make(size);
        const { outcome, records, path } = await run(data, {
          emission: [{ stage: 'checksum', algs: ['adler32', 'sha256'], label: 'raw' }, { stage: 'zstd', level: 3 }, { stage: 'checksum', label: 'compressed' }],
          reception: [{ stage: 'unzstd' }, { stage: 'checksum', algs: ['sha256'], label: 'published' }],
        });
        assert.ok(outcome.ok, outcome.ok ? '' : outcome.e.message);
        const back = readFileSync(path);
        assert.equal(back.length, data.length);
        assert.ok(back.equals(data), 'identical bytes');
        assert.equal(outcome.r.checksum?.value, hex(adler32(data)), 'the source checksum verified');
        const byLabel = Object.fromEntries(records.map((r) => [r.kind === 'checksum' ? r.label : r.stage, r]));
        assert.equal(byLabel['raw']!.kind === 'checksum' && byLabel['raw']!.checksums.sha256, sha256(data));
        assert.equal(byLabel['published']!.kind === 'checksum' && byLabel['published']!.checksums.sha256, sha256(data));
        const compressed = byLabel['compressed']!;
        assert.ok(compressed.kind === 'checksum');
        if (kind === 'compressible') assert.ok(compressed.bytes < data.length / 3, `compressed to ${compressed.bytes} of ${data.length}`);
        else assert.ok(compressed.bytes >= data.length, 'random data does not shrink');
        assert.equal(p.zstd.activeSessions, 0);
      });
    }
  }

  test('zstd with suffix: the file is published as NAME.zst and decompresses to the source', async () => {
    const data = compressible(300_000);
    const { outcome, path, dstDir } = await run(data, { emission: [{ stage: 'zstd', level: 1, suffix: true, threads: 2 }] });
    assert.ok(outcome.ok);
    assert.equal(path, join(dstDir, 'out.dat.zst'));
    const { decompress } = await import('zstd-napi');
    assert.ok(decompress(readFileSync(path)).equals(data));
  });

  test('a hook that exits 1 fails the file with its stderr as the reason; nothing published', async () => {
    const { outcome, dstDir } = await run(randomBytes(100_000), { reception: [{ stage: 'hook', hook: 'fail' }] });
    assert.ok(!outcome.ok);
    assert.equal(outcome.e.code, 'CARGO_ERR_STAGE_FAILED');
    assert.match(outcome.e.message, /stream stage "reception:hook" failed: hook "fail" exited with status 1; stderr: bad input: no FITS header at byte 0/);
    assert.equal((outcome.e.cause as { code?: string }).code, 'CARGO_ERR_HOOK_FAILED');
    assert.deepEqual(readdirSync(dstDir), []);
  });

  test('exit 75 (EX_TEMPFAIL) marks the hook failure retryable', async () => {
    const { outcome } = await run(randomBytes(1000), { emission: [{ stage: 'hook', hook: 'tempfail' }] });
    assert.ok(!outcome.ok);
    const cause = outcome.e.cause as { code?: string; retryable?: boolean };
    assert.equal(cause.code, 'CARGO_ERR_HOOK_FAILED');
    assert.equal(cause.retryable, true);
  });

  test('a hook that hangs past its limit is killed (SIGTERM ignored → SIGKILL), with its children; the file fails', async () => {
    const { outcome, dstDir } = await run(randomBytes(10_000), { emission: [{ stage: 'hook', hook: 'hang' }] });
    assert.ok(!outcome.ok);
    assert.match(outcome.e.message, /hook "hang" exceeded its time limit of 1 s and was killed; stderr: stuck/);
    const pid = Number(readFileSync(join(pidDir, 'hang.pid'), 'utf8'));
    const child = Number(readFileSync(join(pidDir, 'hang-child.pid'), 'utf8'));
    await waitFor(() => !alive(pid) && !alive(child));
    assert.deepEqual(readdirSync(dstDir), []);
  });

  test('a hook writing garbage makes the following unzstd fail, naming it; the hook is gone', async () => {
    const { outcome, dstDir } = await run(randomBytes(50_000), { emission: [{ stage: 'hook', hook: 'garbage' }], reception: [{ stage: 'unzstd' }] });
    assert.ok(!outcome.ok);
    assert.match(outcome.e.message, /stream stage "reception:unzstd" failed: .*(Unknown frame descriptor|frame)/i);
    await waitFor(() => !alive(Number(readFileSync(join(pidDir, 'garbage.pid'), 'utf8'))));
    assert.deepEqual(readdirSync(dstDir), []);
    assert.equal(p.zstd.activeSessions, 0);
  });

  test('a hook sees only the port\'s environment and the validated parameters', async () => {
    process.env['CARGOPORT_TEST_SECRET'] = 'do-not-leak';
    try {
      const { outcome, path } = await run(randomBytes(10), { reception: [{ stage: 'hook', hook: 'env', params: { LEVEL: '3', NOTE: 'hello world' } }] }, { name: 'run 7.fits' });
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.e.message);
      const env = Object.fromEntries(readFileSync(path, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      assert.equal(env['CARGOPORT_PARAM_LEVEL'], '3');
      assert.equal(env['CARGOPORT_PARAM_NOTE'], 'hello world');
      assert.equal(env['CARGOPORT_HOOK'], 'env');
      assert.equal(env['CARGOPORT_SIDE'], 'reception');
      assert.equal(env['CARGOPORT_FILE_NAME'], 'run 7.fits');
      assert.equal(env['CARGOPORT_TEST_SECRET'], undefined, 'nothing of the worker\'s environment');
      assert.equal(env['HOME'], undefined);
    } finally {
      delete process.env['CARGOPORT_TEST_SECRET'];
    }
  });

  test('files io: the hook gets INPUT and OUTPUT paths; no output file fails the file; the private files go', async () => {
    const ok = await run(Buffer.from('hello files'), { emission: [{ stage: 'hook', hook: 'upper' }] });
    assert.ok(ok.outcome.ok);
    assert.equal(readFileSync(ok.path, 'utf8'), 'HELLO FILES');
    const bad = await run(Buffer.from('x'), { emission: [{ stage: 'hook', hook: 'nooutput' }] });
    assert.ok(!bad.outcome.ok);
    assert.match(bad.outcome.e.message, /hook "nooutput" exited 0 but wrote no output file/);
    await waitFor(() => readdirSync(p.workDir).length === 0);
  });

  test('the example gzip hook and a module hook', async () => {
    const data = compressible(200_000);
    const gz = await run(data, { emission: [{ stage: 'hook', hook: 'gzip', params: { LEVEL: '1' } }] });
    assert.ok(gz.outcome.ok, gz.outcome.ok ? '' : gz.outcome.e.message);
    assert.ok(gunzipSync(readFileSync(gz.path)).equals(data));
    const rot = await run(Buffer.from([1, 2, 255]), { reception: [{ stage: 'hook', hook: 'rot' }] });
    assert.ok(rot.outcome.ok);
    assert.deepEqual([...readFileSync(rot.path)], [2, 3, 0]);
  });

  test('abort mid-stream: no child process, no zstd session, no part file', async () => {
    const ac = new AbortController();
    const data = randomBytes(64 * 1024 * 1024);
    const running = run(data, { emission: [{ stage: 'zstd', level: 3 }, { stage: 'hook', hook: 'slow' }], reception: [{ stage: 'unzstd' }] }, { signal: ac.signal });
    await waitFor(() => existsSync(join(pidDir, 'slow.pid')) && alive(Number(readFileSync(join(pidDir, 'slow.pid'), 'utf8'))));
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    const { outcome, dstDir } = await running;
    assert.ok(!outcome.ok);
    assert.equal(outcome.e.code, 'CARGO_ERR_ABORTED');
    await waitFor(() => !alive(Number(readFileSync(join(pidDir, 'slow.pid'), 'utf8'))));
    await waitFor(() => p.zstd.activeSessions === 0);
    assert.deepEqual(readdirSync(dstDir), [], 'no part file');
  });

  test('back-pressure: a hook that stops reading stops the source', async () => {
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 65536;
        this.push(Buffer.alloc(65536));
      },
    });
    const chain = p.resolve(p.parseJobSpec({ emission: [{ stage: 'hook', hook: 'stuck' }] }), { endpoint: 'local', path: '/a' }, { endpoint: 'local', path: '/b' });
    const [gate, hook] = chain.build().stages.map((s) => s.create());
    const done = pipeline(source, gate!, hook!, new Writable({ write: (_c, _e, cb) => cb() })).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 1000));
    const held = produced;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(produced, held, 'the source is not read while the hook does not read');
    assert.ok(held < 8 * 1024 * 1024, `bounded: ${held} bytes read ahead`);
    hook!.destroy();
    await done;
    await waitFor(() => !alive(Number(readFileSync(join(pidDir, 'stuck.pid'), 'utf8'))));
  });

  test('back-pressure: a decompression bomb does not run ahead of a reader that stops', async () => {
    const bomb = compress(Buffer.alloc(512 * 1024 * 1024)); // ~16 KiB of input, 512 MiB of output
    assert.ok(bomb.length < 100_000);
    const unz = p.zstd.createStream({ mode: 'decompress', windowLogMax: 27 });
    let received = 0;
    let release: () => void = () => undefined;
    const sink = new Writable({
      highWaterMark: 1,
      write(c: Buffer, _e, cb) {
        received += c.length;
        if (received > 4 * 1024 * 1024) release = cb; // stop reading
        else cb();
      },
    });
    const done = pipeline(Readable.from([bomb]), unz, sink).catch((e: Error) => e);
    await waitFor(() => received > 4 * 1024 * 1024);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(unz.readableLength <= 4 * 1024 * 1024, `buffered ${unz.readableLength} bytes ahead of the reader`);
    assert.ok(received < 8 * 1024 * 1024, `received ${received}`);
    unz.destroy();
    release();
    await done;
    await waitFor(() => p.zstd.activeSessions === 0);
  });

  test('zstd pool: a frame ending exactly at an output buffer boundary is complete; a cut one is truncated', async () => {
    // 128 MiB of a repeated card: the frame's last byte lands at the end of a 128 KiB output buffer.
    const data = Buffer.alloc(128 * 1024 * 1024, 'KEY1 = 1234 / value 12\n');
    const z = compress(data, { compressionLevel: 1 });
    const count = async (input: Buffer) => {
      let n = 0;
      await pipeline(Readable.from([input]), p.zstd.createStream({ mode: 'decompress', windowLogMax: 27 }), new Writable({ write: (c: Buffer, _e, cb) => { n += c.length; cb(); } }));
      return n;
    };
    assert.equal(await count(z), data.length);
    await assert.rejects(count(z.subarray(0, z.length - 3)), /zstd input ended in the middle of a frame \(truncated\)/);
    await assert.rejects(count(randomBytes(5000)), (e: Error & { code?: string }) => e.code === 'CARGO_ERR_STAGE_FAILED');
    assert.equal(p.zstd.activeSessions, 0);
  });

  test('a closed gate lets nothing into the stages; opening it lets the file through', async () => {
    const gate = new PauseGate();
    gate.close();
    let out = 0;
    const g = gateStage(gate, undefined).create();
    const done = pipeline(createReadStream(exampleHook), g, new Writable({ write: (c: Buffer, _e, cb) => { out += c.length; cb(); } }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(out, 0);
    gate.openGate();
    await done;
    assert.equal(out, readFileSync(exampleHook).length);
  });
});

describe('packed archives through the engine', () => {
  let p: Processing;
  before(async () => {
    await engine.reconfigure({});
    p = await createProcessing(loadConfig({ env: {}, overrides: { dataDir: tempDir('pack-data'), processing: { threads: 1 } } }));
  });
  after(() => p.close());

  test('packArchive (.tar.zst) → engine with reception [unzstd, untar]: members published, manifest and record', async () => {
    const src = tempDir('pack-src');
    const names = Array.from({ length: 50 }, (_, i) => `run/f${String(i).padStart(3, '0')}.dat`);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(src, 'run'));
    const contents = new Map(names.map((n) => [n, randomBytes(1000 + names.indexOf(n))]));
    for (const [n, b] of contents) writeFileSync(join(src, n), b);
    const plan = p.parseJobSpec({ pack: { zstdLevel: 1, checksums: ['adler32', 'md5'] } });
    const packed: string[] = [];
    const { body, suffix } = p.packArchive(names.map((n) => ({ source: join(src, n), name: n, type: 'file' as const })), plan.pack!, { onMember: (m) => packed.push(m.name) });
    assert.equal(suffix, '.tar.zst');
    const archiveDir = tempDir('pack-archive');
    const archive = join(archiveDir, `a1${suffix}`);
    await pipeline(body, (await import('node:fs')).createWriteStream(archive));
    assert.deepEqual(packed, names);

    const dst = tempDir('pack-dst');
    const chain = p.resolve(p.parseJobSpec({ reception: [{ stage: 'unzstd' }, { stage: 'untar', requireChecksums: true }] }),
      { endpoint: 'local', path: archive }, { endpoint: 'local', path: join(dst, 'a1.tar') });
    assert.equal(chain.destinationPath, join(dst, 'a1.tar.manifest.jsonl'));
    const gate = new PauseGate();
    const signal = new AbortController().signal;
    const built = chain.build({ signal, gate });
    await engine.transfer({ source: `file://${archive}`, destination: `file://${chain.destinationPath}`, verify: 'none', overwrite: false }, { signal, gate, stages: built.stages });
    for (const [n, b] of contents) assert.ok(readFileSync(join(dst, n)).equals(b), n);
    const manifest = readFileSync(chain.destinationPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; state: string; checksums: { md5?: string } });
    assert.equal(manifest.length, names.length);
    assert.ok(manifest.every((m) => m.state === 'published' && /^[0-9a-f]{32}$/.test(m.checksums.md5 ?? '')));
    assert.deepEqual(built.recorder.records(), [{ kind: 'unpack', stage: 'reception:untar', side: 'reception', members: 50, published: 50, failed: 0, bytes: [...contents.values()].reduce((a, b) => a + b.length, 0) }]);
  });
});
