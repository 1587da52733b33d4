/**
 * Per-request credentials (TransferControl.credentials): the engine asks the provider before every request it sends,
 * so a token refreshed during a long transfer reaches the next range, the retry of a failed range and the
 * continuation of a body cut mid-way — not only the next attempt. The provider here hands out a new token on every
 * call; the server records which token each request carried.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import type { CredentialRequest } from '../../services/transfer/types.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

const MiB = 1024 * 1024;

/** A provider that answers each call with a token of its own and remembers what it was asked. */
function rotatingTokens() {
  const asked: CredentialRequest[] = [];
  return {
    asked,
    provider: async (r: CredentialRequest) => {
      asked.push(r);
      return { authorization: `Bearer tok-${asked.length}` };
    },
  };
}

describe('transfer engine: credentials asked per request', () => {
  const engine = createTransferEngine();
  let src: H2FileServer;
  const dirs: string[] = [];
  before(async () => {
    await engine.reconfigure({ ca: testTls().cert, multiStream: { enabled: true, minFileBytes: 2 * MiB, rangeBytes: 1 * MiB } });
    src = await startH2FileServer({ root: tempDir('cred-src') });
    dirs.push(src.root);
  });
  after(async () => {
    await src.close();
    await engine.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const tokensOf = (from: number) => src.requests.slice(from).filter((r) => r.method === 'GET').map((r) => String(r.headers['authorization']));

  test('a body continuation after a reset asks the provider again and carries the new token', async () => {
    const [f] = makeRandomFiles(src.root, 1, 900 * 1024, 900 * 1024, 'cont');
    const dst = tempDir('cred-cont');
    dirs.push(dst);
    const before = src.requests.length;
    const { asked, provider } = rotatingTokens();
    src.faults.resetAfter = { count: 1, afterBytes: 300_000 };
    const res = await engine.transfer(
      { source: src.url(`/${f!.name}`), destination: `file://${dst}/${f!.name}`, verify: 'none', overwrite: false, checksum: { alg: 'adler32', value: f!.adler32 } },
      { signal: new AbortController().signal, gate: new PauseGate(), credentials: provider },
    );
    assert.equal(res.checksum?.value, f!.adler32);
    assert.ok(readFileSync(join(dst, f!.name)).equals(readFileSync(join(src.root, f!.name))));
    const tokens = tokensOf(before);
    assert.equal(tokens.length, 2, 'the first GET and its continuation');
    assert.ok(src.requests.slice(before).filter((r) => r.method === 'GET')[1]!.headers['range'], 'the second GET is the continuation');
    assert.equal(new Set(tokens).size, 2, `each GET carried a token asked for it (${tokens.join(', ')})`);
    assert.ok(asked.every((r) => r.role === 'source' && r.url === src.url(`/${f!.name}`)), 'asked for the source, with its URL');
    assert.ok(asked.length >= tokens.length);
  });

  test('the retry of a failed range asks the provider again; every range request carries its own token', async () => {
    const [f] = makeRandomFiles(src.root, 1, 4 * MiB, 4 * MiB, 'ranges');
    const dst = tempDir('cred-ranges');
    dirs.push(dst);
    const before = src.requests.length;
    const { asked, provider } = rotatingTokens();
    // Let the probe and two ranges through, then reset one range: the lane retries it.
    src.faults.resetAfter = { count: 1, afterBytes: 100_000, skip: 2 };
    const res = await engine.transfer(
      { source: src.url(`/${f!.name}`), destination: `file://${dst}/${f!.name}`, verify: 'none', overwrite: false, checksum: { alg: 'adler32', value: f!.adler32 }, connections: 2, streams: 2 },
      { signal: new AbortController().signal, gate: new PauseGate(), credentials: provider },
    );
    assert.equal(src.faults.resetAfter.count, 0, 'the fault was served');
    assert.equal(res.checksum?.value, f!.adler32);
    assert.ok(readFileSync(join(dst, f!.name)).equals(readFileSync(join(src.root, f!.name))));
    const tokens = tokensOf(before);
    assert.ok(tokens.length > 4, `more GETs than the 4 ranges: a range was asked again (${tokens.length})`);
    assert.equal(new Set(tokens).size, tokens.length, `no two requests shared a token (${tokens.join(', ')})`);
    assert.ok(asked.every((r) => r.role === 'source' && (r.method === 'GET' || r.method === 'HEAD')));
  });
});
