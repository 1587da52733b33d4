/**
 * The engine against the real cargoport storage endpoint (Fastify, HTTP/2 + TLS, test/support/storage-server):
 * multi-connection ranged push (Content-Range + Cargo-Upload-Id), then a multi-stream ranged pull of the same
 * file with Digest verification — both peers are ours, so this pins the protocol between them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createChecksummer } from '../../services/checksum/checksummer.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const MiB = 1024 * 1024;
let peer: TestStorageServer;
let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cargoport-peer-'));
  peer = await startStorageServer();
  await engine.reconfigure({
    ca: testTls().cert, connections: 2, streams: 2,
    multiStream: { enabled: true, minFileBytes: 2 * MiB, rangeBytes: 1 * MiB },
  });
  await engine.configureEndpoint(peer.origin, { rangedUpload: true });
});

after(async () => {
  await engine.configureEndpoint(peer.origin, undefined);
  await engine.close();
  await peer.close();
  await rm(work, { recursive: true, force: true });
});

const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });

describe('engine ↔ cargoport storage endpoint', () => {
  it('ranged push then ranged pull round-trips a file with adler32 verified on both sides', async () => {
    const data = randomBytes(7 * MiB + 3);
    const sum = createChecksummer('adler32');
    sum.update(data);
    const value = sum.digestHex();
    const src = join(work, 'src.bin');
    await writeFile(src, data);
    const pushed = await engine.transfer({
      source: pathToFileURL(src).href, destination: `${peer.base}/peer/round.bin`,
      verify: 'both', overwrite: false, checksum: { alg: 'adler32', value },
    }, ctl());
    assert.equal(pushed.connections, 4, 'four ranged PUT lanes');
    assert.equal(pushed.checksum?.value, value);

    const back = join(work, 'back.bin');
    const pulled = await engine.transfer({
      source: `${peer.base}/peer/round.bin`, destination: pathToFileURL(back).href,
      verify: 'source', overwrite: false,
    }, ctl());
    assert.equal(pulled.checksum?.value, value);
    assert.ok(pulled.streams > 1 || pulled.connections > 1, 'ranged pull');
    assert.deepEqual(await readFile(back), data);
  });
});
