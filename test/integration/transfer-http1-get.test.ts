/**
 * The HTTP/1.x GET path (services/transfer/http/http1-get.ts) at the engine: its body timeout counts only the
 * silence of a server that is being read. A server that sends half a body and goes quiet fails with
 * CARGO_ERR_TIMEOUT after bodyTimeoutMs; a body held back by the reader (a closed pause gate) for several times
 * bodyTimeoutMs is not the server's silence, and completes once the gate opens.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { TransferError } from '../../services/transfer/transfer-errors.js';
import { tempDir } from '../support/fixtures.js';
import { startNaiveHttpServer, type NaiveHttpServer } from '../support/naive-http-server.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const BODY_TIMEOUT_MS = 400;

describe('transfer engine: GET from an HTTP/1.x source, body timeout', () => {
  let src: NaiveHttpServer;
  const root = tempDir('http1-get-src');
  const body = randomBytes(8 * 1024 * 1024);
  before(async () => {
    writeFileSync(join(root, 'f.bin'), body);
    src = await startNaiveHttpServer(root);
    await engine.reconfigure({ bodyTimeoutMs: BODY_TIMEOUT_MS });
  });
  after(async () => {
    await engine.reconfigure({ bodyTimeoutMs: 120_000 });
    await engine.close();
    await src.close();
  });

  test('a server silent in the middle of the body fails the transfer with CARGO_ERR_TIMEOUT', async () => {
    const out = join(tempDir('http1-get-dst'), 'stalled.bin');
    await assert.rejects(engine.transfer({
      source: `${src.origin}/stall-half/f.bin`, destination: pathToFileURL(out).href, verify: 'none', overwrite: false, connections: 1, streams: 1,
    }, { signal: new AbortController().signal, gate: new PauseGate() }), (e: unknown) => {
      assert.ok(e instanceof TransferError);
      assert.equal(e.code, 'CARGO_ERR_TIMEOUT', e.message);
      assert.match(e.message, /UND_ERR_BODY_TIMEOUT/);
      return true;
    });
  });

  test('a body held back by a closed gate for many body timeouts is not a silent server', async () => {
    const out = join(tempDir('http1-get-dst'), 'held.bin');
    const gate = new PauseGate();
    gate.close();
    const opening = new Promise<void>((r) => setTimeout(() => { gate.openGate(); r(); }, BODY_TIMEOUT_MS * 5));
    const r = await engine.transfer({
      source: `${src.origin}/close/f.bin`, destination: pathToFileURL(out).href, verify: 'none', overwrite: false, connections: 1, streams: 1,
    }, { signal: new AbortController().signal, gate });
    await opening;
    assert.equal(r.bytes, body.length);
    assert.equal(r.protocol, 'http/1.1');
    assert.ok(readFileSync(out).equals(body));
  });
});
