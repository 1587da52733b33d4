/**
 * Verifies a WLCG access token (common JWT profile v1.x, wlcg.md §1) and turns it into a TokenPrincipal.
 *
 * Order: decode (header rules in jws.ts) → unverified `iss` must be a trusted issuer → key by `kid` from that
 * issuer's JWKS (issuer-keys.ts) → signature → claims: `iss sub exp iat jti aud wlcg.ver` present, `wlcg.ver`
 * MAJOR 1 (newer minors accepted), `exp`/`nbf`/`iat` with a small clock-skew allowance, a lifetime above the
 * configured maximum refused, `aud` (string or array) must contain an accepted audience (exact compare) →
 * scopes (a path-less storage scope invalidates the token) → rights (capabilities, else groups) → admin.
 *
 * Verified tokens are cached by their exact text until they expire (bounded), so a client that sends the same
 * token on every request pays for one signature check, not one per request.
 */
import { InvalidTokenError } from './auth-errors.js';
import { IssuerHttp, IssuerKeys, type IssuerKeyOptions } from './issuer-keys.js';
import type { IssuerSettings } from './issuer-settings.js';
import { decodeJws, verifySignature } from './jws.js';
import type { TokenPrincipal } from './principal.js';
import { parseScopes, type PathGrant } from './scopes.js';
import { SHARE_CLAIM } from './share-issuer.js';

export interface VerifierOptions {
  clockSkewSec: number;
  /** 0: no limit. */
  maxLifetimeSec: number;
  keys: Omit<IssuerKeyOptions, 'now'>;
  now?: () => number;
}

const CACHE_MAX = 4096;
const WLCG_VER = /^([0-9]+)\.([0-9]+)$/;

export class TokenVerifier {
  private readonly byIssuer = new Map<string, { settings: IssuerSettings; keys?: IssuerKeys }>();
  private readonly http: IssuerHttp;
  private readonly cache = new Map<string, TokenPrincipal>();
  private readonly now: () => number;

  constructor(issuers: IssuerSettings[], private readonly opts: VerifierOptions) {
    this.now = opts.now ?? Date.now;
    this.http = new IssuerHttp(opts.keys.ca);
    for (const s of issuers) {
      this.byIssuer.set(s.issuer, { settings: s, ...(s.staticKeys ? {} : { keys: new IssuerKeys(s.issuer, this.http, { ...opts.keys, now: this.now }) }) });
    }
  }

  get issuers(): IssuerSettings[] {
    return [...this.byIssuer.values()].map((v) => v.settings);
  }

  /** The principal of a token verified before and not expired since, without any asynchronous step. */
  cached(token: string): TokenPrincipal | undefined {
    const hit = this.cache.get(token);
    if (!hit) return undefined;
    if (this.now() / 1000 < hit.expiresAt + this.opts.clockSkewSec) return hit;
    this.cache.delete(token);
    return undefined;
  }

  async verify(token: string): Promise<TokenPrincipal> {
    const nowSec = this.now() / 1000;
    const cached = this.cached(token);
    if (cached) return cached;
    const jws = decodeJws(token);
    const iss = jws.payload['iss'];
    if (typeof iss !== 'string') throw new InvalidTokenError('the token has no "iss" claim');
    const entry = this.byIssuer.get(iss);
    if (!entry) throw new InvalidTokenError(`issuer ${JSON.stringify(iss.slice(0, 200))} is not trusted here`);
    const s = entry.settings;
    const vk = entry.keys ? await entry.keys.key(jws.header.kid) : s.staticKeys!.find((k) => k.kid === jws.header.kid);
    if (!vk) throw new InvalidTokenError(`issuer ${iss} has no key "${jws.header.kid.slice(0, 100)}"`);
    verifySignature(jws, vk);
    const p = this.checkClaims(jws.payload, s, nowSec);
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, p);
    return p;
  }

  private checkClaims(c: Record<string, unknown>, s: IssuerSettings, now: number): TokenPrincipal {
    const skew = this.opts.clockSkewSec;
    const need = (name: string, type: 'string' | 'number') => {
      const v = c[name];
      if (typeof v !== type || (type === 'string' && v === '') || (type === 'number' && !Number.isFinite(v))) {
        throw new InvalidTokenError(`the token's "${name}" claim is missing or not a ${type} (required by the WLCG profile)`);
      }
      return v as never;
    };
    const sub: string = need('sub', 'string');
    const exp: number = need('exp', 'number');
    const iat: number = need('iat', 'number');
    need('jti', 'string');
    const ver: string = need('wlcg.ver', 'string');
    const m = WLCG_VER.exec(ver);
    if (!m) throw new InvalidTokenError(`wlcg.ver "${ver.slice(0, 20)}" is not MAJOR.MINOR`);
    if (m[1] !== '1') throw new InvalidTokenError(`wlcg.ver ${ver} has an unsupported major version (1 is supported)`);
    if (sub.length > 255) throw new InvalidTokenError('the token\'s "sub" is longer than 255 characters');
    if (now >= exp + skew) throw new InvalidTokenError(`the token expired at ${new Date(exp * 1000).toISOString()}`);
    const nbf = c['nbf'];
    if (nbf !== undefined && (typeof nbf !== 'number' || now + skew < nbf)) throw new InvalidTokenError('the token is not valid yet (nbf)');
    if (iat > now + skew) throw new InvalidTokenError('the token was issued in the future (iat)');
    // Lifetime from iat: nbf is back-dated by issuers to absorb clock skew (profile §4.3.1), not part of it.
    const maxLife = s.maxLifetimeSec ?? this.opts.maxLifetimeSec;
    if (maxLife > 0 && exp - iat > maxLife) {
      throw new InvalidTokenError(`the token's lifetime (${Math.round(exp - iat)} s) exceeds the ${maxLife} s accepted here`);
    }
    const aud = c['aud'];
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? (aud as string[]) : undefined;
    if (!auds || auds.length === 0) throw new InvalidTokenError('the token\'s "aud" claim is missing (required by the WLCG profile)');
    if (!auds.some((a) => s.audiences.includes(a))) throw new InvalidTokenError(`the token's audience ${JSON.stringify(auds).slice(0, 200)} is not accepted here`);

    const scopes = parseScopes(c['scope'], s.basePath);
    const rawGroups = c['wlcg.groups'];
    const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : [];
    let grants: PathGrant[] = scopes.grants;
    if (!scopes.hasCapability) {
      grants = [];
      for (const rule of s.groups) {
        if (!groups.includes(rule.group)) continue;
        for (const r of rule.rights) grants.push({ capability: r, path: rule.path, directoryOnly: false });
      }
    }
    const admin = s.adminSubjects.includes(sub) || groups.some((g) => s.adminGroups.includes(g)) || scopes.all.some((x) => s.adminScopes.includes(x));
    const p: TokenPrincipal = { kind: 'token', issuer: s.issuer, subject: sub, owner: `${s.name}:${sub}`, grants, groups, admin, expiresAt: exp };
    if (s.shares) {
      // A share token grants exactly one read scope; anything else is not one of ours.
      const read = grants.length === 1 && grants[0]!.capability === 'read' ? grants[0]! : undefined;
      const extra = c[SHARE_CLAIM] as { download?: unknown } | undefined;
      if (!read || typeof c['jti'] !== 'string' || !extra || typeof extra.download !== 'boolean') throw new InvalidTokenError('the share token is malformed');
      p.share = { id: c['jti'], path: read.path, download: extra.download };
      p.admin = false;
    }
    return p;
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
