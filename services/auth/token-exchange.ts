/**
 * RFC 8693 token exchange as an outbound token source (`auth.outbound` entries with `source: token-exchange`): the
 * port acts for the user who submitted a job, at remote endpoints that trust the same issuer.
 *
 * Where the user's token goes — the choice, and why. The workers run in other processes (serve's child, or
 * `cargoport worker` elsewhere) and a job may run long after the user's token expired, so the token cannot simply
 * be handed on. At submission the gateway exchanges the user's token (subject_token, never stored) at the entry's
 * issuer for a grant covering the job's files on that endpoint — the narrow scopes of every file plus
 * `offline_access`, asking for a refresh token — and stores that grant **sealed** (AES-256-GCM, key from
 * `auth.tokenSealKeyFile`, token-seal.ts) in Redis under the job, expiring with it. The worker opens it and, per
 * request, uses the refresh token to ask for an access token with the narrowest scope that request needs
 * (`storage.read:/path` for a source, `storage.create|modify:/path` for a destination; a refresh may narrow scopes,
 * RFC 6749 §6), cached per scope and refreshed before it expires, so a transfer longer than one token's lifetime goes
 * on. A rotated refresh token is sealed and stored again. An issuer that gives no refresh token: the exchanged access
 * token itself is sealed and used until it expires (then the file fails with CARGO_ERR_OUTBOUND_TOKEN).
 *
 * Tokens are never in Redis in clear, logs, errors, `/status` or `/events`: errors name the entry and issuer only.
 */
import * as oidc from 'openid-client';
import type { Redis } from 'ioredis';
import { fetch as undiciFetch } from 'undici';
import { CargoError } from '../../errors/cargo-error.js';
import type { IssuerHttp } from './issuer-keys.js';
import type { TokenRequest, TokenSource } from './token-source.js';
import type { TokenSealer } from './token-seal.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token';

const outboundError = (msg: string, cause?: unknown) => new CargoError('CARGO_ERR_OUTBOUND_TOKEN', msg, cause === undefined ? {} : { cause });

/** What the exchange gave; kept sealed in Redis. */
export interface ExchangedGrant {
  refreshToken?: string;
  accessToken?: string;
  /** ms since the epoch when `accessToken` is due for refresh. */
  accessRefreshAt?: number;
  /** Scopes the grant covers (space-separated, offline_access excluded). */
  scope: string;
}

/** Sealed grants of jobs, `<prefix>:xgrant:<jobId>:<entry>`, expiring with the job. */
export class GrantStore {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly sealer: TokenSealer) {}

  private key(jobId: string, entry: string): string {
    return `${this.prefix}:xgrant:${jobId}:${entry}`;
  }

  async put(jobId: string, entry: string, g: ExchangedGrant, ttlSec: number): Promise<void> {
    await this.redis.set(this.key(jobId, entry), this.sealer.seal(JSON.stringify(g), `${jobId}/${entry}`), 'EX', Math.max(60, ttlSec));
  }

  /** Replaces a stored grant, keeping its expiry (a rotated refresh token). */
  async replace(jobId: string, entry: string, g: ExchangedGrant): Promise<void> {
    await this.redis.set(this.key(jobId, entry), this.sealer.seal(JSON.stringify(g), `${jobId}/${entry}`), 'KEEPTTL', 'XX');
  }

  async get(jobId: string, entry: string): Promise<ExchangedGrant | undefined> {
    const v = await this.redis.get(this.key(jobId, entry));
    return v === null ? undefined : (JSON.parse(this.sealer.open(v, `${jobId}/${entry}`)) as ExchangedGrant);
  }
}

export interface TokenExchangeOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The remote endpoint's audience, asked for as RFC 8693 `audience`. */
  audience?: string;
  refreshBeforeMs: number;
  http: IssuerHttp;
}

function expiryOf(token: string, expiresIn: number | undefined, now: number, refreshBeforeMs: number): number {
  let exp: number | undefined;
  let iat = now;
  const parts = token.split('.');
  if (parts.length === 3) {
    try {
      const c = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown; iat?: unknown };
      if (typeof c.exp === 'number') exp = c.exp * 1000;
      if (typeof c.iat === 'number') iat = c.iat * 1000;
    } catch {
      /* opaque */
    }
  }
  if (exp === undefined && expiresIn !== undefined) exp = now + expiresIn * 1000;
  if (exp === undefined) return Infinity;
  return exp - Math.min(refreshBeforeMs, Math.max(0, (exp - iat) / 2));
}

const MAX_CACHED = 4096;

