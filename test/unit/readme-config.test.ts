/** The README's configuration reference must name every setting and its variable, and default.yaml must set them. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { envNameOf, loadConfig, schemaLeaves } from '../../config/load.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

test('every setting is documented in the README with its environment variable', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const { path } of schemaLeaves()) {
    assert.ok(readme.includes(`\`${path}\``), `README lacks ${path}`);
    assert.ok(readme.includes(`\`${envNameOf(path)}\``), `README lacks ${envNameOf(path)}`);
  }
});

test('default.yaml sets every setting validly, and errors name the key and expected form', () => {
  const cfg = loadConfig({ env: {} });
  assert.equal(cfg.gateway.port, 8443);
  assert.throws(() => loadConfig({ env: { CARGOPORT_WORKERS_CONCURRENCY: 'many' } }), /CARGOPORT_WORKERS_CONCURRENCY.*workers\.concurrency.*integer/);
  assert.throws(() => loadConfig({ env: { CARGOPORT_GATEWAY_PROT: '1' } }), /unknown environment variable CARGOPORT_GATEWAY_PROT/);
  assert.throws(() => loadConfig({ env: {}, overrides: { scheduler: { linkMaxActiv: 3 } } }), /unknown setting "scheduler\.linkMaxActiv"/);
  assert.throws(() => loadConfig({ env: {}, overrides: { redis: { url: 'http://x' } } }), /redis\.url.*redis:\/\//);
  assert.equal(loadConfig({ env: { CARGOPORT_TRANSFER_INSECURE_TLS: 'true' } }).transfer.insecureTls, true);
  assert.deepEqual(loadConfig({ env: { CARGOPORT_STORAGE_PUBLIC_PREFIXES: '/a, /b' } }).storage.publicPrefixes, ['/a', '/b']);
});
