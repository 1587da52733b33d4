/**
 * The gateway's one authentication and authorisation decision point (issue 13). Every request passes the
 * `onRequest` hook installed here: a Bearer token is verified (services/auth/token-verifier.ts) and becomes
 * `request.principal`; without a token, a client certificate mapped to an identity (mutual TLS,
 * services/auth/client-certs.ts) is the principal — a token, when sent, wins over the certificate; neither is the
 * anonymous principal; a bad token is 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"` before any route runs. Routes then ask this module:
 * `requireIdentity`, `requireAdmin`, `storageAuthorize` (the storage endpoint's and Tape REST's AuthorizeFn),
 * and the submission checks (gateway/job-authorisation.ts).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { isCargoError } from '../errors/cargo-error.js';
import type { TLSSocket } from 'node:tls';
import { AddressPolicy } from '../services/auth/address-policy.js';
import { ClientCertMapper, clientCertSettings, type ClientCertSettings } from '../services/auth/client-certs.js';
import { ForbiddenError, InvalidTokenError, UnauthenticatedError } from '../services/auth/auth-errors.js';
import { DEV_ISSUER, devIssuerSettings } from '../services/auth/dev-issuer.js';
import { outboundTokensFromConfig } from '../services/auth/outbound-tokens.js';
import { canonicalNamespacePath, parseIssuerSettings, type IssuerSettings } from '../services/auth/issuer-settings.js';
import { ANONYMOUS, canonicalPrefixes, describe, mayAccess, type Principal, type ShareGrant } from '../services/auth/principal.js';
import { covers, type StorageAction } from '../services/auth/scopes.js';
import { TokenVerifier } from '../services/auth/token-verifier.js';
import { shareIssuerKey, shareIssuerSettings, type ShareIssuerKey } from '../services/auth/share-issuer.js';
import type { ShareLinks } from '../services/auth/share-links.js';
import type { RateLimiter } from '../services/throttle/rate-limiter.js';
import type { AuthorizeFn } from './storage/storage-options.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking; set by the auth hook before any route runs. */
    principal: Principal;
  }
}

/** Audience of tokens minted by the built-in development issuer (accepted only from that issuer). */
export const DEV_AUDIENCE = 'cargoport-dev';

export interface LocalArea {
  /** Absolute host directory (as configured; resolved through symlinks when checked). */
  dir: string;
  /** Canonical namespace path it stands for. */
  path: string;
}

