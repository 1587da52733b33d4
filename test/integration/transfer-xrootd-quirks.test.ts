/**
 * Pulling from servers that answer ranges the way XRootD 5.5 does (an HTTP/1.1 server of its own, written raw so
 * the malformed answers are byte-exact):
 * - a range that runs past the end is echoed as asked, with a Content-Length for bytes that do not exist, and
 *   the connection is closed after the real ones → the engine asks again for exactly the bytes that exist;
 * - once it holds a checksum, its 206 answers end the Content-Range line with a bare LF, which undici cannot
 *   parse → the engine reads that origin whole from then on, without Range, and still gets every byte.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { defaultMultiStreamPolicy } from '../../services/transfer/pull/multi-stream.js';
import { tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

type Quirk = 'past-eof' | 'bare-lf';

function startQuirkyServer(body: Buffer, quirk: Quirk, seen: string[]): Promise<{ server: Server; origin: string }> {
  const server = createServer({ key: testTls().key, cert: testTls().cert, ALPNProtocols: ['http/1.1'] }, (sock: TLSSocket) => {
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const range = /\r\nrange: bytes=(\d+)-(\d*)/i.exec(head);
        seen.push(range ? `${range[1]}-${range[2]}` : 'whole');
        if (!range) {
          sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: Keep-Alive\r\n\r\n`);
          sock.write(body);
          continue;
        }
        const start = Number(range[1]);
        const last = range[2] ? Number(range[2]) : body.length - 1;
        if (quirk === 'past-eof') {
          sock.write(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${last - start + 1}\r\nContent-Range: bytes ${start}-${last}/${body.length}\r\n\r\n`);
          sock.write(body.subarray(start, Math.min(last + 1, body.length)));
          if (last >= body.length) sock.end();
        } else {
          sock.write(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${last - start + 1}\r\nContent-Range: bytes ${start}-${last}/${body.length}\nDigest: adler32=00000001\r\n\r\n`);
          sock.write(body.subarray(start, last + 1));
        }
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, origin: `https://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

describe('transfer engine: XRootD-style range answers', () => {
  const body = randomBytes(3_000_000);
  const probeEnd = defaultMultiStreamPolicy.rangeBytes - 1;
  before(async () => {
    await engine.reconfigure({ ca: testTls().cert });
  });
  after(async () => {
    await engine.close();
  });

  for (const quirk of ['past-eof', 'bare-lf'] as const) {
    test(`${quirk}: every byte arrives, with one extra request at most`, async () => {
      const seen: string[] = [];
      const { server, origin } = await startQuirkyServer(body, quirk, seen);
      try {
        const dir = tempDir(`quirk-${quirk}`);
        for (const name of ['a.bin', 'b.bin']) {
          const r = await engine.transfer(
            { source: `${origin}/f.bin`, destination: `file://${join(dir, name)}`, verify: 'none', overwrite: true },
            { signal: new AbortController().signal, gate: new PauseGate() },
          );
          assert.equal(r.bytes, body.length);
          assert.ok(readFileSync(join(dir, name)).equals(body), `${name} is byte-identical`);
        }
        if (quirk === 'past-eof') {
          // Each file: the probe past the end, then exactly the bytes that exist.
          assert.deepEqual(seen, [`0-${probeEnd}`, `0-${body.length - 1}`, `0-${probeEnd}`, `0-${body.length - 1}`]);
        } else {
          // The first probe fails to parse; from then on the origin is read whole.
          assert.deepEqual(seen, [`0-${probeEnd}`, 'whole', 'whole']);
        }
      } finally {
        await engine.close();
        server.close();
      }
    });
  }
});
