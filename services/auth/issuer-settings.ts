/**
 * Trusted issuers, from the `auth.issuers` setting. Each maps one VO's token issuer to the part of our namespace it
 * controls (`basePath`: its scopes' paths are relative to it, as XRootD's `base_path` and dCache's gPlazma
 * `prefix`), the audiences its tokens must carry, the rights its groups have when a token carries no capability
 * scope, and who of it is an administrator of the port. Errors name the entry and key (`auth.issuers[1].basePath`).
 */
import { CargoError } from '../../errors/cargo-error.js';
import { canonicalComponents, joinPath, STORAGE_CAPABILITIES, type StorageCapability } from './scopes.js';
import type { VerificationKey } from './jws.js';

export interface GroupRule {
  /** A wlcg.groups entry, e.g. /wlcg/test (exact match: membership of /cms/uscms does not imply /cms). */
  group: string;
  /** Canonical namespace path (issuer base path joined). */
  path: string;
  rights: StorageCapability[];
}

export interface IssuerSettings {
  /** The exact `iss` string. */
  issuer: string;
  /** Short name; job owners of its tokens are `<name>:<sub>`. */
  name: string;
  /** Canonical namespace path the issuer controls ('/' = all). */
  basePath: string;
  /** Accepted `aud` values (exact compare); may include https://wlcg.cern.ch/jwt/v1/any. */
  audiences: string[];
  groups: GroupRule[];
  adminGroups: string[];
  adminScopes: string[];
  adminSubjects: string[];
  /** Keys known in advance (the built-in development issuer): no discovery, no JWKS fetch. */
  staticKeys?: VerificationKey[];
  /** The port's own share-link issuer (services/auth/share-issuer.ts): its tokens become share principals. */
  shares?: boolean;
  /** Longest accepted lifetime of this issuer's tokens, instead of auth.maxTokenLifetimeSec. */
  maxLifetimeSec?: number;
}

const bad = (field: string, msg: string) => new CargoError('CARGO_ERR_CONFIG', `${field}: ${msg}`, { httpStatus: 500, field });

function strings(v: unknown, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) throw bad(field, 'must be a list of non-empty strings');
  return v as string[];
}

export function canonicalNamespacePath(raw: unknown, field: string): string {
  if (typeof raw !== 'string') throw bad(field, 'must be an absolute path string');
  return joinPath('/', canonicalComponents(raw, (m) => bad(field, m)));
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** `[{group, path, rights}]` group rules; `path` is relative to `basePath` (errors name `field[j].key`). */
export function parseGroupRules(raw: unknown, basePath: string, field: string): GroupRule[] {
  const groups: GroupRule[] = [];
  const rawGroups = raw ?? [];
  if (!Array.isArray(rawGroups)) throw bad(field, 'must be a list of {group, path, rights}');
  rawGroups.forEach((g: unknown, j: number) => {
    const gf = `${field}[${j}]`;
    const r = g as Record<string, unknown>;
    if (!r || typeof r !== 'object' || typeof r['group'] !== 'string' || !/^(\/[A-Za-z0-9][A-Za-z0-9_.-]*)+$/.test(r['group'])) {
      throw bad(`${gf}.group`, 'must be a WLCG group such as /wlcg/test');
    }
    const rel = canonicalComponents(typeof r['path'] === 'string' ? r['path'] : '/', (m) => bad(`${gf}.path`, m));
    const rights = strings(r['rights'], `${gf}.rights`);
    for (const x of rights) if (!(STORAGE_CAPABILITIES as readonly string[]).includes(x)) throw bad(`${gf}.rights`, `unknown right "${x}" (${STORAGE_CAPABILITIES.join(', ')})`);
    groups.push({ group: r['group'], path: joinPath(basePath, rel), rights: rights as StorageCapability[] });
  });
  return groups;
}

/** Parses `auth.issuers`; `defaultAudiences` apply to an entry that names none. */
export function parseIssuerSettings(raw: unknown[], defaultAudiences: string[]): IssuerSettings[] {
  const out: IssuerSettings[] = [];
  const seen = new Set<string>();
  raw.forEach((entry, i) => {
    const f = `auth.issuers[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw bad(f, 'must be a mapping');
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!['issuer', 'name', 'basePath', 'audiences', 'groups', 'adminGroups', 'adminScopes', 'adminSubjects'].includes(k)) throw bad(`${f}.${k}`, 'unknown key');
    }
    const issuer = e['issuer'];
    if (typeof issuer !== 'string' || !/^https:\/\/[^/\s]+/.test(issuer)) throw bad(`${f}.issuer`, 'must be an https:// URL (the exact iss of its tokens)');
    if (seen.has(issuer)) throw bad(`${f}.issuer`, 'is listed twice');
    seen.add(issuer);
    const name = e['name'] ?? new URL(issuer).hostname;
    if (typeof name !== 'string' || !NAME.test(name)) throw bad(`${f}.name`, 'must be 1-64 letters, digits, _ . -');
    const basePath = e['basePath'] === undefined ? '/' : canonicalNamespacePath(e['basePath'], `${f}.basePath`);
    const audiences = e['audiences'] === undefined ? defaultAudiences : strings(e['audiences'], `${f}.audiences`);
    if (audiences.length === 0) throw bad(`${f}.audiences`, 'no audience accepted: set auth.audiences or gateway.publicUrl, or list audiences here');
    const groups = parseGroupRules(e['groups'], basePath, `${f}.groups`);
    out.push({
      issuer, name, basePath, audiences, groups,
      adminGroups: strings(e['adminGroups'], `${f}.adminGroups`),
      adminScopes: strings(e['adminScopes'], `${f}.adminScopes`),
      adminSubjects: strings(e['adminSubjects'], `${f}.adminSubjects`),
    });
  });
  return out;
}
