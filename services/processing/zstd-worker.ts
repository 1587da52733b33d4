/**
 * A worker thread of the zstd pool: holds (de)compression sessions and runs zstd-napi's streaming calls, which are
 * synchronous native calls (they would block whichever thread calls them — here this one, not the event loop).
 *
 * Output is credit-based: a session sends an output message only while it holds a credit, and stops (keeping its
 * input) when it has none. So a slow consumer pauses the session, and a decompression bomb (a small input that
 * expands a thousandfold) never produces more than `credits × outputBytes` ahead of its reader.
 */
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import type { FromZstdWorker, ToZstdWorker, ZstdSessionParams } from './zstd-worker-protocol.js';
import { ProcessingError } from './processing-errors.js';

const binding = createRequire(import.meta.url)('zstd-napi/binding') as typeof ZstdBinding;
const port = parentPort!;

interface PendingInput {
  buf: ArrayBuffer;
  view: Uint8Array;
  offset: number;
  end: boolean;
}

interface Session {
  id: number;
  params: ZstdSessionParams;
  cctx?: ZstdBinding.CCtx;
  dctx?: ZstdBinding.DCtx;
  inputs: PendingInput[];
  credits: number;
  out: Uint8Array;
  outputBytes: number;
  /** decompress: the last call's hint; 0 = at a frame boundary. */
  frameHint: number;
  /** decompress: the output buffer was filled, so more may be pending without new input. */
  mayHaveMore: boolean;
  done: boolean;
}

const sessions = new Map<number, Session>();

/** A buffer of its own (not a slice of Node's shared pool, which could not be transferred). */
function newOutput(bytes: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(bytes);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function send(msg: FromZstdWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(msg, transfer ?? []);
}

function open(id: number, params: ZstdSessionParams, outputBytes: number): void {
  const s: Session = {
    id, params, inputs: [], credits: 0, out: newOutput(outputBytes), outputBytes, frameHint: 0, mayHaveMore: false, done: false,
  };
  if (params.mode === 'compress') {
    const c = new binding.CCtx();
    c.setParameter(binding.CParameter.compressionLevel, params.level ?? 3);
    if (params.windowLog) c.setParameter(binding.CParameter.windowLog, params.windowLog);
    if (params.nbWorkers) c.setParameter(binding.CParameter.nbWorkers, params.nbWorkers);
    c.setParameter(binding.CParameter.checksumFlag, params.checksumFlag === false ? 0 : 1);
    s.cctx = c;
  } else {
    const d = new binding.DCtx();
    if (params.windowLogMax) d.setParameter(binding.DParameter.windowLogMax, params.windowLogMax);
    s.dctx = d;
  }
  sessions.set(id, s);
}

/**
 * Hands the output buffer to the main thread (transferred: it becomes the reader's chunk) and takes a new one.
 * allocUnsafe, not `new Uint8Array`: a zeroed allocation of this size costs more than the decompression of a
 * stored block (measured 200 MB/s against 1.3 GB/s for random data; the rest is first-touch page faults).
 */
function emit(s: Session, produced: number): void {
  const full = s.out;
  s.out = newOutput(s.outputBytes);
  s.credits--;
  send({ op: 'output', id: s.id, buf: full.buffer as ArrayBuffer, length: produced }, [full.buffer as ArrayBuffer]);
}

function finishInput(s: Session): void {
  const input = s.inputs.shift()!;
  send({ op: 'consumed', id: s.id, buf: input.buf }, [input.buf]);
  if (input.end) {
    if (s.dctx && s.frameHint !== 0) throw new ProcessingError('CARGO_ERR_STAGE_FAILED', 'zstd input ended in the middle of a frame (truncated)');
    s.done = true;
    sessions.delete(s.id);
    send({ op: 'done', id: s.id });
  }
}

/** Runs the session as far as its input and credits allow. */
function run(s: Session): void {
  while (!s.done && s.credits > 0 && s.inputs.length > 0) {
    const input = s.inputs[0]!;
    const src = input.view.subarray(input.offset);
    if (s.cctx) {
      const directive = input.end ? binding.EndDirective.end : binding.EndDirective.continue;
      const [ret, produced, consumed] = s.cctx.compressStream2(s.out, src, directive);
      input.offset += consumed;
      if (produced > 0) emit(s, produced);
      if (input.offset === input.view.length && (!input.end || ret === 0)) finishInput(s);
    } else {
      if (src.length === 0 && !s.mayHaveMore) {
        finishInput(s); // nothing left to feed or drain (an empty input decompresses to nothing)
        continue;
      }
      const [ret, produced, consumed] = s.dctx!.decompressStream(s.out, src);
      input.offset += consumed;
      // A call that moved nothing (draining after a frame that ended exactly at the end of the output buffer)
      // answers with the next frame's header size: it must not turn a complete frame into a truncated one.
      if (consumed > 0 || produced > 0) s.frameHint = ret;
      s.mayHaveMore = produced === s.out.length;
      if (produced > 0) emit(s, produced);
      if (input.offset === input.view.length && !s.mayHaveMore) finishInput(s);
    }
  }
}

function fail(id: number, e: unknown): void {
  sessions.delete(id);
  send({ op: 'error', id, message: e instanceof Error ? e.message : String(e) });
}

port.on('message', (msg: ToZstdWorker) => {
  try {
    switch (msg.op) {
      case 'open':
        open(msg.id, msg.params, msg.outputBytes);
        return;
      case 'input': {
        const s = sessions.get(msg.id);
        if (!s) return; // closed meanwhile
        s.inputs.push({ buf: msg.buf, view: new Uint8Array(msg.buf, 0, msg.length), offset: 0, end: msg.end });
        run(s);
        return;
      }
      case 'credit': {
        const s = sessions.get(msg.id);
        if (!s) return;
        s.credits += msg.n;
        run(s);
        return;
      }
      case 'close':
        // The contexts are freed by their finalizers; dropping the session drops its buffers.
        sessions.delete(msg.id);
        return;
    }
  } catch (e) {
    fail(msg.id, e);
  }
});
