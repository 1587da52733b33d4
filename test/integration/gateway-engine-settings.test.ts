/**
 * A gateway-only process (`cargoport gateway`: no worker pool beside it) runs the storage endpoint's HTTP-TPC copies
 * on a transfer engine built from the same configuration as a worker's — the endpoint settings file included. The
 * source here is named `http1Only` in that file; an engine that ignored the file would fetch it over HTTP/2.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../../config/load.js';
import { startGateway, type RunningGateway } from '../../gateway/start.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { tempDir } from '../support/fixtures.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { testTls } from '../support/tls.js';

const work = tempDir('gateway-engine');
const prefix = uniquePrefix();
let src: H2FileServer;
let gateway: RunningGateway;

before(async () => {
  mkdirSync(join(work, 'src'));
  src = await startH2FileServer({ root: join(work, 'src') });
  const endpointsFile = join(work, 'endpoints.yaml');
  writeFileSync(endpointsFile, `${src.origin}: { http1Only: true }\n`);
  const cfg = loadConfig({
    env: {},
    overrides: {
      logLevel: 'warn',
      dataDir: join(work, 'data'),
      gateway: { host: '127.0.0.1', port: 0, http1Port: -1 },
      redis: { url: TEST_REDIS_URL, prefix },
      transfer: { caFile: testTls().certPath, endpointsFile },
      // Anonymous COPY (no issuer in this test) from a loopback source.
      auth: { insecureOpen: true, allowAddresses: ['loopback'] },
    },
  });
  gateway = await startGateway(cfg, { redisUrl: TEST_REDIS_URL, tls: testTls() });
});

after(async () => {
  await gateway?.close();
  await src?.close();
  const redis = new Redis(TEST_REDIS_URL);
  await dropPrefix(redis, prefix);
  redis.disconnect();
  rmSync(work, { recursive: true, force: true });
});

test('a gateway-only process\'s HTTP-TPC pull uses the endpoint settings file (http1Only source fetched over HTTP/1.1)', async () => {
  const body = randomBytes(3 * 1024 * 1024 + 5);
  writeFileSync(join(src.root, 'tpc.bin'), body);
  const s = h2Connect(gateway.url);
  try {
    const r = await h2Request(s, 'COPY', '/data/tpc/tpc.bin', { source: src.url('/tpc.bin'), credential: 'none', requirechecksumverification: 'false' });
    assert.equal(r.status, 202, r.body.toString());
    assert.match(r.body.toString(), /success: Created\s*$/);
  } finally {
    s.close();
  }
  assert.ok(readFileSync(join(work, 'data', 'storage', 'tpc', 'tpc.bin')).equals(body));
  const seen = src.requests.filter((q) => q.path === '/tpc.bin');
  assert.ok(seen.length > 0, 'the source was asked');
  assert.deepEqual([...new Set(seen.map((q) => q.httpVersion))], ['1.1'], 'every request to the source was HTTP/1.1, as the endpoints file says');
});
