/**
 * The port's own token issuer for share links: an EC P-256 signing key kept in `<dataDir>/share-issuer/key.pem`
 * (made on first use, mode 0600, so links stay valid across restarts and every process of one port — gateway and
 * `serve` children — signs and verifies with the same key), and the trusted-issuer entry the gateway's verifier
 * adds for it. Share tokens are ordinary WLCG tokens (iss, sub, aud, iat, nbf, exp, jti, wlcg.ver) whose only
 * capability is `storage.read:<path>`; `jti` is the share's id, looked up in the share store on every use
 * (revocation, download count, rate cap). Rotating the key (deleting the file) invalidates every link.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jwkThumbprint, signJws } from './dev-issuer.js';
import type { IssuerSettings } from './issuer-settings.js';

export const SHARE_ISSUER = 'https://shares.cargoport.invalid';
/** Audience of share tokens; accepted only from the share issuer. */
export const SHARE_AUDIENCE = 'cargoport-share';
/** Claim carrying what the link allows beyond its scope. */
export const SHARE_CLAIM = 'cargoport.share';

export interface ShareIssuerKey {
  key: KeyObject;
  kid: string;
}

/** The share issuer's key; made on first use (a racing second process reads the first one's file). */
export function shareIssuerKey(dataDir: string): ShareIssuerKey {
  const dir = join(dataDir, 'share-issuer');
  const p = join(dir, 'key.pem');
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(p));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    try {
      writeFileSync(p, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
      chmodSync(p, 0o600);
      key = privateKey;
    } catch (w) {
      if ((w as NodeJS.ErrnoException).code !== 'EEXIST') throw w;
      key = createPrivateKey(readFileSync(p));
    }
  }
  return { key, kid: jwkThumbprint(createPublicKey(key)) };
}

/** Trusted-issuer entry of the share issuer: base path '/', no groups, no admins; lifetime up to `maxValiditySec`. */
export function shareIssuerSettings(k: ShareIssuerKey, maxValiditySec: number): IssuerSettings {
  return {
    issuer: SHARE_ISSUER, name: 'share', basePath: '/', audiences: [SHARE_AUDIENCE], groups: [],
    adminGroups: [], adminScopes: [], adminSubjects: [],
    staticKeys: [{ kid: k.kid, key: createPublicKey(k.key), alg: 'ES256' }],
    shares: true,
    // The verifier's auth.maxTokenLifetimeSec is for VO tokens; links are bounded by their own setting.
    maxLifetimeSec: maxValiditySec + 120,
  };
}

/** A scope path: each component percent-encoded, so spaces and '%' survive the space-separated scope claim. */
export function scopePath(path: string): string {
  return path === '/' ? '/' : path.split('/').map((c) => (c === '' ? '' : encodeURIComponent(c))).join('/');
}

export interface ShareTokenClaims {
  id: string;
  /** Who made the link (the job-owner form, e.g. test:alice). */
  owner: string;
  /** Canonical namespace path. */
  path: string;
  download: boolean;
  issuedAtSec: number;
  expiresAtSec: number;
}

export function signShareToken(k: ShareIssuerKey, c: ShareTokenClaims): string {
  return signJws({
    iss: SHARE_ISSUER, sub: c.owner.slice(0, 255), aud: SHARE_AUDIENCE, iat: c.issuedAtSec, nbf: c.issuedAtSec - 60, exp: c.expiresAtSec,
    jti: c.id, 'wlcg.ver': '1.0', scope: `storage.read:${scopePath(c.path)}`, [SHARE_CLAIM]: { download: c.download },
  }, k.key, { alg: 'ES256', typ: 'JWT', kid: k.kid });
}
