/**
 * A push is only a success if the destination really holds the bytes: a server that answers 201 but stores
 * nothing (XRootD 5.5 does this when it cannot parse the length header) must make the transfer fail loudly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { closeTransferClients, configureTransferEngine, transferFile } from '../../services/transfer/engine.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

describe('transfer engine: push verification', () => {
  let dst: H2FileServer;
  before(async () => {
    await configureTransferEngine({ ca: testTls().cert });
    dst = await startH2FileServer({ root: tempDir('push-verify-dst') });
  });
  after(async () => {
    await dst.close();
    await closeTransferClients();
  });

  test('a destination that stores an empty file despite 201 → CARGO_ERR_SIZE_MISMATCH; a good one passes', async () => {
    const dir = tempDir('push-verify-src');
    const [f] = makeRandomFiles(dir, 1, 200_000, 200_000);
    const ctl = () => ({ signal: new AbortController().signal, gate: new PauseGate() });
    dst.faults.dropPutBody = true;
    await assert.rejects(
      transferFile({ source: `file://${dir}/${f!.name}`, destination: dst.url(`/bad/${f!.name}`), verify: 'none', overwrite: true }, ctl()),
      (e: Error & { code?: string; field?: string }) => e.code === 'CARGO_ERR_SIZE_MISMATCH' && e.field === 'destination' && /reports 0 bytes where 200000 were sent/.test(e.message),
    );
    dst.faults.dropPutBody = false;
    const ok = await transferFile({ source: `file://${dir}/${f!.name}`, destination: dst.url(`/good/${f!.name}`), verify: 'none', overwrite: true }, ctl());
    assert.equal(ok.bytes, 200_000);
  });
});
