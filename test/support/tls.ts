/**
 * Test TLS material: one self-signed certificate for localhost / 127.0.0.1 / ::1, made once per process
 * with the real openssl CLI and cached in a temp dir. Clients in tests trust it through `ca`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestTls {
  key: Buffer;
  cert: Buffer;
  /** Path of the PEM certificate, for external clients (curl --cacert, davix --capath, gfal X509_CERT_DIR). */
  certPath: string;
  keyPath: string;
  dir: string;
}

let cached: TestTls | undefined;

export function testTls(): TestTls {
  if (cached) return cached;
  // A benchmark's child processes share their parent's material (CARGOPORT_TEST_TLS_DIR, set by the parent).
  const shared = process.env['CARGOPORT_TEST_TLS_DIR'];
  if (shared) {
    const keyPath = join(shared, 'key.pem');
    const certPath = join(shared, 'cert.pem');
    cached = { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath, keyPath, dir: shared };
    return cached;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cargoport-tls-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    '-addext', 'basicConstraints=critical,CA:TRUE',
  ], { stdio: 'ignore' });
  cached = { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath, keyPath, dir };
  return cached;
}