export class TokenExchangeSource implements TokenSource {
  readonly scoped = true;
  /** Set in the workers (they read the sealed grants); the gateway only exchanges. */
  grants: GrantStore | undefined;
  private config: Promise<oidc.Configuration> | undefined;
  private readonly cache = new Map<string, { token: string; refreshAt: number }>();
  private readonly inflight = new Map<string, Promise<string>>();
  /** Refreshes of one job run one after the other (an issuer that rotates refresh tokens would refuse the older). */
  private readonly jobChains = new Map<string, Promise<unknown>>();

  constructor(readonly id: string, private readonly o: TokenExchangeOptions) {}

  private discover(): Promise<oidc.Configuration> {
    const agent = this.o.http.agent;
    const customFetch = ((url: string, options: Record<string, unknown>) => undiciFetch(url, { ...options, dispatcher: agent } as never)) as unknown as oidc.CustomFetch;
    const p = oidc.discovery(new URL(this.o.issuer), this.o.clientId, this.o.clientSecret, undefined, { [oidc.customFetch]: customFetch, timeout: 10 });
    p.catch(() => {
      if (this.config === p) this.config = undefined;
    });
    return this.config ??= p;
  }

  /** At submission: the user's token exchanged for a grant covering `scopes` (the job's files on this endpoint). */
  async exchange(subjectToken: string, scopes: string[]): Promise<ExchangedGrant> {
    const scope = [...new Set(scopes)].join(' ');
    let res: oidc.TokenEndpointResponse;
    try {
      const config = await this.discover();
      res = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, {
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        scope: `${scope} offline_access`,
        ...(this.o.audience !== undefined ? { audience: this.o.audience } : {}),
      });
    } catch (e) {
      const why = e instanceof Error ? e.message : 'error';
      throw outboundError(`token exchange at ${this.o.issuer} (${this.id}) failed: ${why}`, e);
    }
    const now = Date.now();
    return {
      scope,
      ...(typeof res.refresh_token === 'string' ? { refreshToken: res.refresh_token } : {}),
      accessToken: res.access_token,
      accessRefreshAt: expiryOf(res.access_token, typeof res.expires_in === 'number' ? res.expires_in : undefined, now, this.o.refreshBeforeMs),
    };
  }

  /** In a worker: a token for one request of job `req.jobId`, with `req.scope`, refreshed before it expires. */
  token(req: TokenRequest): Promise<string> {
    const jobId = req.jobId;
    if (jobId === undefined) return Promise.reject(outboundError(`${this.id}: token exchange acts for a job's submitter; this request belongs to no job`));
    const key = `${jobId} ${req.scope ?? ''}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() < hit.refreshAt) return Promise.resolve(hit.token);
    let p = this.inflight.get(key);
    if (!p) {
      const prev = this.jobChains.get(jobId) ?? Promise.resolve();
      const run = prev.catch(() => undefined).then(() => this.fetch(jobId, req.scope));
      this.jobChains.set(jobId, run);
      void run.catch(() => undefined).finally(() => {
        if (this.jobChains.get(jobId) === run) this.jobChains.delete(jobId);
      });
      p = run.then((c) => {
        if (this.cache.size >= MAX_CACHED) {
          const now = Date.now();
          for (const [k, v] of this.cache) if (v.refreshAt <= now) this.cache.delete(k);
          if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
        }
        this.cache.set(key, c);
        return c.token;
      }).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetch(jobId: string, scope: string | undefined): Promise<{ token: string; refreshAt: number }> {
    if (!this.grants) throw outboundError(`${this.id}: no grant store in this process`);
    const g = await this.grants.get(jobId, this.id);
    if (!g) throw outboundError(`${this.id}: job ${jobId} has no exchanged grant (submitted before the entry existed, or expired)`);
    const now = Date.now();
    if (!g.refreshToken) {
      if (g.accessToken && g.accessRefreshAt !== undefined && now < g.accessRefreshAt) return { token: g.accessToken, refreshAt: g.accessRefreshAt };
      throw outboundError(`${this.id}: the exchanged token of job ${jobId} has expired and ${this.o.issuer} gave no refresh token`);
    }
    let res: oidc.TokenEndpointResponse;
    try {
      const config = await this.discover();
      res = await oidc.refreshTokenGrant(config, g.refreshToken, scope !== undefined ? { scope } : {});
    } catch (e) {
      const why = e instanceof Error ? e.message : 'error';
      throw outboundError(`refresh of the exchanged grant at ${this.o.issuer} (${this.id}${scope ? `, scope ${scope}` : ''}) failed: ${why}`, e);
    }
    if (typeof res.refresh_token === 'string' && res.refresh_token !== g.refreshToken) {
      await this.grants.replace(jobId, this.id, { ...g, refreshToken: res.refresh_token });
    }
    return { token: res.access_token, refreshAt: expiryOf(res.access_token, typeof res.expires_in === 'number' ? res.expires_in : undefined, Date.now(), this.o.refreshBeforeMs) };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
