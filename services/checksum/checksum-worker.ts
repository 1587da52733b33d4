/**
 * Worker-thread side of ChecksumWorkerPool: hashes chunks it is handed and gives the buffers back.
 * Keeps no state for adler32/crc32c chunks (each is summed alone); keeps one Checksummer per open
 * md5/sha256 session, fed in message order.
 */
import { parentPort } from 'node:worker_threads';
import { adler32Update, ADLER32_INITIAL } from './adler32.js';
import { crc32cUpdate, CRC32C_INITIAL } from './crc32c.js';
import { ChecksumStateError } from './checksum-errors.js';
import { createChecksummer, type Checksummer } from './checksummer.js';
import type { FromWorker, ToWorker } from './checksum-worker-protocol.js';

const port = parentPort;
if (!port) throw new ChecksumStateError('checksum-worker.ts must run in a worker thread');

const sessions = new Map<number, Checksummer>();

function reply(msg: FromWorker, transfer?: ArrayBuffer): void {
  port!.postMessage(msg, transfer ? [transfer] : []);
}

port.on('message', (msg: ToWorker) => {
  try {
    switch (msg.op) {
      case 'sum': {
        const bytes = new Uint8Array(msg.buf, 0, msg.len);
        const state =
          msg.alg === 'adler32' ? adler32Update(ADLER32_INITIAL, bytes) : crc32cUpdate(CRC32C_INITIAL, bytes);
        reply({ op: 'sum', id: msg.id, seq: msg.seq, state, buf: msg.buf, len: msg.len }, msg.buf);
        return;
      }
      case 'open':
        sessions.set(msg.id, createChecksummer(msg.alg));
        reply({ op: 'opened', id: msg.id });
        return;
      case 'update': {
        const session = sessions.get(msg.id);
        if (!session) throw new ChecksumStateError(`no checksum session ${msg.id}`);
        session.update(new Uint8Array(msg.buf, 0, msg.len));
        reply({ op: 'updated', id: msg.id, buf: msg.buf, len: msg.len }, msg.buf);
        return;
      }
      case 'discard':
        sessions.delete(msg.id);
        reply({ op: 'discarded', id: msg.id });
        return;
      case 'digest': {
        const session = sessions.get(msg.id);
        if (!session) throw new ChecksumStateError(`no checksum session ${msg.id}`);
        sessions.delete(msg.id);
        reply({ op: 'digest', id: msg.id, hex: session.digestHex() });
        return;
      }
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (msg.op === 'sum' || msg.op === 'update') reply({ op: 'error', id: msg.id, message, buf: msg.buf, len: msg.len }, msg.buf);
    else reply({ op: 'error', id: msg.id, message });
  }
});
