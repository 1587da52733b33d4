/**
 * Multi-stream pulls against a real TLS HTTP/2 server: N connections × M streams of byte ranges, SETTINGS
 * as sent on the wire, combined range checksums, per-range resume, HTTP/1.1 multi-connection fallback.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createChecksummer } from '../../services/checksum/checksummer.js';
import { isCargoError } from '../../errors/cargo-error.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import type { ChecksumAlg, ResumeState, TransferControl, TransferRequest } from '../../services/transfer/types.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const MiB = 1024 * 1024;
const STREAM_WINDOW = 8 * MiB;
const CONN_WINDOW = 32 * MiB;
let srv: H2FileServer;
let srvRoot: string;
let work: string;

function sum(alg: ChecksumAlg, buf: Buffer): string {
  const s = createChecksummer(alg);
  s.update(buf);
  return s.digestHex();
}

const ctl = (extra: Partial<TransferControl> = {}): TransferControl =>
  ({ signal: new AbortController().signal, gate: new PauseGate(), ...extra });
const req = (source: string, destination: string, extra: Partial<TransferRequest> = {}): TransferRequest =>
  ({ source, destination, verify: 'source', overwrite: false, ...extra });

async function makeFile(name: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await writeFile(join(srvRoot, name), data);
  return data;
}

function rangeRequests(path: string, since = 0) {
  return srv.requests.slice(since).filter((r) => r.method === 'GET' && r.path === path);
}

function rangeLength(h: string | string[] | undefined): number {
  const m = /^bytes=(\d+)-(\d+)$/.exec(String(h));
  assert.ok(m, `range header ${String(h)}`);
  return Number(m[2]) - Number(m[1]) + 1;
}

before(async () => {
  srvRoot = await mkdtemp(join(tmpdir(), 'cargoport-msrv-'));
  work = await mkdtemp(join(tmpdir(), 'cargoport-mdst-'));
  srv = await startH2FileServer({ root: srvRoot });
  await engine.reconfigure({
    ca: testTls().cert, connections: 2, streams: 4,
    initialWindowSize: STREAM_WINDOW, connectionWindowSize: CONN_WINDOW,
    multiStream: { enabled: true, minFileBytes: 2 * MiB, rangeBytes: 1 * MiB },
  });
});

after(async () => {
  await engine.close();
  await srv.close();
  await rm(srvRoot, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe('multi-stream pull', () => {
  it('splits a large file over 2 connections × 4 h2 streams and verifies the combined adler32', async () => {
    const data = await makeFile('big.bin', 24 * MiB + 12345);
    const before = srv.requests.length;
    const dst = join(work, 'big.bin');
    const res = await engine.transfer(req(srv.url('/big.bin'), pathToFileURL(dst).href), ctl());
    assert.deepEqual(await readFile(dst), data);
    assert.equal(res.checksum?.value, sum('adler32', data));
    assert.equal(res.protocol, 'h2');
    assert.equal(res.connections, 2);
    assert.equal(res.streams, 4);
    const gets = rangeRequests('/big.bin', before);
    assert.equal(gets.length, 25, 'one GET per 1 MiB range');
    assert.equal(gets.reduce((t, r) => t + rangeLength(r.headers['range']), 0), data.length);
    assert.ok(gets.every((r) => r.httpVersion === '2.0'));
    assert.equal(new Set(gets.map((r) => r.remotePort)).size, 2, 'two TCP connections');
    // The first range is the probe (no validator yet, and no HEAD round trip); every later range is guarded.
    assert.equal(gets[0]!.headers['range'], `bytes=0-${MiB - 1}`);
    assert.ok(gets.slice(1).every((r) => r.headers['if-range'] !== undefined));
    assert.equal(srv.requests.slice(before).filter((r) => r.method === 'HEAD').length, 0);
    assert.deepEqual((await readdir(work)).filter((n) => n.includes('cargoport-part')), []);
  });

  it('a server that answers If-Range with the whole body of an unchanged file: ranges asked again without it, file complete', async () => {
    const data = await makeFile('ifrange.bin', 6 * MiB + 7);
    const before = srv.requests.length;
    const dst = join(work, 'ifrange.bin');
    srv.faults.ignoreIfRange = true;
    try {
      const res = await engine.transfer(req(srv.url('/ifrange.bin'), pathToFileURL(dst).href), ctl());
      assert.deepEqual(await readFile(dst), data);
      assert.equal(res.checksum?.value, sum('adler32', data));
      assert.equal(res.streams * res.connections, 8, 'still split');
    } finally {
      srv.faults.ignoreIfRange = false;
    }
    const gets = rangeRequests('/ifrange.bin', before);
    // 6 ranges after the probe, each asked with If-Range (answered whole) and again without it.
    assert.equal(gets.filter((r) => r.headers['if-range'] !== undefined).length, 6);
    assert.equal(gets.filter((r) => r.headers['if-range'] === undefined).length, 7);
  });

  it('sends the configured windows on the wire (SETTINGS_INITIAL_WINDOW_SIZE, connection WINDOW_UPDATE)', async () => {
    assert.ok(srv.clientSettings.length >= 2);
    for (const s of srv.clientSettings) assert.equal(s.initialWindowSize, STREAM_WINDOW);
    // The connection window only grows through WINDOW_UPDATE: what the server may still send us.
    assert.ok(srv.sessions.size >= 1);
    for (const session of srv.sessions) {
      const w = session.state.remoteWindowSize ?? 0;
      assert.ok(w > CONN_WINDOW / 2, `server-side view of our connection window: ${w}`);
    }
  });

  for (const alg of ['crc32c', 'sha256'] as const) {
    it(`verifies ${alg} for a ranged pull (${alg === 'crc32c' ? 'combined per range' : 'hashed over the assembled part file'})`, async () => {
      const data = await makeFile(`${alg}.bin`, 5 * MiB + 7);
      const dst = join(work, `${alg}.bin`);
      const res = await engine.transfer(req(srv.url(`/${alg}.bin`), pathToFileURL(dst).href, { checksum: { alg } }), ctl());
      assert.equal(res.checksum?.value, sum(alg, data));
      assert.ok(res.streams > 1);
    });
  }

  it('resumes per range: only the missing ranges move again', async () => {
    const data = await makeFile('resume.bin', 32 * MiB);
    const dst = join(work, 'resume.bin');
    srv.faults.bytesPerSec = 1 * MiB; // per response: 8 streams ≈ 8 MiB/s, the file takes ~4 s
    const ac = new AbortController();
    let checkpoint: ResumeState | undefined;
    try {
      await assert.rejects(engine.transfer(req(srv.url('/resume.bin'), pathToFileURL(dst).href), ctl({
        signal: ac.signal,
        onProgress: (p) => { if (p.bytes >= 4 * MiB) ac.abort(); },
        onCheckpoint: (s) => { checkpoint = s; },
      })), (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_ABORTED');
    } finally {
      srv.faults.bytesPerSec = undefined;
    }
    assert.ok(checkpoint?.tempPath && checkpoint.done.length > 0);
    const doneBytes = checkpoint.done.reduce((t, [s, e]) => t + e - s, 0);
    assert.ok(doneBytes >= 4 * MiB && doneBytes < data.length, `done ${doneBytes}`);
    const before = srv.requests.length;
    const res = await engine.transfer(req(srv.url('/resume.bin'), pathToFileURL(dst).href, { resume: checkpoint }), ctl());
    assert.equal(res.resumedBytes, doneBytes);
    assert.deepEqual(await readFile(dst), data);
    assert.equal(res.checksum?.value, sum('adler32', data));
    const again = rangeRequests('/resume.bin', before).reduce((t, r) => t + rangeLength(r.headers['range']), 0);
    assert.equal(again, data.length - doneBytes, 'bytes requested again = bytes not yet durable');
  });

  it('reports durable ranges periodically while running (a crashed worker can still resume)', async () => {
    const data = await makeFile('ticking.bin', 8 * MiB);
    await engine.reconfigure({ checkpointIntervalMs: 100 });
    srv.faults.bytesPerSec = 2 * MiB;
    const seen: ResumeState[] = [];
    try {
      await engine.transfer(req(srv.url('/ticking.bin'), pathToFileURL(join(work, 'ticking.bin')).href), ctl({
        onCheckpoint: (s) => {
          seen.push(s);
          // Every reported range is already in the part file with the source's bytes.
          const part = readFileSync(s.tempPath!);
          for (const [a, b] of s.done) assert.ok(part.subarray(a, b).equals(data.subarray(a, b)), `range ${a}-${b}`);
        },
      }));
    } finally {
      srv.faults.bytesPerSec = undefined;
      await engine.reconfigure({ checkpointIntervalMs: 10_000 });
    }
    assert.ok(seen.length >= 2, `checkpoints while running: ${seen.length}`);
    const bytes = (s: ResumeState) => s.done.reduce((t, [a, b]) => t + b - a, 0);
    assert.ok(bytes(seen.at(-1)!) > bytes(seen[0]!), 'checkpoints grow');
  });

  it('heals a range reset mid-body within the attempt: only the missing remainder is requested again', async () => {
    const data = await makeFile('reset.bin', 8 * MiB);
    const dst = join(work, 'reset.bin');
    const before = srv.requests.length;
    srv.faults.resetAfter = { count: 2, afterBytes: 300_000 };
    const res = await engine.transfer(req(srv.url('/reset.bin'), pathToFileURL(dst).href), ctl());
    assert.deepEqual(await readFile(dst), data);
    assert.equal(res.checksum?.value, sum('adler32', data), 'partial-range sums combined correctly');
    const gets = rangeRequests('/reset.bin', before);
    assert.equal(gets.length, 8 + 2, 'two extra requests, one per reset');
    // The retries ask only for what was not received: they start inside their range, at most 300,000 bytes in
    // (the server resets after writing 300,000; frames still queued on its side may be dropped with the reset).
    const retryStarts = gets.map((r) => Number(/^bytes=(\d+)-/.exec(String(r.headers['range']))![1])).filter((o) => o % MiB !== 0);
    assert.equal(retryStarts.length, 2);
    for (const o of retryStarts) assert.ok(o % MiB > 0 && o % MiB <= 300_000, `retry starts ${o % MiB} bytes into its range`);
  });

  it('retries streams refused before their headers (REFUSED_STREAM / ENHANCE_YOUR_CALM style)', async () => {
    const data = await makeFile('refused.bin', 6 * MiB);
    srv.faults.resetAfter = { count: 3, afterBytes: 0 }; // the probe included
    const res = await engine.transfer(req(srv.url('/refused.bin'), pathToFileURL(join(work, 'refused.bin')).href), ctl());
    assert.equal(res.checksum?.value, sum('adler32', data));
    assert.equal(srv.faults.resetAfter.count, 0);
  });

  it('gives up on a range after its retries and reports a resumable checkpoint', async () => {
    await makeFile('broken.bin', 4 * MiB);
    await engine.reconfigure({ multiStream: { rangeRetries: 1 } });
    srv.faults.resetAfter = { count: 100, afterBytes: 100_000 };
    let checkpoint: ResumeState | undefined;
    try {
      await assert.rejects(engine.transfer(req(srv.url('/broken.bin'), pathToFileURL(join(work, 'broken.bin')).href), ctl({
        onCheckpoint: (s) => { checkpoint = s; },
      })), (e: unknown) => isCargoError(e) && e.retryable && e.code === 'CARGO_ERR_NETWORK');
    } finally {
      srv.faults.resetAfter = undefined;
      await engine.reconfigure({ multiStream: { rangeRetries: 3 } });
    }
    assert.ok(checkpoint && checkpoint.done.length > 0 && checkpoint.tempPath);
  });

  it('restarts from zero when the source changed between attempts', async () => {
    await makeFile('changing.bin', 8 * MiB);
    const dst = join(work, 'changing.bin');
    srv.faults.bytesPerSec = 1 * MiB;
    const ac = new AbortController();
    let checkpoint: ResumeState | undefined;
    try {
      await assert.rejects(engine.transfer(req(srv.url('/changing.bin'), pathToFileURL(dst).href), ctl({
        signal: ac.signal,
        onProgress: (p) => { if (p.bytes > 0) ac.abort(); },
        onCheckpoint: (s) => { checkpoint = s; },
      })));
    } finally {
      srv.faults.bytesPerSec = undefined;
    }
    assert.ok(checkpoint && checkpoint.done.length > 0);
    const fresh = await makeFile('changing.bin', 8 * MiB + 1);
    const res = await engine.transfer(req(srv.url('/changing.bin'), pathToFileURL(dst).href, { resume: checkpoint }), ctl());
    assert.equal(res.resumedBytes, 0);
    assert.deepEqual(await readFile(dst), fresh);
    assert.equal((await stat(dst)).size, fresh.length);
  });
});

describe('multi-stream push to a cargoport endpoint (ranged PUT)', () => {
  it('sends Content-Range parts with one upload id over several connections and verifies the result', async () => {
    const src = join(work, 'push-src.bin');
    const data = randomBytes(9 * MiB + 5);
    await writeFile(src, data);
    const before = srv.requests.length;
    await engine.configureEndpoint(srv.origin, { rangedUpload: true });
    try {
      const res = await engine.transfer(req(pathToFileURL(src).href, srv.url('/pushed/big.bin'), {
        verify: 'both', connections: 2, streams: 2, checksum: { alg: 'adler32', value: sum('adler32', data) },
      }), ctl());
      assert.equal(res.connections, 4);
      assert.equal(res.checksum?.value, sum('adler32', data));
    } finally {
      await engine.configureEndpoint(srv.origin, undefined);
    }
    assert.deepEqual(await readFile(join(srvRoot, 'pushed/big.bin')), data);
    const puts = srv.requests.slice(before).filter((r) => r.method === 'PUT');
    assert.equal(puts.length, 10);
    assert.equal(new Set(puts.map((r) => r.headers['cargo-upload-id'])).size, 1);
    assert.ok(puts.every((r) => /^bytes \d+-\d+\/9437189$/.test(String(r.headers['content-range']))));
    assert.ok(new Set(puts.map((r) => r.remotePort)).size >= 2, 'several connections');
  });

  it('pushes single-stream to endpoints not known to assemble ranged PUTs', async () => {
    const src = join(work, 'push-src2.bin');
    await writeFile(src, randomBytes(5 * MiB));
    const before = srv.requests.length;
    await engine.transfer(req(pathToFileURL(src).href, srv.url('/pushed/plain.bin'), { verify: 'none', connections: 2, streams: 2 }), ctl());
    const puts = srv.requests.slice(before).filter((r) => r.method === 'PUT');
    assert.equal(puts.length, 1);
    assert.equal(puts[0]!.headers['content-range'], undefined);
  });
});

describe('multi-connection pull over HTTP/1.1', () => {
  let h1: H2FileServer;
  before(async () => { h1 = await startH2FileServer({ root: srvRoot, http1Only: true }); });
  after(async () => { await h1.close(); });

  it('moves a file smaller than one range with a single request (the probe) and no HEAD', async () => {
    const data = await makeFile('onerange.bin', MiB - 10);
    const before = srv.requests.length;
    const res = await engine.transfer(req(srv.url('/onerange.bin'), pathToFileURL(join(work, 'onerange.bin')).href), ctl());
    assert.equal(res.checksum?.value, sum('adler32', data));
    assert.equal(srv.requests.length - before, 1);
  });

  it('uses connections × streams separate HTTP/1.1 connections', async () => {
    const data = await makeFile('h1big.bin', 9 * MiB);
    const dst = join(work, 'h1big.bin');
    const res = await engine.transfer(req(h1.url('/h1big.bin'), pathToFileURL(dst).href), ctl());
    assert.deepEqual(await readFile(dst), data);
    assert.equal(res.protocol, 'http/1.1');
    assert.equal(res.streams, 1);
    const gets = h1.requests.filter((r) => r.method === 'GET');
    assert.equal(gets.length, 9);
    assert.ok(new Set(gets.map((r) => r.remotePort)).size > 2, 'several TCP connections');
  });
});
