/**
 * Who is asking, as the gateway's one decision point sees it, and what they may do.
 *
 * - `anonymous`: no credential. Read-only actions on the configured public prefixes, nothing else.
 * - `token`: a verified WLCG token. Capability scopes decide storage rights; when the token carries no capability
 *   scope at all, its `wlcg.groups` are mapped to rights by the issuer's group rules (profile §2.2.2: a token with
 *   any capability is authorised by its capabilities only). Public prefixes stay readable.
 * - `certificate`: a client certificate (mutual TLS) from a trusted CA whose subject DN (for an RFC 3820 proxy, the
 *   DN of the end-entity certificate it derives from) is mapped in `auth.clientCerts`; its groups have the rights of
 *   `auth.clientCertGroups`, like a token's `wlcg.groups`. A bearer token, when present, wins over the certificate.
 * - `open`: `auth.insecureOpen` (tests and labs only): every right, administrator included.
 */
import { covers, grantsAllow, type PathGrant, type StorageAction } from './scopes.js';

export interface AnonymousPrincipal {
  kind: 'anonymous';
  owner: 'anonymous';
  admin: false;
}

export interface OpenPrincipal {
  kind: 'open';
  owner: string;
  admin: true;
}

export interface TokenPrincipal {
  kind: 'token';
  issuer: string;
  subject: string;
  /** Job owner: `<issuer name>:<sub>` (unique per issuer, never reassigned; profile §2.1.1). */
  owner: string;
  /** Storage rights, from capabilities or (without any capability) from group rules. */
  grants: PathGrant[];
  groups: string[];
  admin: boolean;
  /** Seconds since the epoch after which the token is no longer accepted. */
  expiresAt: number;
  /** A share link (services/auth/share-issuer.ts): read-only, checked against the share store on every use. */
  share?: ShareGrant;
}

export interface ShareGrant {
  /** The share's id (the token's jti). */
  id: string;
  /** Canonical namespace path the link is for. */
  path: string;
  /** Files may be downloaded (activity DOWNLOAD); otherwise stat and list only. */
  download: boolean;
}

export interface CertificatePrincipal {
  kind: 'certificate';
  /** Subject DN of the end-entity certificate, OpenSSL's /K=V/K=V form in certificate order. */
  dn: string;
  /** Job owner: `x509:<name>` of the mapping rule, else `x509:<DN>`. */
  owner: string;
  grants: PathGrant[];
  groups: string[];
  admin: boolean;
}

export type Principal = AnonymousPrincipal | OpenPrincipal | TokenPrincipal | CertificatePrincipal;

export const ANONYMOUS: AnonymousPrincipal = Object.freeze({ kind: 'anonymous', owner: 'anonymous', admin: false }) as AnonymousPrincipal;

const READ_ONLY: ReadonlySet<StorageAction> = new Set(['read', 'stat', 'list', 'poll']);

/** Canonical public prefixes ('/public'); anything readable by anyone. */
export function canonicalPrefixes(prefixes: readonly string[]): string[] {
  return prefixes.map((p) => '/' + p.split('/').filter(Boolean).join('/'));
}

/**
 * Whether `p` may do `action` on the canonical namespace `path`. `asDirectory`: the target is or becomes a
 * directory (MKCOL, listings), which a directory-only scope of exactly that path covers.
 */
export function mayAccess(p: Principal, action: StorageAction, path: string, publicPrefixes: readonly string[], asDirectory = false): boolean {
  if (p.kind === 'open') return true;
  if (READ_ONLY.has(action) && publicPrefixes.some((pre) => covers(pre, path))) return true;
  if (p.kind === 'anonymous') return false;
  return grantsAllow(p.grants, action, path, asDirectory);
}

export function describe(p: Principal): string {
  return p.kind === 'token' || p.kind === 'certificate' ? `${p.owner}` : p.kind === 'open' ? 'anyone (auth.insecureOpen)' : 'anonymous';
}
