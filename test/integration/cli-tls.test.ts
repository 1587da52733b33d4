/**
 * ensureTls: the gateway's certificate. Generated once with the real openssl CLI (EC P-256, SAN localhost /
 * 127.0.0.1 / ::1, 825 days, key 0600), reused afterwards, and accepted by a real TLS client that trusts it;
 * a configured pair wins, and misconfiguration names the setting.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect as h2connect, createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureTls, VALIDITY_DAYS } from '../../bin/self-signed-cert.js';
import { testTls } from '../support/tls.js';

function cfgFor(dataDir: string, tlsCert = '', tlsKey = '') {
  return { dataDir, gateway: { host: 'localhost', port: 0, http1Port: -1, tlsCert, tlsKey, bodyLimitBytes: 1024, publicUrl: '', tlsHandshakeTimeoutMs: 10000, idleTimeoutSec: 75, maxConnectionsPerClient: 0, maxRequestsPerClient: 0, maxHeaderBytes: 32768 } };
}

/** One real HTTP/2 request to a server using `tls`, trusting only `ca`; resolves with the status. */
async function h2Status(tls: { key: Buffer; cert: Buffer }, ca: Buffer, host: string): Promise<number> {
  const server = createSecureServer({ key: tls.key, cert: tls.cert }, (_req, res) => res.end('ok'));
  // Server sessions outlive server.close(); end them so the test process can exit.
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, host === '[::1]' ? '::1' : host, resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const session = h2connect(`https://${host}:${port}`, { ca });
    try {
      return await new Promise<number>((resolve, reject) => {
        session.on('error', reject);
        const req = session.request({ ':path': '/' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.end();
      });
    } finally {
      session.destroy();
    }
  } finally {
    for (const s of sessions) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

test('generates an EC P-256 certificate for localhost once, then reuses it', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-tls-'));
  try {
    const first = ensureTls(cfgFor(dataDir));
    assert.equal(first.certPath, join(dataDir, 'tls', 'cert.pem'));
    assert.equal(statSync(join(dataDir, 'tls', 'key.pem')).mode & 0o777, 0o600);

    const x509 = new X509Certificate(first.cert);
    assert.match(x509.subjectAltName ?? '', /DNS:localhost/);
    assert.match(x509.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(x509.subjectAltName ?? '', /IP Address:0:0:0:0:0:0:0:1/);
    assert.equal(x509.publicKey.asymmetricKeyType, 'ec');
    assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const days = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / 86_400_000;
    assert.ok(Math.abs(days - VALIDITY_DAYS) <= 1, `validity ${days} days`);
    assert.ok(x509.checkPrivateKey(createPrivateKey(first.key)));

    const second = ensureTls(cfgFor(dataDir));
    assert.deepEqual(second.cert, first.cert, 'a second start must reuse the certificate, not regenerate it');
    assert.deepEqual(second.key, first.key);

    // Clients that pin the generated certificate can talk HTTP/2 to it under every name in the SAN.
    for (const host of ['localhost', '127.0.0.1', '[::1]']) assert.equal(await h2Status(first, first.cert, host), 200);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a configured certificate and key are used as they are', () => {
  const t = testTls();
  const got = ensureTls(cfgFor('/nonexistent-data-dir', t.certPath, t.keyPath));
  assert.deepEqual(got.cert, t.cert);
  assert.deepEqual(got.key, t.key);
  assert.equal(got.certPath, t.certPath);
});

test('configuration mistakes name the setting', () => {
  const t = testTls();
  assert.throws(() => ensureTls(cfgFor('/tmp', '/nonexistent/cert.pem', t.keyPath)), (e: Error & { field?: string }) => {
    assert.equal(e.field, 'gateway.tlsCert');
    assert.match(e.message, /\/nonexistent\/cert\.pem/);
    return true;
  });
  assert.throws(() => ensureTls(cfgFor('/tmp', t.certPath, '')), { field: 'gateway.tlsKey' });
  assert.throws(() => ensureTls(cfgFor('/tmp', '', t.keyPath)), { field: 'gateway.tlsCert' });
});

test('a half-present generated pair is refused rather than silently mismatched', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-tls-'));
  try {
    mkdirSync(join(dataDir, 'tls'));
    writeFileSync(join(dataDir, 'tls', 'cert.pem'), testTls().cert);
    assert.throws(() => ensureTls(cfgFor(dataDir)), /only one of cert\.pem and key\.pem/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
