/**
 * The built-in development issuer, for newcomers and laptops: a signing key kept in `<dataDir>/dev-issuer/`
 * (EC P-256, mode 0600) and trusted by the gateway directly (no discovery: the key is read from disk, so no
 * endpoint serves it). `cargoport token` signs WLCG tokens with it. Anyone who can read that directory can mint
 * any token, exactly as anyone who can read the port's TLS key can impersonate it: the gateway refuses to enable
 * it unless it listens on loopback only (`auth.devIssuer`).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IssuerSettings } from './issuer-settings.js';
import type { VerificationKey } from './jws.js';

export const DEV_ISSUER = 'https://dev-issuer.cargoport.invalid';
/** The scope that makes a dev token an administrator of the port. */
export const DEV_ADMIN_SCOPE = 'cargoport.admin';

function keyPath(dataDir: string): string {
  return join(dataDir, 'dev-issuer', 'key.pem');
}

/** Key id: RFC 7638 thumbprint of the public key. */
export function jwkThumbprint(pub: KeyObject): string {
  const j = pub.export({ format: 'jwk' }) as Record<string, string>;
  const canon = j.kty === 'EC' ? { crv: j.crv, kty: j.kty, x: j.x, y: j.y } : j.kty === 'RSA' ? { e: j.e, kty: j.kty, n: j.n } : { crv: j.crv, kty: j.kty, x: j.x };
  return createHash('sha256').update(JSON.stringify(canon)).digest('base64url');
}

/** The dev issuer's private key, made on first use. */
export function devIssuerKey(dataDir: string, create = true): KeyObject {
  const p = keyPath(dataDir);
  try {
    return createPrivateKey(readFileSync(p));
  } catch (e) {
    if (!create || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(join(dataDir, 'dev-issuer'), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(p, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  chmodSync(p, 0o600);
  return privateKey;
}

/** The trusted-issuer entry of the dev issuer: base path '/', admins by the cargoport.admin scope. */
export function devIssuerSettings(dataDir: string, audiences: string[]): IssuerSettings {
  const pub = createPublicKey(devIssuerKey(dataDir));
  const key: VerificationKey = { kid: jwkThumbprint(pub), key: pub, alg: 'ES256' };
  return {
    issuer: DEV_ISSUER, name: 'dev', basePath: '/', audiences, groups: [],
    adminGroups: [], adminScopes: [DEV_ADMIN_SCOPE], adminSubjects: [], staticKeys: [key],
  };
}

/** Signs a compact JWS (ES256/ES384/RS256/PS256/EdDSA by key type; `alg` may force one). */
export function signJws(payload: Record<string, unknown>, key: KeyObject, header: Record<string, unknown>): string {
  const alg = String(header['alg']);
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
  const opts = alg.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' as const } : alg.startsWith('PS') ? { key, padding: 6, saltLength: -1 } : key;
  return `${input}.${sign(hash, Buffer.from(input), opts).toString('base64url')}`;
}

export interface DevTokenRequest {
  scope: string;
  subject: string;
  audience: string | string[];
  lifetimeSec: number;
  groups?: string[];
}

export function mintDevToken(dataDir: string, r: DevTokenRequest, nowSec = Math.floor(Date.now() / 1000)): string {
  const key = devIssuerKey(dataDir, false);
  const kid = jwkThumbprint(createPublicKey(key));
  return signJws({
    iss: DEV_ISSUER, sub: r.subject, aud: r.audience, iat: nowSec, nbf: nowSec - 60, exp: nowSec + r.lifetimeSec,
    jti: randomUUID(), 'wlcg.ver': '1.0', ...(r.scope ? { scope: r.scope } : {}), ...(r.groups?.length ? { 'wlcg.groups': r.groups } : {}),
  }, key, { alg: 'ES256', typ: 'JWT', kid });
}
