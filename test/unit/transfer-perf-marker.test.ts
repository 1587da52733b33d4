/**
 * HTTP-TPC performance-marker parsing: XRootD and dCache layouts, split chunks, stripes, terminal lines.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerfMarkerParser } from '../../services/transfer/tpc/perf-marker-parser.js';
import { tpcRequestHeaders } from '../../services/transfer/tpc/tpc-client.js';

const xrootd = (bytes: number, ts = 1700000000) =>
  `Perf Marker\nTimestamp: ${ts}\nStripe Index: 0\nStripe Bytes Transferred: ${bytes}\nTotal Stripe Count: 1\nRemoteConnections: tcp:192.0.2.1:1094,tcp:[2001:db8::1]:1094\nEnd\n`;

describe('PerfMarkerParser', () => {
  it('parses XRootD markers and the success line, even when split at arbitrary points', () => {
    const text = xrootd(1000) + xrootd(5000) + 'success: Created\n';
    for (const step of [1, 3, 7, text.length]) {
      const seen: number[] = [];
      const p = new PerfMarkerParser({ onMarker: (_m, total) => seen.push(total) });
      for (let i = 0; i < text.length; i += step) p.push(text.slice(i, i + step));
      p.end();
      assert.deepEqual(seen, [1000, 5000]);
      assert.deepEqual(p.terminal, { ok: true, message: 'Created' });
      assert.deepEqual(p.remoteConnections, ['tcp:192.0.2.1:1094', 'tcp:[2001:db8::1]:1094']);
    }
  });

  it('accepts dCache indentation and extra keys, and sums stripes by their latest value', () => {
    const marker = (i: number, b: number) => `Perf Marker\n    Timestamp: 1\n    State: 2\n    State description: transferring\n    Stripe Index: ${i}\n    Stripe Start Time: 0\n    Stripe Bytes Transferred: ${b}\n    Total Stripe Count: 2\nEnd\n`;
    const p = new PerfMarkerParser();
    p.push(marker(0, 10) + marker(1, 20) + marker(0, 15) + 'success: Created');
    p.end();
    assert.equal(p.totalBytes, 35);
    assert.equal(p.markers, 3);
    assert.equal(p.terminal?.ok, true);
  });

  it('reports failure lines, including davix\'s "failed"/"aborted" spellings', () => {
    for (const [line, msg] of [['failure: checksum mismatch, local=/x, remote=https://y', 'checksum mismatch, local=/x, remote=https://y'],
      ['failed: timeout', 'timeout'], ['aborted', 'aborted']] as const) {
      const p = new PerfMarkerParser();
      p.push(xrootd(1) + line + '\n');
      assert.deepEqual(p.terminal, { ok: false, message: msg });
    }
  });

  it('has no terminal state when the stream ends abruptly', () => {
    const p = new PerfMarkerParser();
    p.push(xrootd(42));
    p.end();
    assert.equal(p.terminal, undefined);
    assert.equal(p.totalBytes, 42);
  });

  it('rejects absurd stripe counts', () => {
    const p = new PerfMarkerParser();
    assert.throws(() => p.push('Perf Marker\nStripe Index: 0\nStripe Bytes Transferred: 1\nTotal Stripe Count: 9000\nEnd\n'), { code: 'CARGO_ERR_PEER_PROTOCOL' });
  });
});

describe('tpcRequestHeaders', () => {
  it('builds pull-mode headers with TransferHeader forwarding', () => {
    const h = tpcRequestHeaders({
      mode: 'pull', source: 'https://src/x', destination: 'https://dst/x',
      headers: { authorization: 'Bearer active' }, passiveHeaders: { Authorization: 'Bearer passive' },
      streams: 4, overwrite: false, requireChecksumVerification: false, scitag: 65,
    });
    assert.deepEqual(h, {
      authorization: 'Bearer active', source: 'https://src/x', transferheaderauthorization: 'Bearer passive',
      credential: 'none', 'x-number-of-streams': '4', overwrite: 'F', requirechecksumverification: 'false', scitag: '65',
      transferheaderscitag: '65',
    });
  });

  it('uses Destination in push mode', () => {
    const h = tpcRequestHeaders({ mode: 'push', source: 'https://src/x', destination: 'https://dst/x' });
    assert.deepEqual(h, { destination: 'https://dst/x' });
  });
});
