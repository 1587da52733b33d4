/**
 * Compact JWS parsing and signature checking with node:crypto, for WLCG access tokens (common JWT profile §4.2).
 *
 * Only asymmetric algorithms are accepted (RS*, PS*, ES*, EdDSA): `none` and HMAC are refused before any key is
 * looked at, so a token "signed" with an issuer's public key as an HMAC secret is never verified as valid. The key
 * must match the algorithm (an RSA key for RS/PS, an EC key on the algorithm's curve for ES, an OKP key for EdDSA).
 * Headers that point at other keys (`jku`, `x5u`, `jwk`, `x5c`) are refused: keys come only from the trusted issuer's
 * JWKS, and a token that asks for another source is a forgery attempt or a misconfigured issuer. `crit` is refused
 * too (we understand no extension).
 */
import { createPublicKey, verify as cryptoVerify, constants, type KeyObject, type JsonWebKey } from 'node:crypto';
import { InvalidTokenError, IssuerUnavailableError } from './auth-errors.js';

/** Longest token accepted: WLCG tokens are a few kB; a bound keeps parsing cheap for hostile input. */
export const MAX_TOKEN_BYTES = 16 * 1024;

export const ACCEPTED_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type AcceptedAlg = (typeof ACCEPTED_ALGS)[number];

const EC_CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };
const JWK_CURVE: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'];

export interface DecodedJws {
  header: { alg: AcceptedAlg; kid: string; [k: string]: unknown };
  payload: Record<string, unknown>;
  signingInput: Buffer;
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function jsonPart(part: string, what: string): Record<string, unknown> {
  if (!B64URL.test(part)) throw new InvalidTokenError(`the token's ${what} is not base64url`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidTokenError(`the token's ${what} is not JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidTokenError(`the token's ${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Splits and decodes a compact JWS; checks the header's algorithm and key reference, not the signature. */
export function decodeJws(token: string): DecodedJws {
  if (token.length > MAX_TOKEN_BYTES) throw new InvalidTokenError(`the token is longer than ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new InvalidTokenError('the token is not a compact JWS (three dot-separated parts); encrypted tokens are not accepted');
  const header = jsonPart(parts[0]!, 'header');
  const payload = jsonPart(parts[1]!, 'payload');
  if (!B64URL.test(parts[2]!)) throw new InvalidTokenError('the token\'s signature is not base64url');
  const alg = header['alg'];
  if (typeof alg !== 'string' || !(ACCEPTED_ALGS as readonly string[]).includes(alg)) {
    throw new InvalidTokenError(`signature algorithm ${JSON.stringify(alg)} is not accepted (asymmetric RS/PS/ES/EdDSA only; never none or HMAC)`);
  }
  for (const h of FORBIDDEN_HEADERS) {
    if (header[h] !== undefined) throw new InvalidTokenError(`the token header carries "${h}": keys are taken only from the trusted issuer's JWKS`);
  }
  if (typeof header['kid'] !== 'string' || header['kid'] === '') throw new InvalidTokenError('the token header has no "kid" (the WLCG profile requires one)');
  return {
    header: header as DecodedJws['header'],
    payload,
    signingInput: Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'),
    signature: Buffer.from(parts[2]!, 'base64url'),
  };
}

/** A public key of an issuer's JWKS, ready to verify. */
export interface VerificationKey {
  kid: string;
  key: KeyObject;
  /** The JWK's `alg`, when it names one: the token must then use exactly that algorithm. */
  alg?: string;
}

/** Public signing keys of a JWKS document; entries that are not usable signing keys are skipped. */
export function keysFromJwks(doc: unknown): VerificationKey[] {
  const keys = (doc as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) throw new IssuerUnavailableError('the JWKS document has no "keys" array');
  const out: VerificationKey[] = [];
  for (const k of keys as Array<Record<string, unknown>>) {
    if (!k || typeof k !== 'object' || typeof k['kid'] !== 'string') continue;
    if (k['use'] !== undefined && k['use'] !== 'sig') continue;
    if (k['kty'] !== 'RSA' && k['kty'] !== 'EC' && k['kty'] !== 'OKP') continue;
    // Only the public members: a JWKS that leaks a private part must not make us hold a private key.
    const pub: Record<string, unknown> = { kty: k['kty'] };
    for (const m of ['n', 'e', 'crv', 'x', 'y']) if (k[m] !== undefined) pub[m] = k[m];
    try {
      const key = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' });
      out.push({ kid: k['kid'], key, ...(typeof k['alg'] === 'string' ? { alg: k['alg'] } : {}) });
    } catch {
      /* malformed key: skip it, the token naming it will find no key */
    }
  }
  return out;
}

function keyFits(alg: AcceptedAlg, key: KeyObject): boolean {
  const t = key.asymmetricKeyType;
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    return (t === 'rsa' || (alg.startsWith('PS') && t === 'rsa-pss')) && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
  }
  if (alg.startsWith('ES')) return t === 'ec' && key.asymmetricKeyDetails?.namedCurve === EC_CURVE[alg];
  return t === 'ed25519' || t === 'ed448';
}

/** Checks the signature of a decoded JWS with `vk`; throws InvalidTokenError if it does not verify. */
export function verifySignature(jws: DecodedJws, vk: VerificationKey): void {
  const alg = jws.header.alg;
  if (vk.alg !== undefined && vk.alg !== alg) throw new InvalidTokenError(`key ${vk.kid} is for ${vk.alg}, the token says ${alg}`);
  if (!keyFits(alg, vk.key)) throw new InvalidTokenError(`key ${vk.kid} cannot verify ${alg}`);
  const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
  let ok: boolean;
  try {
    if (alg.startsWith('PS')) {
      ok = cryptoVerify(hash, jws.signingInput, { key: vk.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, jws.signature);
    } else if (alg.startsWith('ES')) {
      ok = cryptoVerify(hash, jws.signingInput, { key: vk.key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    } else {
      ok = cryptoVerify(hash, jws.signingInput, vk.key, jws.signature);
    }
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidTokenError('the token\'s signature does not verify');
}

export { JWK_CURVE };
