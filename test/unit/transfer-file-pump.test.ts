/**
 * FilePump, the download hot path, against in-memory streams: batching into writev, back-pressure holds for the
 * gate / limiters / disk, bytes already received written out on failure, and a source that died unobserved.
 */
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ProgressMeter } from '../../services/transfer/push/byte-pump.js';
import { FilePump } from '../../services/transfer/pull/file-pump.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import type { RateLimiter } from '../../services/transfer/types.js';

function sink() {
  const writes: Array<{ at: number; bytes: number }> = [];
  const data: Buffer[] = [];
  return {
    writes, data,
    writev: async (bufs: Buffer[], at: number) => {
      let n = 0;
      for (const b of bufs) { n += b.length; data.push(Buffer.from(b)); }
      writes.push({ at, bytes: n });
      await new Promise((r) => setImmediate(r));
    },
  };
}

const chunks = (count: number, size: number) => Array.from({ length: count }, (_, i) => Buffer.alloc(size, i % 256));

describe('FilePump', () => {
  it('copies small chunks of a non-recycling source into pooled chunks (the fresh ones die young); bytes and order kept', async () => {
    const parts = Array.from({ length: 300 }, (_, i) => Buffer.alloc(1000 + (i % 7) * 3000, (i * 13) & 0xff));
    const big = Buffer.alloc(200 * 1024, 0x5a); // larger than a pooled copy is made for: written as it came
    const all = [...parts, big];
    const written: Buffer[] = [];
    let sawBig = false;
    const pump = new FilePump({
      source: Readable.from(all), position: 0,
      writev: async (bufs) => {
        for (const b of bufs) {
          assert.ok(!parts.some((p) => p.buffer === b.buffer), 'a small chunk is written from its pooled copy');
          if (b === big) sawBig = true;
          written.push(Buffer.from(b));
        }
        await new Promise((r) => setImmediate(r));
      },
      signal: new AbortController().signal, gate: new PauseGate(), progress: new ProgressMeter(0, undefined, undefined),
      flushBytes: 256 * 1024,
    });
    const total = all.reduce((t, b) => t + b.length, 0);
    assert.equal(await pump.run(), total);
    assert.ok(sawBig, 'a large chunk is not copied');
    assert.ok(Buffer.concat(written).equals(Buffer.concat(all)), 'every byte, in order');
  });

  it('batches small chunks into few positional writes and ends at the right position', async () => {
    const s = sink();
    const pump = new FilePump({
      source: Readable.from(chunks(256, 8192)), writev: s.writev, position: 1000,
      signal: new AbortController().signal, gate: new PauseGate(), progress: new ProgressMeter(1000, undefined, undefined),
      flushBytes: 512 * 1024, flushAfterMs: 60_000,
    });
    assert.equal(await pump.run(), 1000 + 256 * 8192);
    assert.ok(s.writes.length <= 5, `writes: ${s.writes.length}`);
    assert.equal(s.writes[0]!.at, 1000);
    for (let i = 1; i < s.writes.length; i++) assert.equal(s.writes[i]!.at, s.writes[i - 1]!.at + s.writes[i - 1]!.bytes);
    assert.equal(pump.received, 256 * 8192);
  });

  it('holds the source while the gate is closed and resumes when it opens', async () => {
    const src = new PassThrough();
    const gate = new PauseGate();
    const s = sink();
    const pump = new FilePump({
      source: src, writev: s.writev, position: 0, signal: new AbortController().signal, gate,
      progress: new ProgressMeter(0, undefined, undefined), flushBytes: 1,
    });
    const done = pump.run();
    gate.close();
    src.write(Buffer.alloc(10));
    await new Promise((r) => setImmediate(r));
    assert.equal(src.isPaused(), true, 'source paused behind the closed gate');
    gate.openGate();
    await new Promise((r) => setImmediate(r));
    assert.equal(src.isPaused(), false);
    src.end(Buffer.alloc(5));
    assert.equal(await done, 15);
  });

  it('waits for every limiter before taking more', async () => {
    let release!: () => void;
    const limiter: RateLimiter = { take: () => new Promise<void>((r) => { release = r; }) };
    const src = new PassThrough();
    const s = sink();
    const pump = new FilePump({
      source: src, writev: s.writev, position: 0, signal: new AbortController().signal, gate: new PauseGate(),
      limiters: [limiter], progress: new ProgressMeter(0, undefined, undefined),
    });
    const done = pump.run();
    src.write(Buffer.alloc(100));
    await new Promise((r) => setImmediate(r));
    assert.equal(src.isPaused(), true);
    release();
    await new Promise((r) => setImmediate(r));
    assert.equal(src.isPaused(), false);
    src.end();
    await new Promise((r) => setImmediate(r));
    release();
    assert.equal(await done, 100);
  });

  it('on a source error writes what already arrived, then rejects with position covering it', async () => {
    const src = new PassThrough();
    const s = sink();
    const pump = new FilePump({
      source: src, writev: s.writev, position: 0, signal: new AbortController().signal, gate: new PauseGate(),
      progress: new ProgressMeter(0, undefined, undefined), flushBytes: 1 << 20, flushAfterMs: 60_000,
    });
    const done = pump.run();
    src.write(Buffer.alloc(3000, 7));
    await new Promise((r) => setImmediate(r));
    src.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    await assert.rejects(done, /reset/);
    assert.equal(pump.position, 3000);
    assert.equal(Buffer.concat(s.data).length, 3000);
  });

  it('fails at once on a source that was already destroyed (no hang)', async () => {
    const src = new PassThrough();
    src.on('error', () => undefined);
    src.destroy(new Error('died unobserved'));
    await new Promise((r) => setImmediate(r));
    const pump = new FilePump({
      source: src, writev: sink().writev, position: 0, signal: new AbortController().signal, gate: new PauseGate(),
      progress: new ProgressMeter(0, undefined, undefined),
    });
    await assert.rejects(pump.run(), /died unobserved/);
  });

  it('aborts promptly on the signal', async () => {
    const src = new PassThrough();
    const ac = new AbortController();
    const pump = new FilePump({
      source: src, writev: sink().writev, position: 0, signal: ac.signal, gate: new PauseGate(),
      progress: new ProgressMeter(0, undefined, undefined),
    });
    const done = pump.run();
    ac.abort();
    await assert.rejects(done, (e: unknown) => (e as { code?: string }).code === 'CARGO_ERR_ABORTED');
    assert.equal(src.destroyed, true);
  });
});
