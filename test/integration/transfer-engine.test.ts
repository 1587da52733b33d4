/**
 * The transfer engine against a real HTTPS server (node:http2, TLS, h2 with HTTP/1.1 fallback) on loopback:
 * pull, push, copy, stream-through; atomic publish; checksum verification; error classification; abort with
 * resume; pause gate; rate limiters; stall watchdog.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lookup as dnsLookup, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createChecksummer } from '../../services/checksum/checksummer.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { defaultMultiStreamPolicy } from '../../services/transfer/pull/multi-stream.js';
import type { RateLimiter, ResumeState, TransferControl, TransferProgress, TransferRequest } from '../../services/transfer/types.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { isCargoError } from '../../errors/cargo-error.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

let srv: H2FileServer;
let srvRoot: string;
let work: string;

function adler(buf: Buffer): string {
  const s = createChecksummer('adler32');
  s.update(buf);
  return s.digestHex();
}

function ctl(extra: Partial<TransferControl> = {}): TransferControl {
  return { signal: new AbortController().signal, gate: new PauseGate(), ...extra };
}

function req(source: string, destination: string, extra: Partial<TransferRequest> = {}): TransferRequest {
  return { source, destination, verify: 'none', overwrite: false, ...extra };
}

async function makeFile(name: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await writeFile(join(srvRoot, name), data);
  return data;
}

async function partFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.cargoport-part-'));
}

async function rejectsWithCode(p: Promise<unknown>, code: string, retryable?: boolean): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isCargoError(e), `expected CargoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (retryable !== undefined) assert.equal(e.retryable, retryable, `retryable for ${e.code}`);
    return true;
  });
}

before(async () => {
  srvRoot = await mkdtemp(join(tmpdir(), 'cargoport-srv-'));
  work = await mkdtemp(join(tmpdir(), 'cargoport-dst-'));
  srv = await startH2FileServer({ root: srvRoot });
  await engine.reconfigure({ ca: testTls().cert, connections: 1, streams: 4 });
});

after(async () => {
  await engine.close();
  await srv.close();
  await rm(srvRoot, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe('transfer engine: modes', () => {
  it('pulls https → file over h2, verified against the source Digest, published atomically', async () => {
    const data = await makeFile('pull.bin', 3 * 1024 * 1024 + 17);
    const dst = join(work, 'pull.bin');
    const progress: TransferProgress[] = [];
    const res = await engine.transfer(req(srv.url('/pull.bin'), pathToFileURL(dst).href, { verify: 'source' }),
      ctl({ onProgress: (p) => progress.push(p) }));
    assert.deepEqual(await readFile(dst), data);
    assert.equal(res.bytes, data.length);
    assert.equal(res.resumedBytes, 0);
    assert.equal(res.protocol, 'h2');
    assert.equal(res.remoteIp, '127.0.0.1');
    assert.deepEqual(res.checksum, { alg: 'adler32', value: adler(data) });
    assert.equal(progress.at(-1)?.bytes, data.length);
    assert.deepEqual(await partFiles(work), []);
    const get = srv.requests.findLast((r) => r.path === '/pull.bin');
    assert.equal(get?.headers['want-digest'], 'adler32');
  });

  it('pushes file → https PUT and verifies the destination digest', async () => {
    const src = join(work, 'push-src.bin');
    const data = randomBytes(2 * 1024 * 1024 + 5);
    await writeFile(src, data);
    const res = await engine.transfer(req(pathToFileURL(src).href, srv.url('/up/push.bin'), { verify: 'destination' }), ctl());
    assert.deepEqual(await readFile(join(srvRoot, 'up/push.bin')), data);
    assert.equal(res.bytes, data.length);
    assert.equal(res.checksum?.value, adler(data));
    const put = srv.requests.findLast((r) => r.method === 'PUT');
    assert.equal(put?.headers['content-length'], String(data.length));
    assert.equal(put?.headers['if-none-match'], '*');
  });

  it('copies file → file with a user-supplied checksum', async () => {
    const src = join(work, 'copy-src.bin');
    const data = randomBytes(1024 * 1024 + 3);
    await writeFile(src, data);
    const dst = join(work, 'sub', 'copy.bin');
    const res = await engine.transfer(req(pathToFileURL(src).href, pathToFileURL(dst).href, {
      verify: 'both', checksum: { alg: 'adler32', value: adler(data) },
    }), ctl());
    assert.equal(res.protocol, 'file');
    assert.deepEqual(await readFile(dst), data);
  });

  it('streams https → https without touching local disk', async () => {
    const data = await makeFile('through.bin', 1024 * 1024 + 11);
    const res = await engine.transfer(req(srv.url('/through.bin'), srv.url('/copies/through.bin'), { verify: 'both' }), ctl());
    assert.deepEqual(await readFile(join(srvRoot, 'copies/through.bin')), data);
    assert.equal(res.checksum?.value, adler(data));
  });

  it('transfers an empty file', async () => {
    await makeFile('empty.bin', 0);
    const dst = join(work, 'empty.bin');
    const res = await engine.transfer(req(srv.url('/empty.bin'), pathToFileURL(dst).href, { verify: 'source' }), ctl());
    assert.equal(res.bytes, 0);
    assert.equal((await stat(dst)).size, 0);
  });
});

describe('transfer engine: refusals and error classification', () => {
  it('verify source against a source that sends no checksum: refused before the body is downloaded (single and ranged)', async () => {
    await makeFile('no-digest.bin', 6 * 1024 * 1024);
    await engine.reconfigure({ multiStream: { ...defaultMultiStreamPolicy, minFileBytes: 2 * 1024 * 1024, rangeBytes: 1024 * 1024 } });
    srv.faults.noDigest = true;
    try {
      for (const [label, connections, streams] of [['single', 1, 1], ['ranged', 2, 2]] as const) {
        const dst = join(work, `no-digest-${label}.bin`);
        let bytes = 0;
        const before = srv.requests.length;
        await rejectsWithCode(
          engine.transfer(req(srv.url('/no-digest.bin'), pathToFileURL(dst).href, { verify: 'source', checksum: { alg: 'adler32' }, connections, streams }),
            ctl({ onProgress: (p) => { bytes = Math.max(bytes, p.bytes); } })),
          'CARGO_ERR_CHECKSUM_UNAVAILABLE', false);
        assert.equal(bytes, 0, `${label}: no byte stored before the refusal`);
        const gets = srv.requests.slice(before).filter((r) => r.method === 'GET');
        assert.ok(gets.length <= 1, `${label}: at most the opening GET (${gets.length} GETs)`);
        await assert.rejects(stat(dst), { code: 'ENOENT' });
        assert.deepEqual(await partFiles(work), [], `${label}: no part file left`);
      }
    } finally {
      srv.faults.noDigest = false;
      await engine.reconfigure({ multiStream: defaultMultiStreamPolicy });
    }
  });

  it('refuses to overwrite an existing destination (CARGO_ERR_DEST_EXISTS) and leaves it intact', async () => {
    await makeFile('exists.bin', 1000);
    const dst = join(work, 'exists.bin');
    await writeFile(dst, 'keep me');
    await rejectsWithCode(engine.transfer(req(srv.url('/exists.bin'), pathToFileURL(dst).href), ctl()), 'CARGO_ERR_DEST_EXISTS', false);
    assert.equal(await readFile(dst, 'utf8'), 'keep me');
    // …and replaces it when overwrite is true.
    await engine.transfer(req(srv.url('/exists.bin'), pathToFileURL(dst).href, { overwrite: true }), ctl());
    assert.equal((await stat(dst)).size, 1000);
  });

  it('refuses a remote destination that exists when overwrite is false', async () => {
    await makeFile('remote-exists.bin', 10);
    const src = join(work, 'small.bin');
    await writeFile(src, 'x');
    await rejectsWithCode(engine.transfer(req(pathToFileURL(src).href, srv.url('/remote-exists.bin')), ctl()), 'CARGO_ERR_DEST_EXISTS', false);
  });

  it('classifies 404, 401, 403, 400 as fatal and 500/503 as retryable', async () => {
    const dst = (n: string) => pathToFileURL(join(work, n)).href;
    await rejectsWithCode(engine.transfer(req(srv.url('/missing.bin'), dst('m1')), ctl()), 'CARGO_ERR_SOURCE_NOT_FOUND', false);
    await makeFile('guarded.bin', 100);
    for (const [status, code, retryable] of [
      [401, 'CARGO_ERR_AUTH', false], [403, 'CARGO_ERR_AUTH', false], [400, 'CARGO_ERR_HTTP_4XX', false],
      [500, 'CARGO_ERR_HTTP_5XX', true], [503, 'CARGO_ERR_HTTP_5XX', true],
    ] as const) {
      srv.faults.failNext = { count: 1, status };
      await rejectsWithCode(engine.transfer(req(srv.url('/guarded.bin'), dst(`g${status}`)), ctl()), code, retryable);
    }
    assert.deepEqual(await partFiles(work), []);
  });

  it('rejects unsupported schemes with CARGO_ERR_UNSUPPORTED_SCHEME naming the field', async () => {
    await assert.rejects(engine.transfer(req('ftp://example.org/x', pathToFileURL(join(work, 'x')).href), ctl()),
      (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_UNSUPPORTED_SCHEME' && e.field === 'source');
    await assert.rejects(engine.transfer(req(srv.url('/pull.bin'), 's3://bucket/x'), ctl()),
      (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_UNSUPPORTED_SCHEME' && e.field === 'destination');
  });

  it('fails with a retryable network error when nothing listens, without replaying the request', async () => {
    // One connect of the pooled connection (the connector retries a refusal itself, paced): the request is not
    // replayed on top, which would hold a worker slot several times as long against an endpoint that is down.
    // (The undici path, counted through its Client's events; the bulk receive path is checked below.)
    const origin = 'https://127.0.0.1:1';
    await engine.reconfigure({ bulkReceive: false });
    const [pooled] = engine.pool.clientsFor(origin, 1);
    let connectFailures = 0;
    const onError = (): void => { connectFailures++; };
    pooled!.client.on('connectionError', onError);
    try {
      await rejectsWithCode(engine.transfer(req(`${origin}/x`, pathToFileURL(join(work, 'nl')).href), ctl()),
        'CARGO_ERR_NETWORK', true);
    } finally {
      pooled!.client.off('connectionError', onError);
      await engine.reconfigure({ bulkReceive: true });
    }
    assert.equal(connectFailures, 1);
    // The bulk receive path reports the refusal itself (classified, its cause's code kept), with no undici
    // connection attempted on top.
    const [again] = engine.pool.clientsFor(origin, 1);
    let undiciConnects = 0;
    const onUndici = (): void => { undiciConnects++; };
    again!.client.on('connectionError', onUndici);
    try {
      await assert.rejects(engine.transfer(req(`${origin}/x`, pathToFileURL(join(work, 'nl2')).href), ctl()), (e: unknown) => {
        assert.ok(isCargoError(e) && e.code === 'CARGO_ERR_NETWORK' && e.retryable, String(e));
        assert.equal((e.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
        return true;
      });
    } finally {
      again!.client.off('connectionError', onUndici);
    }
    assert.equal(undiciConnects, 0);
  });

  it('reports a checksum mismatch (retryable) and publishes nothing', async () => {
    await makeFile('bad.bin', 200_000);
    const dst = join(work, 'bad.bin');
    srv.faults.wrongDigest = true;
    try {
      await rejectsWithCode(engine.transfer(req(srv.url('/bad.bin'), pathToFileURL(dst).href, { verify: 'source' }), ctl()),
        'CARGO_ERR_CHECKSUM_MISMATCH', true);
    } finally {
      srv.faults.wrongDigest = false;
    }
    await assert.rejects(stat(dst), { code: 'ENOENT' });
    assert.deepEqual(await partFiles(work), []);
  });

  it('checks a user-supplied checksum value even when verify is none', async () => {
    await makeFile('uservalue.bin', 5000);
    const dst = join(work, 'uservalue.bin');
    await rejectsWithCode(engine.transfer(req(srv.url('/uservalue.bin'), pathToFileURL(dst).href, {
      checksum: { alg: 'adler32', value: '00000001' },
    }), ctl()), 'CARGO_ERR_CHECKSUM_MISMATCH', true);
    await assert.rejects(stat(dst), { code: 'ENOENT' });
  });
});

describe('transfer engine: abort, resume, pause, throttle, stall', () => {
  it('aborts promptly, keeps the part file, and the next attempt resumes with Range + If-Range', async () => {
    const data = await makeFile('resume.bin', 4 * 1024 * 1024);
    const dst = join(work, 'resume.bin');
    srv.faults.bytesPerSec = 4 * 1024 * 1024;
    const ac = new AbortController();
    let checkpoint: ResumeState | undefined;
    try {
      const p = engine.transfer(req(srv.url('/resume.bin'), pathToFileURL(dst).href, { verify: 'source' }), ctl({
        signal: ac.signal,
        onProgress: (pr) => { if (pr.bytes >= 512 * 1024) ac.abort(); },
        onCheckpoint: (s) => { checkpoint = s; },
      }));
      await rejectsWithCode(p, 'CARGO_ERR_ABORTED', false);
    } finally {
      srv.faults.bytesPerSec = undefined;
    }
    assert.ok(checkpoint?.tempPath, 'checkpoint names the part file');
    const done = checkpoint.done[0]![1];
    assert.ok(done >= 512 * 1024 && done < data.length, `done ${done}`);
    assert.equal((await stat(checkpoint.tempPath)).size >= done, true);
    assert.ok(checkpoint.etag);
    await assert.rejects(stat(dst), { code: 'ENOENT' });

    const res = await engine.transfer(req(srv.url('/resume.bin'), pathToFileURL(dst).href, { verify: 'source', resume: checkpoint }), ctl());
    assert.equal(res.resumedBytes, done);
    assert.deepEqual(await readFile(dst), data);
    assert.equal(res.checksum?.value, adler(data));
    const last = srv.requests.findLast((r) => r.path === '/resume.bin');
    assert.equal(last?.headers['range'], `bytes=${done}-${data.length - 1}`, 'a closed range: the size is known from the checkpoint');
    assert.equal(last?.headers['if-range'], checkpoint.etag);
    assert.deepEqual(await partFiles(work), []);
  });

  it('reports the durable prefix periodically while a single-stream pull runs', async () => {
    const data = await makeFile('ticking.bin', 3 * 1024 * 1024);
    await engine.reconfigure({ checkpointIntervalMs: 100 });
    srv.faults.bytesPerSec = 4 * 1024 * 1024;
    const seen: ResumeState[] = [];
    try {
      await engine.transfer(req(srv.url('/ticking.bin'), pathToFileURL(join(work, 'ticking.bin')).href), ctl({
        onCheckpoint: (s) => {
          seen.push(s);
          const part = readFileSync(s.tempPath!);
          const [[a, b]] = s.done as [[number, number]];
          assert.ok(part.subarray(a, b).equals(data.subarray(a, b)));
        },
      }));
    } finally {
      srv.faults.bytesPerSec = undefined;
      await engine.reconfigure({ checkpointIntervalMs: 10_000 });
    }
    assert.ok(seen.length >= 2, `checkpoints while running: ${seen.length}`);
    assert.ok(seen.every((s) => s.etag !== undefined && s.done[0]![0] === 0));
  });

  it('starts over when the source changed since the partial copy (If-Range mismatch)', async () => {
    await makeFile('changed.bin', 2 * 1024 * 1024);
    const dst = join(work, 'changed.bin');
    // The first response and each of its 3 in-attempt continuations are reset: the attempt fails.
    srv.faults.resetAfter = { count: 4, afterBytes: 175_000 };
    let checkpoint: ResumeState | undefined;
    await rejectsWithCode(engine.transfer(req(srv.url('/changed.bin'), pathToFileURL(dst).href), ctl({
      onCheckpoint: (s) => { checkpoint = s; },
    })), 'CARGO_ERR_NETWORK', true);
    assert.ok(checkpoint && checkpoint.done.length === 1);
    const fresh = await makeFile('changed.bin', 2 * 1024 * 1024);
    await utimes(join(srvRoot, 'changed.bin'), new Date(), new Date(Date.now() + 5000));
    const res = await engine.transfer(req(srv.url('/changed.bin'), pathToFileURL(dst).href, { resume: checkpoint, verify: 'source' }), ctl());
    assert.equal(res.resumedBytes, 0);
    assert.deepEqual(await readFile(dst), fresh);
  });

  it('a connection reset mid-body is retryable and the retry resumes', async () => {
    const data = await makeFile('reset.bin', 3 * 1024 * 1024);
    const dst = join(work, 'reset.bin');
    // The first response and each of its 3 in-attempt continuations are reset: the attempt fails, and the
    // next attempt must resume from the checkpoint (≤ 4 × 256 KiB received).
    srv.faults.resetAfter = { count: 4, afterBytes: 256 * 1024 };
    let checkpoint: ResumeState | undefined;
    await rejectsWithCode(engine.transfer(req(srv.url('/reset.bin'), pathToFileURL(dst).href), ctl({
      onCheckpoint: (s) => { checkpoint = s; },
    })), 'CARGO_ERR_NETWORK', true);
    const res = await engine.transfer(req(srv.url('/reset.bin'), pathToFileURL(dst).href, { resume: checkpoint }), ctl());
    assert.ok(res.resumedBytes > 0 && res.resumedBytes <= 1024 * 1024, `resumed ${res.resumedBytes}`);
    assert.deepEqual(await readFile(dst), data);
  });

  it('survives a GOAWAY mid-body: the attempt completes or fails retryably, and the next one finishes', async () => {
    const data = await makeFile('goaway.bin', 3 * 1024 * 1024);
    const dst = join(work, 'goaway.bin');
    srv.faults.goawayAfter = { count: 1, afterBytes: 256 * 1024 };
    let checkpoint: ResumeState | undefined;
    let res;
    try {
      res = await engine.transfer(req(srv.url('/goaway.bin'), pathToFileURL(dst).href), ctl({ onCheckpoint: (s) => { checkpoint = s; } }));
    } catch (e) {
      assert.ok(isCargoError(e) && e.retryable, `retryable after GOAWAY: ${String(e)}`);
      res = await engine.transfer(req(srv.url('/goaway.bin'), pathToFileURL(dst).href, { resume: checkpoint }), ctl());
    }
    assert.equal(res.bytes, data.length);
    assert.deepEqual(await readFile(dst), data);
    // The pool must open a fresh session for later transfers (requests after GOAWAY hung in old undici).
    const again = await engine.transfer(req(srv.url('/goaway.bin'), pathToFileURL(join(work, 'goaway2.bin')).href), ctl());
    assert.equal(again.bytes, data.length);
  });

  it('times out a source that accepts the request but never answers (first byte), retryably', async () => {
    await makeFile('silent.bin', 1000);
    await engine.reconfigure({ headersTimeoutMs: 300 });
    srv.faults.holdNext = { count: 1 };
    try {
      await rejectsWithCode(engine.transfer(req(srv.url('/silent.bin'), pathToFileURL(join(work, 'silent.bin')).href), ctl()),
        'CARGO_ERR_TIMEOUT', true);
    } finally {
      await engine.reconfigure({ headersTimeoutMs: 60_000 });
    }
  });

  it('holds all bytes while the gate is closed and continues when it opens', async () => {
    const data = await makeFile('paused.bin', 1024 * 1024);
    const dst = join(work, 'paused.bin');
    const gate = new PauseGate();
    gate.close();
    let reported = 0;
    const p = engine.transfer(req(srv.url('/paused.bin'), pathToFileURL(dst).href), ctl({
      gate, onProgress: (pr) => { reported = pr.bytes; },
    }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reported, 0, 'no progress while paused');
    await assert.rejects(stat(dst), { code: 'ENOENT' });
    gate.openGate();
    const res = await p;
    assert.equal(res.bytes, data.length);
    assert.deepEqual(await readFile(dst), data);
  });

  it('aborts a paused transfer promptly', async () => {
    await makeFile('paused-abort.bin', 100_000);
    const gate = new PauseGate();
    gate.close();
    const ac = new AbortController();
    const p = engine.transfer(req(srv.url('/paused-abort.bin'), pathToFileURL(join(work, 'pa.bin')).href), ctl({ gate, signal: ac.signal }));
    setTimeout(() => ac.abort(), 50);
    await rejectsWithCode(p, 'CARGO_ERR_ABORTED');
  });

  it('asks every rate limiter for exactly the bytes that moved', async () => {
    const data = await makeFile('limited.bin', 777_777);
    let taken = 0;
    let waits = 0;
    const limiter: RateLimiter = {
      take(n) {
        taken += n;
        if (taken % 3 === 0) return null;
        waits++;
        return new Promise((r) => setImmediate(r));
      },
    };
    const res = await engine.transfer(req(srv.url('/limited.bin'), pathToFileURL(join(work, 'limited.bin')).href), ctl({ limiters: [limiter, limiter] }));
    assert.equal(res.bytes, data.length);
    assert.equal(taken, 2 * data.length);
    assert.ok(waits > 0);
  });

  it('detects a stalled source (CARGO_ERR_STALLED, retryable) and keeps the partial data', async () => {
    await makeFile('stall.bin', 2 * 1024 * 1024);
    await engine.reconfigure({ stall: { idleMs: 400, minBytesPerSec: 0, windowMs: 1000 } });
    srv.faults.stallAfter = { count: 1, afterBytes: 300_000 };
    let checkpoint: ResumeState | undefined;
    try {
      await rejectsWithCode(engine.transfer(req(srv.url('/stall.bin'), pathToFileURL(join(work, 'stall.bin')).href), ctl({
        onCheckpoint: (s) => { checkpoint = s; },
      })), 'CARGO_ERR_STALLED', true);
    } finally {
      await engine.reconfigure({ stall: { idleMs: 60_000, minBytesPerSec: 10 * 1024, windowMs: 120_000 } });
    }
    assert.ok(checkpoint && checkpoint.done.length === 1 && checkpoint.done[0]![1] > 0);
  });

  it('does not call a paused transfer stalled', async () => {
    const data = await makeFile('pause-nostall.bin', 300_000);
    await engine.reconfigure({ stall: { idleMs: 150, minBytesPerSec: 0, windowMs: 1000 } });
    const gate = new PauseGate();
    gate.close();
    try {
      const p = engine.transfer(req(srv.url('/pause-nostall.bin'), pathToFileURL(join(work, 'pns.bin')).href), ctl({ gate }));
      await new Promise((r) => setTimeout(r, 600));
      gate.openGate();
      const res = await p;
      assert.equal(res.bytes, data.length);
    } finally {
      await engine.reconfigure({ stall: { idleMs: 60_000, minBytesPerSec: 10 * 1024, windowMs: 120_000 } });
    }
  });
});

describe('transfer engine: HTTP/1.1 endpoints', () => {
  let h1: H2FileServer;
  before(async () => { h1 = await startH2FileServer({ root: srvRoot, http1Only: true }); });
  after(async () => { await h1.close(); });

  it('pulls and pushes over HTTP/1.1 when the server does not offer h2', async () => {
    const data = await makeFile('h1.bin', 1024 * 1024 + 1);
    const dst = join(work, 'h1.bin');
    const pulled = await engine.transfer(req(h1.url('/h1.bin'), pathToFileURL(dst).href, { verify: 'source' }), ctl());
    assert.equal(pulled.protocol, 'http/1.1');
    assert.deepEqual(await readFile(dst), data);
    const pushed = await engine.transfer(req(pathToFileURL(dst).href, h1.url('/h1-up/h1.bin'), { verify: 'destination' }), ctl());
    assert.equal(pushed.protocol, 'http/1.1');
    assert.deepEqual(await readFile(join(srvRoot, 'h1-up/h1.bin')), data);
    assert.ok(h1.requests.every((r) => r.httpVersion === '1.1'));
  });

  it('per-endpoint override: HTTP/1.1 only for one origin, h2 again once cleared', async () => {
    await makeFile('override.bin', 100_000);
    try {
      await engine.configureEndpoint(srv.origin, { http1Only: true });
      const r1 = await engine.transfer(req(srv.url('/override.bin'), pathToFileURL(join(work, 'ov1.bin')).href), ctl());
      assert.equal(r1.protocol, 'http/1.1');
    } finally {
      await engine.configureEndpoint(srv.origin, undefined);
    }
    const r2 = await engine.transfer(req(srv.url('/override.bin'), pathToFileURL(join(work, 'ov2.bin')).href), ctl());
    assert.equal(r2.protocol, 'h2');
  });

  it('runs concurrent transfers to an HTTP/1.1 origin on separate connections, not queued on one', async () => {
    const files = await Promise.all(Array.from({ length: 6 }, (_, i) => makeFile(`h1c${i}.bin`, 512 * 1024)));
    const before = h1.requests.length;
    h1.faults.bytesPerSec = 4 * 1024 * 1024; // keep them overlapping
    try {
      await Promise.all(files.map((_, i) =>
        engine.transfer(req(h1.url(`/h1c${i}.bin`), pathToFileURL(join(work, `h1c${i}.bin`)).href), ctl())));
    } finally {
      h1.faults.bytesPerSec = undefined;
    }
    for (let i = 0; i < files.length; i++) assert.deepEqual(await readFile(join(work, `h1c${i}.bin`)), files[i]);
    const ports = new Set(h1.requests.slice(before).map((r) => r.remotePort));
    assert.ok(ports.size >= 3, `connections used: ${ports.size}`);
  });
});

describe('transfer engine: IPv6', () => {
  it('pulls from https://[::1]:port and records the IPv6 remote address', async (t) => {
    let v6: H2FileServer;
    try {
      v6 = await startH2FileServer({ root: srvRoot, host: '::1' });
    } catch (e) {
      t.skip(`no IPv6 loopback here: ${(e as Error).message}`);
      return;
    }
    try {
      const data = await makeFile('v6.bin', 200_000);
      const res = await engine.transfer(req(v6.url('/v6.bin'), pathToFileURL(join(work, 'v6.bin')).href, { verify: 'source' }), ctl());
      assert.equal(res.remoteIp, '::1');
      assert.deepEqual(await readFile(join(work, 'v6.bin')), data);
    } finally {
      await v6.close();
    }
  });
});

// Last in this file: it installs a resolver for `localhost` in the engine (other tests use IP literals).
describe('transfer engine: several addresses for one name (happy eyeballs)', () => {
  /** Answers `localhost` (the name the test certificate carries) with `addresses`, in that order. */
  const resolver = (addresses: Array<[string, 4 | 6]>): LookupFunction => ((hostname: string, options: LookupOptions, callback: (...a: unknown[]) => void) => {
    if (hostname !== 'localhost') return dnsLookup(hostname, options, callback as never);
    const all = addresses.map(([address, family]) => ({ address, family }));
    if (options.all) callback(null, all);
    else callback(null, all[0]!.address, all[0]!.family);
  }) as LookupFunction;

  for (const bulkReceive of [true, false]) {
    const path = bulkReceive ? 'bulk receive path' : 'undici';
    it(`an IPv6 answer first, served on IPv4 only, and the reverse: both pulled (${path})`, async () => {
      const data = await makeFile(`he-${bulkReceive}.bin`, 300_000);
      for (const [host, order] of [['127.0.0.1', [['::1', 6], ['127.0.0.1', 4]]], ['::1', [['127.0.0.1', 4], ['::1', 6]]]] as const) {
        const only = await startH2FileServer({ root: srvRoot, host });
        try {
          await engine.reconfigure({ bulkReceive, lookup: resolver(order as unknown as Array<[string, 4 | 6]>) });
          const out = join(work, `he-${bulkReceive}-${host}.bin`);
          const res = await engine.transfer(req(`https://localhost:${only.port}/he-${bulkReceive}.bin`, pathToFileURL(out).href), ctl());
          assert.equal(res.remoteIp, host);
          assert.deepEqual(await readFile(out), data);
        } finally {
          await engine.close();
          await only.close();
        }
      }
    });

    it(`an address that never answers the connect: the next one is tried, not the connect timeout (${path})`, async () => {
      const data = await makeFile(`silent-${bulkReceive}.bin`, 300_000);
      const real = await startH2FileServer({ root: srvRoot, host: '127.0.0.1' });
      // 127.0.0.2, same port: a listener that never accepts, its one-slot queue already full, so SYNs go unanswered.
      const silent = spawn('python3', ['-c', [
        'import socket, sys, time',
        's = socket.socket(); s.bind(("127.0.0.2", int(sys.argv[1]))); s.listen(0)',
        'c = socket.create_connection(("127.0.0.2", int(sys.argv[1])))',
        'print("ready", flush=True); time.sleep(120)',
      ].join('\n'), String(real.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          silent.stdout!.once('data', () => resolve());
          silent.once('exit', (code) => reject(new Error(`silent listener exited (${code})`)));
        });
        // A connect timeout far beyond the test: the pull only succeeds if the dead address is left after 250 ms.
        await engine.reconfigure({ bulkReceive, connectTimeoutMs: 600_000, lookup: resolver([['127.0.0.2', 4], ['127.0.0.1', 4]]) });
        const out = join(work, `silent-${bulkReceive}.bin`);
        const res = await engine.transfer(req(`https://localhost:${real.port}/silent-${bulkReceive}.bin`, pathToFileURL(out).href), ctl());
        assert.equal(res.remoteIp, '127.0.0.1');
        assert.deepEqual(await readFile(out), data);
      } finally {
        silent.kill();
        await engine.close();
        await real.close();
      }
    });
  }
});