export interface GatewayAuth {
  open: boolean;
  publicPrefixes: string[];
  localAreas: LocalArea[];
  addressPolicy: AddressPolicy;
  issuers: IssuerSettings[];
  /** Mutual TLS settings (trusted client CAs, DN rules), when configured. */
  clientCerts?: ClientCertSettings;
  /** The share issuer's signing key (undefined: auth.shareMaxValiditySec is 0, share links off). */
  shareKey?: ShareIssuerKey;
  /** Share links' service, set by the gateway once Redis is connected. */
  shares?: ShareLinks;
  /** The byte-rate limiter of a share link's download admitted for `request`, if the link has a cap. */
  downloadLimiter(request: FastifyRequest): RateLimiter | undefined;
  /** The principal, or a promise of it when a token must be verified (the common cases need no promise). */
  authenticate(request: FastifyRequest): Principal | Promise<Principal>;
  requireIdentity(request: FastifyRequest): Principal;
  requireAdmin(request: FastifyRequest): Principal;
  /** Storage endpoint / Tape REST decision: false = 403; throws 401 for an anonymous caller. */
  storageAuthorize: AuthorizeFn;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1']);

/** Whether the built-in development issuer runs with this configuration (throws if asked for on a public address). */
export function devIssuerEnabled(cfg: Config): boolean {
  const loop = LOOPBACK_HOSTS.has(cfg.gateway.host);
  if (cfg.auth.devIssuer === 'on' && !loop) {
    throw new ConfigError(`auth.devIssuer is on but gateway.host is ${cfg.gateway.host}: the development issuer is refused on anything but loopback (anyone reading <dataDir>/dev-issuer could mint tokens)`, 'auth.devIssuer');
  }
  return cfg.auth.devIssuer === 'on' || (cfg.auth.devIssuer === 'auto' && loop);
}

function defaultAudiences(cfg: Config): string[] {
  if (cfg.auth.audiences.length > 0) return cfg.auth.audiences;
  const out: string[] = [];
  if (cfg.gateway.publicUrl) out.push(cfg.gateway.publicUrl.replace(/\/+$/, ''));
  if (cfg.gateway.port !== 0) out.push(`https://localhost:${cfg.gateway.port}`);
  return out;
}

function parseLocalAreas(raw: unknown[]): LocalArea[] {
  return raw.map((e, i) => {
    const f = `auth.localAreas[${i}]`;
    const r = e as Record<string, unknown>;
    if (!r || typeof r !== 'object' || typeof r['dir'] !== 'string' || !r['dir'].startsWith('/')) throw new ConfigError(`${f}.dir must be an absolute directory`, `${f}.dir`);
    for (const k of Object.keys(r)) if (k !== 'dir' && k !== 'path') throw new ConfigError(`${f}.${k}: unknown key`, `${f}.${k}`);
    const dir = '/' + r['dir'].split('/').filter((s) => s !== '' && s !== '.').join('/');
    if (dir.split('/').includes('..')) throw new ConfigError(`${f}.dir must not contain ".."`, `${f}.dir`);
    return { dir, path: canonicalNamespacePath(r['path'] ?? '/', `${f}.path`) };
  });
}

/**
 * A token in the query of a storage URL (`?authz=…` as dCache and XRootD links carry it, `?access_token=…` as RFC
 * 6750 §2.3), for links opened in a browser; XRootD's `authz=Bearer%20…` form too. Elsewhere (the API) tokens go
 * in the Authorization header only. Request logs drop the query (gateway/server.ts) so the token is not logged.
 */
export function queryToken(url: string, storagePrefix: string): string | undefined {
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  if (!(url.startsWith(storagePrefix + '/') || url.startsWith(storagePrefix + '?'))) return undefined;
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (name !== 'authz' && name !== 'access_token') continue;
    let v: string;
    try {
      v = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' ')).trim();
    } catch {
      throw new InvalidTokenError(`the ${name} query parameter is not valid percent-encoding`);
    }
    if (/^bearer\s/i.test(v)) v = v.slice(7).trim();
    if (v === '') throw new InvalidTokenError(`the ${name} query parameter is empty`);
    return v;
  }
  return undefined;
}

/** `url` with the values of its token query parameters (authz, access_token) replaced by `REDACTED`, for logs. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  return url.slice(0, q + 1) + url.slice(q + 1).replace(/(^|&)(authz|access_token)=[^&]*/g, '$1$2=REDACTED');
}

