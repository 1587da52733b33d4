/**
 * Outbound tokens: the bearer tokens the port sends to remote endpoints (job sources and destinations), chosen per
 * endpoint by `auth.outbound` — [{prefix, source: static | file | client-credentials, …}], the longest matching URL
 * prefix wins. Each source caches what it got and refreshes it before it expires (the JWT `exp` claim, else the
 * grant's `expires_in`), so a transfer longer than one token's lifetime keeps going: the transfer engine asks for
 * credentials before every request (ranges, retries, continuations), and gets a fresh token once the old one is near
 * its end.
 *
 * A client-credentials source asks the issuer for the narrowest scope the request needs (WLCG profile §
 * capability scopes): `storage.read:/path` for a source, `storage.create:/path` for a destination (`storage.modify`
 * when the file overwrites or a DELETE cleans up), the path being the request URL's path below the entry's
 * `basePath`. Tokens are cached per scope.
 *
 * Tokens never leave this module except in the `Authorization` header of the request they are for: no error message,
 * log line or identity (`credentialsId`) carries one.
 */
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { CargoError } from '../../errors/cargo-error.js';
import { IssuerHttp } from './issuer-keys.js';
import { canonicalComponents, joinPath } from './scopes.js';
import { TokenExchangeSource, type GrantStore } from './token-exchange.js';
import type { TokenRequest, TokenSource } from './token-source.js';

export type { TokenRequest, TokenSource } from './token-source.js';

/** One outbound request, as the transfer engine's credential provider is asked (services/transfer/types.ts). */
export interface OutboundRequest {
  url: string;
  role: 'source' | 'destination';
  method: string;
}
export type OutboundProvider = (req: OutboundRequest) => Promise<Record<string, string>>;

const outboundError = (msg: string, cause?: unknown) =>
  new CargoError('CARGO_ERR_OUTBOUND_TOKEN', msg, cause === undefined ? {} : { cause });
const bad = (field: string, msg: string) => new CargoError('CARGO_ERR_CONFIG', `${field}: ${msg}`, { httpStatus: 500, field });

/** Seconds since the epoch of a JWT's `exp` (undefined for an opaque token or one without exp). Not verified: it is
 *  our own token, read only to know when to fetch the next one. */
