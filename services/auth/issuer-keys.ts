/**
 * Signing keys of one trusted issuer: OIDC discovery (openid-client) for its `jwks_uri`, then the JWKS, cached.
 *
 * Following the WLCG profile's key-cache guidance (v1.3): keys are refreshed every `refreshMs` (6 h), and when a
 * refresh fails the old keys stay in use until they are `maxAgeMs` old (2 days). A token naming an unknown `kid`
 * triggers a refetch at most once per `unknownKidRefetchMs` (a flood of forged kids must not become a flood of
 * requests to the issuer); concurrent needs share one fetch. TLS to the issuer is always verified (system store
 * plus an optional extra CA); bodies are bounded.
 */
import { rootCertificates } from 'node:tls';
import * as oidc from 'openid-client';
import { Agent, fetch as undiciFetch, request } from 'undici';
import { IssuerUnavailableError, InvalidTokenError } from './auth-errors.js';
import { keysFromJwks, type VerificationKey } from './jws.js';

const MAX_JWKS_BYTES = 1024 * 1024;
const FETCH_TIMEOUT_MS = 10_000;

export interface IssuerKeyOptions {
  refreshMs: number;
  maxAgeMs: number;
  unknownKidRefetchMs: number;
  /** Extra CA certificates (PEM) trusted for issuers, on top of the system store. */
  ca?: string[];
  now?: () => number;
}

/** One HTTPS client for every issuer (verified TLS). */
export class IssuerHttp {
  readonly agent: Agent;
  constructor(ca?: string[]) {
    this.agent = new Agent({ connect: ca && ca.length ? { ca: [...rootCertificates, ...ca] } : {}, headersTimeout: FETCH_TIMEOUT_MS, bodyTimeout: FETCH_TIMEOUT_MS });
  }

  /** openid-client discovery → the issuer's jwks_uri (the metadata's `issuer` must equal `issuer` exactly). */
  async jwksUri(issuer: string): Promise<string> {
    const customFetch = ((url: string, options: Record<string, unknown>) => undiciFetch(url, { ...options, dispatcher: this.agent } as never)) as unknown as oidc.CustomFetch;
    const config = await oidc.discovery(new URL(issuer), 'cargoport', undefined, undefined, { [oidc.customFetch]: customFetch, timeout: FETCH_TIMEOUT_MS / 1000 });
    const uri = config.serverMetadata().jwks_uri;
    if (!uri || !uri.startsWith('https://')) throw new IssuerUnavailableError(`discovery of ${issuer} gave no https jwks_uri`);
    return uri;
  }

  async json(url: string): Promise<unknown> {
    const res = await request(url, { dispatcher: this.agent, headers: { accept: 'application/json, application/jwk-set+json' }, maxRedirections: 0 } as never);
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new IssuerUnavailableError(`${url} answered ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_JWKS_BYTES) {
        res.body.destroy();
        throw new IssuerUnavailableError(`${url} sent more than ${MAX_JWKS_BYTES} bytes`);
      }
      chunks.push(c as Buffer);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

export class IssuerKeys {
  private keys = new Map<string, VerificationKey>();
  private fetchedAt = -Infinity;
  private lastAttempt = -Infinity;
  private inflight: Promise<void> | undefined;
  private jwksUri: string | undefined;
  private readonly now: () => number;

  constructor(
    readonly issuer: string,
    private readonly http: IssuerHttp,
    private readonly opts: IssuerKeyOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  private refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.lastAttempt = this.now();
      try {
        this.jwksUri ??= await this.http.jwksUri(this.issuer);
        const keys = keysFromJwks(await this.http.json(this.jwksUri));
        this.keys = new Map(keys.map((k) => [k.kid, k]));
        this.fetchedAt = this.now();
      } catch (e) {
        // Discovery again next time: the issuer may have moved its JWKS.
        this.jwksUri = undefined;
        throw e;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  /** The key named `kid`; InvalidTokenError if the issuer has no such key, IssuerUnavailableError if we cannot tell. */
  async key(kid: string): Promise<VerificationKey> {
    const now = this.now();
    const age = now - this.fetchedAt;
    if (age >= this.opts.refreshMs) {
      try {
        await this.refresh();
      } catch (e) {
        if (now - this.fetchedAt >= this.opts.maxAgeMs) {
          throw new IssuerUnavailableError(`the keys of issuer ${this.issuer} cannot be fetched: ${(e as Error).message}`, e);
        }
        // Stale but within the cache expiry: keep verifying with what we have.
      }
    }
    let k = this.keys.get(kid);
    if (!k && this.now() - this.lastAttempt >= this.opts.unknownKidRefetchMs) {
      try {
        await this.refresh();
      } catch (e) {
        throw new IssuerUnavailableError(`the keys of issuer ${this.issuer} cannot be fetched: ${(e as Error).message}`, e);
      }
      k = this.keys.get(kid);
    }
    if (!k) throw new InvalidTokenError(`issuer ${this.issuer} has no key "${kid.slice(0, 100)}"`);
    return k;
  }
}
