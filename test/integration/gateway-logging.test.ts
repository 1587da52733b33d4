/**
 * Routine polling is not logged at info: a gateway at logLevel info (in a child process, its log on stdout) logs the
 * request lines of a docs read and a job submission, and none of status, job list, health, metrics or dashboard reads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { testTls } from '../support/tls.js';

const dist = resolve(fileURLToPath(import.meta.url), '../../..');

test('polling routes log nothing at info; other requests do', async () => {
  const prefix = uniquePrefix();
  const script = `
    import { readFileSync } from 'node:fs';
    import { Redis } from 'ioredis';
    import { loadConfig } from ${JSON.stringify(join(dist, 'config/load.js'))};
    import { buildGateway } from ${JSON.stringify(join(dist, 'gateway/server.js'))};
    const cfg = loadConfig({ env: {}, overrides: { logLevel: 'info', auth: { insecureOpen: true }, redis: { url: ${JSON.stringify(TEST_REDIS_URL)}, prefix: ${JSON.stringify(prefix)} }, gateway: { host: '127.0.0.1', port: 0 } } });
    const tls = { key: readFileSync(${JSON.stringify(testTls().keyPath)}), cert: readFileSync(${JSON.stringify(testTls().certPath)}) };
    const { app, closeConnections } = await buildGateway(cfg, { redisUrl: ${JSON.stringify(TEST_REDIS_URL)}, tls });
    for (const url of ['/api/v1/status', '/api/v1/jobs', '/api/v1/admin/limits', '/healthz', '/readyz', '/metrics', '/ui', '/ui/dashboard.js', '/docs']) {
      const r = await app.inject({ method: 'GET', url });
      if (r.statusCode !== 200) throw new Error(url + ' answered ' + r.statusCode);
    }
    await app.inject({ method: 'POST', url: '/api/v1/jobs', payload: { files: [] } });
    await app.inject({ method: 'GET', url: '/data/x?a=1&authz=secret.token.value' });
    await app.close();
    await closeConnections();
    const r = new Redis(${JSON.stringify(TEST_REDIS_URL)});
    const keys = await r.keys(${JSON.stringify(prefix)} + '*');
    if (keys.length) await r.del(...keys);
    r.disconnect();
  `;
  const stdout = await new Promise<string>((done, fail) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: dist }, (err, out, stderr) => (err ? fail(new Error(stderr || String(err))) : done(out)));
  });
  const logged = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg?: string; req?: { url?: string; method?: string } })
    .filter((l) => l.msg === 'incoming request').map((l) => `${l.req?.method} ${l.req?.url}`);
  // A share link's ?authz= token is not logged (gateway/auth.ts redactUrl).
  assert.deepEqual(logged, ['GET /docs', 'POST /api/v1/jobs', 'GET /data/x?a=1&authz=REDACTED']);
  assert.ok(!stdout.includes('secret.token.value'));
});