export function jwtExpiry(token: string): { exp: number; iat?: number } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof claims['exp'] !== 'number') return undefined;
    return { exp: claims['exp'], ...(typeof claims['iat'] === 'number' ? { iat: claims['iat'] } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * When to stop using a token (ms since the epoch): `refreshBeforeMs` before it expires, but never later than half its
 * lifetime before — a short-lived token (minutes) would otherwise be refreshed only when already useless.
 */
export function refreshAt(expMs: number, issuedMs: number, refreshBeforeMs: number): number {
  const margin = Math.min(refreshBeforeMs, Math.max(0, (expMs - issuedMs) / 2));
  return expMs - margin;
}

interface Cached {
  token: string;
  /** After this instant (ms) the token is fetched again; Infinity: never expires. */
  refreshAt: number;
}

function cachedOf(token: string, now: number, refreshBeforeMs: number, expiresInSec?: number): Cached {
  const j = jwtExpiry(token);
  if (j) return { token, refreshAt: refreshAt(j.exp * 1000, j.iat !== undefined ? j.iat * 1000 : now, refreshBeforeMs) };
  if (expiresInSec !== undefined) return { token, refreshAt: refreshAt(now + expiresInSec * 1000, now, refreshBeforeMs) };
  return { token, refreshAt: Infinity };
}

/** A token written in the configuration. */
export class StaticTokenSource implements TokenSource {
  readonly scoped = false;
  constructor(readonly id: string, private readonly value: string) {}
  token(): Promise<string> {
    return Promise.resolve(this.value);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A token file (as WLCG token discovery's $BEARER_TOKEN_FILE, kept fresh by an agent such as oidc-agent or htgettoken):
 * re-read when it changes (size, mtime or inode), checked at most every `checkMs` — and always once the token read
 * last is due for refresh, so an agent's new token is picked up before the old one expires.
 */
export class FileTokenSource implements TokenSource {
  readonly scoped = false;
  private cached: Cached | undefined;
  private sig = '';
  private checkedAt = -Infinity;
  private inflight: Promise<string> | undefined;

  constructor(readonly id: string, private readonly path: string, private readonly refreshBeforeMs: number, private readonly checkMs = 1000) {}

  token(): Promise<string> {
    const now = Date.now();
    if (this.cached && now - this.checkedAt < this.checkMs && now < this.cached.refreshAt) return Promise.resolve(this.cached.token);
    return this.inflight ??= this.read().finally(() => {
      this.inflight = undefined;
    });
  }

  private async read(): Promise<string> {
    let sig: string;
    try {
      const st = await stat(this.path);
      sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
      this.checkedAt = Date.now();
      if (this.cached && sig === this.sig) return this.cached.token;
      const token = (await readFile(this.path, 'utf8')).trim();
      if (token === '' || /\s/.test(token)) throw outboundError(`token file ${this.path} (${this.id}) is empty or holds more than one word`);
      this.cached = cachedOf(token, Date.now(), this.refreshBeforeMs);
      this.sig = sig;
      return token;
    } catch (e) {
      if (e instanceof CargoError) throw e;
      // A file being replaced may be missing for an instant: the token read before is still good if not expired.
      if (this.cached && Date.now() < this.cached.refreshAt) return this.cached.token;
      throw outboundError(`token file ${this.path} (${this.id}) cannot be read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, e);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export interface ClientCredentialsOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** RFC 8707 `resource` / the `audience` parameter asked for (the remote endpoint's audience); optional. */
  audience?: string;
  refreshBeforeMs: number;
  http: IssuerHttp;
}

const MAX_CACHED_SCOPES = 4096;

/**
 * OAuth 2 client-credentials grant (openid-client, issuer from OIDC discovery over verified TLS), one token per scope
 * asked, cached until due for refresh; concurrent asks for the same scope share one grant.
 */
export class ClientCredentialsSource implements TokenSource {
  readonly scoped = true;
  private config: Promise<oidc.Configuration> | undefined;
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(readonly id: string, private readonly o: ClientCredentialsOptions) {}

  token(req: TokenRequest): Promise<string> {
    const key = req.scope ?? '';
    const hit = this.cache.get(key);
    if (hit && Date.now() < hit.refreshAt) return Promise.resolve(hit.token);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.grant(req.scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private discover(): Promise<oidc.Configuration> {
    const agent = this.o.http.agent;
    const customFetch = ((url: string, options: Record<string, unknown>) => undiciFetch(url, { ...options, dispatcher: agent } as never)) as unknown as oidc.CustomFetch;
    const p = oidc.discovery(new URL(this.o.issuer), this.o.clientId, this.o.clientSecret, undefined, { [oidc.customFetch]: customFetch, timeout: 10 });
    // A failed discovery is tried again by the next ask, not remembered.
    p.catch(() => {
      if (this.config === p) this.config = undefined;
    });
    return this.config ??= p;
  }

  private async grant(scope: string | undefined): Promise<string> {
    let res: oidc.TokenEndpointResponse;
    try {
      const config = await this.discover();
      const params: Record<string, string> = {};
      if (scope !== undefined) params['scope'] = scope;
      if (this.o.audience !== undefined) params['audience'] = this.o.audience;
      res = await oidc.clientCredentialsGrant(config, params);
    } catch (e) {
      // openid-client's messages name the issuer's error code, never our secret; no response body is copied.
      const why = e instanceof Error ? e.message : 'error';
      throw outboundError(`client-credentials grant at ${this.o.issuer} (${this.id}${scope ? `, scope ${scope}` : ''}) failed: ${why}`, e);
    }
    const now = Date.now();
    const c = cachedOf(res.access_token, now, this.o.refreshBeforeMs, typeof res.expires_in === 'number' ? res.expires_in : undefined);
    if (this.cache.size >= MAX_CACHED_SCOPES) {
      for (const [k, v] of this.cache) if (v.refreshAt <= now) this.cache.delete(k);
      if (this.cache.size >= MAX_CACHED_SCOPES) this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(scope ?? '', c);
    return c.token;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export interface OutboundEntry {
  /** URL prefix (an origin, or an origin and path) the entry applies to. */
  prefix: string;
  /** URL path that is `/` in the token's scopes (default: the prefix's path). */
  basePath: string;
  /** Scope asked for by a scoped source: 'narrow' (per request), or fixed scopes. */
  scopes: 'narrow' | string[];
  source: TokenSource;
}

/** The narrowest storage scope for one request: read for a source, create (modify to overwrite or delete) for a destination. */
export function narrowScope(req: OutboundRequest, basePath: string, overwrite: boolean): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url).pathname);
  } catch {
    return undefined;
  }
  const base = basePath.replace(/\/+$/, '');
  if (base !== '' && path !== base && !path.startsWith(`${base}/`)) return undefined;
  const rel = joinPath('/', canonicalComponents(path.slice(base.length) || '/', (m) => outboundError(`cannot scope ${req.method} request: ${m}`)));
  if (req.role === 'source') return `storage.read:${rel}`;
  return `storage.${overwrite || req.method === 'DELETE' ? 'modify' : 'create'}:${rel}`;
}

/** The configured token sources, matched to URLs by prefix. */
export class OutboundTokens {
  constructor(readonly entries: readonly OutboundEntry[], private readonly http?: IssuerHttp) {}

  /** The entry of the longest prefix that matches `url` (whole path components). */
  match(url: string): OutboundEntry | undefined {
    let best: OutboundEntry | undefined;
    for (const e of this.entries) {
      if (!url.startsWith(e.prefix)) continue;
      const rest = url.slice(e.prefix.length);
      if (rest !== '' && !e.prefix.endsWith('/') && !/^[/?#]/.test(rest)) continue;
      if (!best || e.prefix.length > best.prefix.length) best = e;
    }
    return best;
  }

  /**
   * The credential provider of one transfer (undefined when no entry covers either side), and the identity of the
   * sources involved (for connection partitioning; never a token).
   */
  forTransfer(t: { source: string; destination: string; overwrite: boolean; jobId?: string }): { provider: OutboundProvider; id: string } | undefined {
    const src = this.match(t.source);
    const dst = this.match(t.destination);
    if (!src && !dst) return undefined;
    const provider: OutboundProvider = async (req): Promise<Record<string, string>> => {
      const e = this.match(req.url);
      if (!e) return {};
      let scope: string | undefined;
      if (e.source.scoped) scope = e.scopes === 'narrow' ? narrowScope(req, e.basePath, t.overwrite) : e.scopes.join(' ');
      return { authorization: `Bearer ${await e.source.token({ ...(scope === undefined ? {} : { scope }), ...(t.jobId !== undefined ? { jobId: t.jobId } : {}) })}` };
    };
    // A token-exchange source acts for one job's submitter: its connections are that job's.
    const idOf = (e: OutboundEntry | undefined) => (e ? (e.source instanceof TokenExchangeSource && t.jobId ? `${e.source.id}@${t.jobId}` : e.source.id) : '-');
    return { provider, id: `${idOf(src)}>${idOf(dst)}` };
  }

  /** Entries whose source is a token exchange (the gateway exchanges the submitter's token for them). */
  get exchangeEntries(): Array<OutboundEntry & { source: TokenExchangeSource }> {
    return this.entries.filter((e): e is OutboundEntry & { source: TokenExchangeSource } => e.source instanceof TokenExchangeSource);
  }

  /** Gives the token-exchange sources the sealed-grant store (workers). */
  attachGrants(store: GrantStore): void {
    for (const e of this.exchangeEntries) e.source.grants = store;
  }

  async close(): Promise<void> {
    await Promise.all(this.entries.map((e) => e.source.close()));
    await this.http?.close();
  }
}

const KEYS = ['prefix', 'name', 'source', 'token', 'file', 'issuer', 'clientId', 'clientSecret', 'clientSecretFile', 'audience', 'scopes', 'basePath', 'refreshBeforeSec'];

function optString(e: Record<string, unknown>, k: string, f: string): string | undefined {
  const v = e[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw bad(`${f}.${k}`, 'must be a non-empty string');
  return v;
}

/**
 * Parses `auth.outbound`. Errors name the entry and key, never a value (a token or secret must not end up in a
 * start-up error). `ca`: extra CA certificates trusted for issuers (auth.issuerCaFile).
 */
export function parseOutboundTokens(raw: unknown[], opts: { ca?: string[] } = {}): OutboundTokens {
  let http: IssuerHttp | undefined;
  const entries: OutboundEntry[] = [];
  raw.forEach((entry, i) => {
    const f = `auth.outbound[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw bad(f, 'must be a mapping');
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!KEYS.includes(k)) throw bad(`${f}.${k}`, 'unknown key');
    const prefix = optString(e, 'prefix', f);
    let url: URL;
    try {
      url = new URL(prefix ?? '');
    } catch {
      throw bad(`${f}.prefix`, 'must be an https:// or http:// URL prefix (an origin, optionally with a path)');
    }
    if (!/^https?:$/.test(url.protocol) || url.username || url.password || url.search || url.hash) {
      throw bad(`${f}.prefix`, 'must be an https:// or http:// URL prefix without credentials, query or fragment');
    }
    const norm = prefix!.replace(/^[a-z]+:\/\/[^/]+/i, url.origin);
    const name = optString(e, 'name', f) ?? `outbound[${i}]`;
    const refresh = e['refreshBeforeSec'] ?? 60;
    if (typeof refresh !== 'number' || !Number.isInteger(refresh) || refresh < 0 || refresh > 86400) throw bad(`${f}.refreshBeforeSec`, 'must be an integer from 0 to 86400');
    const refreshBeforeMs = refresh * 1000;
    const basePath = e['basePath'] === undefined ? url.pathname : optString(e, 'basePath', f)!;
    if (!basePath.startsWith('/')) throw bad(`${f}.basePath`, 'must be an absolute URL path');
    let scopes: 'narrow' | string[] = 'narrow';
    if (e['scopes'] !== undefined && e['scopes'] !== 'narrow') {
      if (!Array.isArray(e['scopes']) || e['scopes'].some((s) => typeof s !== 'string' || !/^\S+$/.test(s))) throw bad(`${f}.scopes`, 'must be "narrow" or a list of scopes');
      scopes = e['scopes'] as string[];
    }
    let source: TokenSource;
    switch (e['source']) {
      case 'static': {
        const token = optString(e, 'token', f);
        if (token === undefined || /\s/.test(token)) throw bad(`${f}.token`, 'a static source needs the token (one word)');
        source = new StaticTokenSource(name, token);
        break;
      }
      case 'file': {
        const file = optString(e, 'file', f);
        if (file === undefined || !file.startsWith('/')) throw bad(`${f}.file`, 'a file source needs an absolute path');
        source = new FileTokenSource(name, file, refreshBeforeMs);
        break;
      }
      case 'client-credentials':
      case 'token-exchange': {
        const issuer = optString(e, 'issuer', f);
        if (issuer === undefined || !issuer.startsWith('https://')) throw bad(`${f}.issuer`, 'must be the https:// issuer URL');
        const clientId = optString(e, 'clientId', f);
        if (clientId === undefined) throw bad(`${f}.clientId`, 'is required');
        let clientSecret = optString(e, 'clientSecret', f);
        const secretFile = optString(e, 'clientSecretFile', f);
        if ((clientSecret === undefined) === (secretFile === undefined)) throw bad(`${f}.clientSecret`, 'give exactly one of clientSecret and clientSecretFile');
        if (secretFile !== undefined) {
          try {
            clientSecret = readFileSync(secretFile, 'utf8').trim();
          } catch (err) {
            throw bad(`${f}.clientSecretFile`, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
          }
        }
        http ??= new IssuerHttp(opts.ca);
        const audience = optString(e, 'audience', f);
        const o = { issuer, clientId, clientSecret: clientSecret!, refreshBeforeMs, http, ...(audience ? { audience } : {}) };
        source = e['source'] === 'token-exchange' ? new TokenExchangeSource(name, o) : new ClientCredentialsSource(name, o);
        break;
      }
      default:
        throw bad(`${f}.source`, 'must be static, file, client-credentials or token-exchange');
    }
    entries.push({ prefix: norm, basePath, scopes, source });
  });
  return new OutboundTokens(entries, http);
}

/** `auth.outbound` of a loaded configuration, issuers' TLS trusting `auth.issuerCaFile` too; undefined when empty. */
export function outboundTokensFromConfig(auth: { outbound: unknown[]; issuerCaFile: string }): OutboundTokens | undefined {
  if (auth.outbound.length === 0) return undefined;
  let ca: string[] | undefined;
  if (auth.issuerCaFile) {
    try {
      ca = [readFileSync(auth.issuerCaFile, 'utf8')];
    } catch (e) {
      throw bad('auth.issuerCaFile', `cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return parseOutboundTokens(auth.outbound, ca ? { ca } : {});
}
