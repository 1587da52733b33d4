/**
 * The stage put in front of every chain: it holds the bytes while the transfer's gate is closed (admin pause), so
 * nothing enters the stages during a pause — a hook or a compressor is not fed, and the source is not read —
 * and it tears the chain down when the transfer is aborted (each stage then releases its child process, thread
 * session or temporary files in its own _destroy).
 */
import { Transform, type Duplex } from 'node:stream';
import type { Gate } from '../throttle/pause-gate.js';
import type { StreamStage } from './stream-stage.js';

export function gateStage(gate: Gate | undefined, signal: AbortSignal | undefined): StreamStage {
  return {
    name: 'gate',
    create: () => {
      const t = new Transform({
        transform(chunk: Buffer, _enc, done) {
          const wait = gate?.whenOpen();
          if (!wait) return done(null, chunk);
          wait.then(() => done(null, chunk), done);
        },
      });
      return bindAbort(t, signal);
    },
  };
}

/** Destroys `stream` when `signal` aborts (the listener goes with the stream). */
export function bindAbort<T extends Duplex>(stream: T, signal: AbortSignal | undefined): T {
  if (!signal) return stream;
  // Node's own abort code: the engine reports an abort as its own CARGO_ERR_ABORTED, never as a stage failure.
  const abort = () => stream.destroy(Object.assign(new Error('the transfer was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal.reason }));
  if (signal.aborted) {
    queueMicrotask(abort);
    return stream;
  }
  signal.addEventListener('abort', abort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', abort));
  return stream;
}