/** `error_description` must be a quoted-string without quotes or backslashes (RFC 6750 §3). */
function challenge(err: unknown): string {
  if (isCargoError(err) && err.code === 'CARGO_ERR_INVALID_TOKEN') {
    const d = err.message.replace(/[^\x20-\x7e]|["\\]/g, "'").slice(0, 300);
    return `Bearer error="invalid_token", error_description="${d}"`;
  }
  return 'Bearer';
}

/** Adds the RFC 6750 challenge to a 401 answer; gateway/problem.ts's writer calls it for every problem it writes. */
export function addChallenge(reply: FastifyReply, err: unknown, status: number): void {
  if (status === 401 && !reply.sent) reply.header('www-authenticate', challenge(err));
}

export function buildGatewayAuth(cfg: Config): GatewayAuth {
  const audiences = defaultAudiences(cfg);
  const issuers = parseIssuerSettings(cfg.auth.issuers, audiences);
  if (devIssuerEnabled(cfg)) {
    if (issuers.some((i) => i.issuer === DEV_ISSUER)) throw new ConfigError(`auth.issuers lists ${DEV_ISSUER}, the built-in development issuer`, 'auth.issuers');
    issuers.push(devIssuerSettings(cfg.dataDir, [DEV_AUDIENCE, ...audiences]));
  }
  const shareKey = cfg.auth.shareMaxValiditySec > 0 ? shareIssuerKey(cfg.dataDir) : undefined;
  if (shareKey) issuers.push(shareIssuerSettings(shareKey, cfg.auth.shareMaxValiditySec));
  // auth.outbound is used by the workers; checked here too so that a bad entry stops `serve` at start, not its
  // worker children one after the other.
  void outboundTokensFromConfig(cfg.auth)?.close();
  let addressPolicy: AddressPolicy;
  try {
    addressPolicy = new AddressPolicy(cfg.auth.allowAddresses);
  } catch (e) {
    throw new ConfigError(`auth.allowAddresses: ${(e as Error).message}`, 'auth.allowAddresses');
  }
  let ca: string[] | undefined;
  if (cfg.auth.issuerCaFile) {
    try {
      ca = [readFileSync(cfg.auth.issuerCaFile, 'utf8')];
    } catch (e) {
      throw new ConfigError(`auth.issuerCaFile cannot be read: ${(e as Error).message}`, 'auth.issuerCaFile');
    }
  }
  const verifier = issuers.length > 0 ? new TokenVerifier(issuers, {
    clockSkewSec: cfg.auth.clockSkewSec,
    maxLifetimeSec: cfg.auth.maxTokenLifetimeSec,
    keys: { refreshMs: cfg.auth.keyRefreshSec * 1000, maxAgeMs: cfg.auth.keyMaxAgeSec * 1000, unknownKidRefetchMs: cfg.auth.unknownKidRefetchSec * 1000, ...(ca ? { ca } : {}) },
  }) : undefined;
  const open = cfg.auth.insecureOpen;
  const publicPrefixes = canonicalPrefixes(cfg.storage.publicPrefixes);
  const openPrincipal: Principal = { kind: 'open', owner: 'anonymous', admin: true };
  const certs = clientCertSettings(cfg.auth);
  const certMapper = certs ? new ClientCertMapper(certs) : undefined;
  /** Without a token: the client certificate's identity (cached per connection), else anonymous (or open). */
  const withoutToken = (request: FastifyRequest): Principal => {
    if (certMapper) {
      const raw = request.raw as unknown as { stream?: { session?: object }; socket?: TLSSocket };
      const o = certMapper.outcome(raw.stream?.session ?? raw.socket, raw.socket);
      if (o.kind === 'identified') return o.principal;
      if (o.kind === 'refused') throw new UnauthenticatedError(`client certificate refused: ${o.reason}`);
    }
    return open ? openPrincipal : ANONYMOUS;
  };
  const storagePrefix = cfg.storage.urlPrefix;
  const limiters = new WeakMap<FastifyRequest, RateLimiter>();

  const auth: GatewayAuth = {
    open,
    publicPrefixes,
    localAreas: parseLocalAreas(cfg.auth.localAreas),
    addressPolicy,
    issuers,
    ...(certs ? { clientCerts: certs } : {}),
    ...(shareKey ? { shareKey } : {}),
    downloadLimiter: (request) => limiters.get(request),
    authenticate(request) {
      const h = request.headers.authorization;
      if (h === undefined) {
        // A token in ?authz= (share links) is a token: it wins over a client certificate like the header does.
        const q = queryToken(request.raw.url ?? '', storagePrefix);
        if (q === undefined) return withoutToken(request);
        if (!verifier) throw new InvalidTokenError('no token issuer is trusted here (auth.issuers is empty)');
        return verifier.cached(q) ?? verifier.verify(q);
      }
      // No regular expression on the hot path: the token's characters are checked by decodeJws on a cache miss.
      const v = Array.isArray(h) ? h.join(',') : h;
      if (v.length < 8 || v.charCodeAt(6) !== 32 || v.slice(0, 6).toLowerCase() !== 'bearer') {
        throw new UnauthenticatedError('only "Authorization: Bearer <token>" is accepted');
      }
      const token = v.slice(7).trim();
      if (!verifier) throw new InvalidTokenError('no token issuer is trusted here (auth.issuers is empty)');
      return verifier.cached(token) ?? verifier.verify(token);
    },
    requireIdentity(request) {
      const p = request.principal;
      if (p.kind === 'anonymous') throw new UnauthenticatedError('this needs a bearer token (or a mapped client certificate)');
      if (p.kind === 'token' && p.share) throw new ForbiddenError('a share link only reads the storage it was made for');
      return p;
    },
    requireAdmin(request) {
      const p = auth.requireIdentity(request);
      if (!p.admin) throw new ForbiddenError(`${describe(p)} is not an administrator of this port`);
      return p;
    },
    storageAuthorize(request, action, path) {
      const p = request.principal ?? ANONYMOUS;
      const raw = request.raw.url ?? '';
      const q = raw.indexOf('?');
      const asDirectory = request.method === 'MKCOL' || action === 'list' || (q === -1 ? raw : raw.slice(0, q)).endsWith('/');
      if (p.kind === 'token' && p.share) return admitShare(request, p.share, p.expiresAt, action, path);
      if (mayAccess(p, action, path, publicPrefixes, asDirectory)) return true;
      if (p.kind === 'anonymous') throw new UnauthenticatedError(`${action} on ${path} needs a bearer token (or a mapped client certificate)`);
      return false;
    },
    close: () => verifier?.close() ?? Promise.resolve(),
  };

  /** A share link reads (downloads only if it allows them), stats and lists below its path; every use is checked. */
  async function admitShare(request: FastifyRequest, share: ShareGrant, expiresAt: number, action: StorageAction, path: string): Promise<boolean> {
    if (action !== 'read' && action !== 'stat' && action !== 'list') return false;
    // Outside its path a link is anonymous: public prefixes stay readable.
    if (!covers(share.path, path)) return mayAccess(ANONYMOUS, action, path, publicPrefixes);
    if (action === 'read' && !share.download) return false;
    if (!auth.shares) throw new InvalidTokenError('share links are off here');
    // A download is a GET of a file from its first byte (a client fetching ranges in parallel counts once).
    const range = request.headers.range;
    const counted = action === 'read' && request.method === 'GET' && (range === undefined || /^bytes=0-/.test(String(range)));
    const limiter = await auth.shares.admit(share, expiresAt, counted);
    if (limiter && action === 'read') limiters.set(request, limiter);
    return true;
  }
  return auth;
}

/** The hook that sets `request.principal` for every route of `app` (storage endpoint, API, events, metrics). */
export function installAuthHook(app: FastifyInstance, auth: GatewayAuth): void {
  app.decorateRequest('principal', null as never);
  const fail = (reply: FastifyReply, e: unknown, done: (err?: Error) => void) => {
    addChallenge(reply, e, isCargoError(e) ? e.httpStatus : 500);
    done(e as Error);
  };
  // Callback style with a synchronous fast path: no token, or a token verified before (the cache), costs no
  // promise per request; only a first sight of a token waits for the signature check (and maybe the JWKS).
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    let p: Principal | Promise<Principal>;
    try {
      p = auth.authenticate(request);
    } catch (e) {
      return fail(reply, e, done);
    }
    if (!(p instanceof Promise)) {
      request.principal = p;
      return done();
    }
    p.then((v) => {
      request.principal = v;
      done();
    }, (e: unknown) => fail(reply, e, done));
  });
  app.addHook('onClose', async () => auth.close());
}
