/**
 * The gateway's TLS material. A configured `gateway.tlsCert` + `gateway.tlsKey` pair wins; otherwise a
 * self-signed certificate for localhost (EC P-256, SAN localhost, 127.0.0.1, ::1, 825 days — the longest
 * validity common clients accept) is generated once with the openssl CLI into `<dataDir>/tls/` and reused.
 *
 * Generation happens in a private temporary directory that is then renamed to `<dataDir>/tls`: the rename is
 * atomic, so two processes starting together cannot end up with one's key beside the other's certificate.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { CargoError } from '../errors/cargo-error.js';

export interface GatewayTls {
  key: Buffer;
  cert: Buffer;
  /** The certificate clients should trust (curl --cacert, the CLI). */
  certPath: string;
}

export class TlsSetupError extends CargoError {
  constructor(message: string, field?: string) {
    super('CARGO_ERR_TLS_SETUP', message, { httpStatus: 500, field });
    this.name = 'TlsSetupError';
  }
}

export const VALIDITY_DAYS = 825;

/** Where the generated certificate lives; the CLI trusts it when it exists. */
export function generatedCertPath(dataDir: string): string {
  return join(dataDir, 'tls', 'cert.pem');
}

function readConfigured(path: string, key: 'gateway.tlsCert' | 'gateway.tlsKey'): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new TlsSetupError(`cannot read ${key} file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, key);
  }
}

function generateInto(dir: string): void {
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', String(VALIDITY_DAYS),
      '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      // A self-signed certificate that clients pin as their trust anchor must be allowed to act as a CA.
      '-addext', 'basicConstraints=critical,CA:TRUE',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') {
      throw new TlsSetupError('openssl not found: install it (apt-get install openssl) or set gateway.tlsCert and gateway.tlsKey', 'gateway.tlsCert');
    }
    throw new TlsSetupError(`openssl could not generate the self-signed certificate: ${err.stderr?.toString().trim() || err.message}`);
  }
  chmodSync(join(dir, 'key.pem'), 0o600);
}

function isExpired(cert: Buffer): boolean {
  return new Date(new X509Certificate(cert).validTo).getTime() <= Date.now();
}

export function ensureTls(cfg: Pick<Config, 'dataDir' | 'gateway'>): GatewayTls {
  const { tlsCert, tlsKey } = cfg.gateway;
  if (tlsCert || tlsKey) {
    if (!tlsCert) throw new TlsSetupError('gateway.tlsKey is set but gateway.tlsCert is empty: set both or neither', 'gateway.tlsCert');
    if (!tlsKey) throw new TlsSetupError('gateway.tlsCert is set but gateway.tlsKey is empty: set both or neither', 'gateway.tlsKey');
    return { cert: readConfigured(tlsCert, 'gateway.tlsCert'), key: readConfigured(tlsKey, 'gateway.tlsKey'), certPath: tlsCert };
  }

  const tlsDir = join(cfg.dataDir, 'tls');
  const certPath = join(tlsDir, 'cert.pem');
  const keyPath = join(tlsDir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = readFileSync(certPath);
    if (!isExpired(cert)) return { cert, key: readFileSync(keyPath), certPath };
    // An expired generated certificate is of no use to anyone; replace it (clients must re-trust the new one).
    rmSync(tlsDir, { recursive: true, force: true });
  } else if (existsSync(certPath) || existsSync(keyPath)) {
    throw new TlsSetupError(`${tlsDir} holds only one of cert.pem and key.pem; remove the directory to regenerate both`);
  }

  mkdirSync(cfg.dataDir, { recursive: true });
  const tmp = mkdtempSync(join(cfg.dataDir, '.tls-'));
  try {
    generateInto(tmp);
    try {
      renameSync(tmp, tlsDir);
    } catch (e) {
      // Another process won the race (ENOTEMPTY/EEXIST): use its pair, drop ours below.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath };
}
