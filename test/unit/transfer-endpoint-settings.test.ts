import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEndpointSettings } from '../../services/transfer/connect/endpoint-settings.js';

const file = (text: string) => {
  const p = join(mkdtempSync(join(tmpdir(), 'cargoport-endpoints-')), 'endpoints.yaml');
  writeFileSync(p, text);
  return p;
};

test('endpoint settings: origins normalised, settings typed', () => {
  const m = loadEndpointSettings(file('https://DCache.Example.org:443/: { connections: 4, streams: 8 }\nhttp://old.example.org:8080: { http1Only: true }\n'));
  assert.deepEqual([...m], [
    ['https://dcache.example.org', { connections: 4, streams: 8 }],
    ['http://old.example.org:8080', { http1Only: true }],
  ]);
  assert.equal(loadEndpointSettings(file('')).size, 0);
  assert.equal(loadEndpointSettings(file('{"https://a.example": {"rangedUpload": true}}')).get('https://a.example')?.rangedUpload, true);
  assert.equal(loadEndpointSettings(file('https://a.example: { copyMode: auto }')).get('https://a.example')?.copyMode, 'auto');
});

test('endpoint settings: every mistake names the origin and the field', () => {
  const cases: Array<[string, RegExp]> = [
    ['https://a.example: { conections: 4 }', /https:\/\/a\.example: unknown setting "conections"/],
    ['https://a.example: { connections: 0 }', /connections must be an integer from 1 to 64 \(got 0\)/],
    ['https://a.example: { http1Only: "yes" }', /http1Only must be true or false/],
    ['https://a.example: { copyMode: tpc }', /copyMode must be auto \| pull \| push \| streamed/],
    ['https://a.example/some/path: { streams: 2 }', /is not an origin/],
    ['gsiftp://a.example: { streams: 2 }', /is not an origin/],
    ['https://a.example: 4', /must map to settings/],
    ['[1, 2]', /must map origins/],
    ['https://a.example: { streams: [', /not valid YAML/],
  ];
  for (const [text, re] of cases) assert.throws(() => loadEndpointSettings(file(text)), (e: Error & { code?: string }) => e.code === 'CARGO_ERR_CONFIG' && re.test(e.message), text);
  assert.throws(() => loadEndpointSettings('/nonexistent/endpoints.yaml'), /ENOENT/);
});
