/**
 * WLCG storage scopes (common JWT profile §2.2.1, wlcg.md §1.4): `storage.read|create|modify|stage|poll:/path`.
 *
 * - Every `storage.*` scope must carry an absolute path; one without makes the whole token invalid (the profile's
 *   MUST, dCache PR #7409). Scope paths are relative to the issuer's base path in our namespace.
 * - Paths are canonicalised: percent-decoded once per component, empty and `.` components dropped; a `..`
 *   component is refused (the token is invalid) rather than clamped, so a scope can never reach above the
 *   issuer's base path.
 * - Matching is on whole components (`/foo` covers `/foo/x`, never `/foobar`). A trailing `/` gives directory
 *   semantics: `storage.create:/a/b/` covers what is below `/a/b` and the directory `/a/b` itself, never a file
 *   named `/a/b`.
 * - What each capability allows is in `CAPABILITY_ALLOWS`: create never overwrites or deletes, modify ⊇ create,
 *   stage does not imply read (profile v1.2+, applied to every token version), read/create/modify/stage allow stat.
 */
import { InvalidTokenError } from './auth-errors.js';

export const STORAGE_CAPABILITIES = ['read', 'create', 'modify', 'stage', 'poll'] as const;
export type StorageCapability = (typeof STORAGE_CAPABILITIES)[number];

/** What a request does to a path; mirrors the storage endpoint's StorageAction. */
export type StorageAction = 'read' | 'stat' | 'list' | 'create' | 'modify' | 'delete' | 'stage' | 'poll';

/** Capabilities that allow each action. */
export const ACTION_NEEDS: Readonly<Record<StorageAction, readonly StorageCapability[]>> = {
  read: ['read'],
  list: ['read'],
  stat: ['read', 'create', 'modify', 'stage'],
  create: ['create', 'modify'],
  modify: ['modify'],
  delete: ['modify'],
  stage: ['stage'],
  poll: ['stage', 'poll'],
};

export interface PathGrant {
  capability: StorageCapability;
  /** Canonical absolute namespace path (issuer base path joined), '/' for everything. */
  path: string;
  /** The scope ended with '/': the path itself only as a directory. */
  directoryOnly: boolean;
}

/** Canonical components of an absolute path; throws `bad(message)` on `..` or a malformed escape. */
export function canonicalComponents(raw: string, bad: (msg: string) => Error): string[] {
  if (!raw.startsWith('/')) throw bad(`path ${JSON.stringify(raw.slice(0, 100))} is not absolute`);
  const out: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(part);
    } catch {
      throw bad(`path ${JSON.stringify(raw.slice(0, 100))} has a malformed percent-escape`);
    }
    // eslint-disable-next-line no-control-regex
    if (seg === '..' || seg === '.' || seg.includes('/') || /[\u0000-\u001f\u007f]/.test(seg)) {
      throw bad(`path ${JSON.stringify(raw.slice(0, 100))} has a "..", "." or control-character component`);
    }
    out.push(seg);
  }
  return out;
}

export function joinPath(base: string, rel: string[]): string {
  const b = base === '/' ? '' : base;
  return rel.length === 0 ? base : `${b}/${rel.join('/')}`;
}

/** `parent` covers `child` on whole components. */
export function covers(parent: string, child: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(parent + '/');
}

export interface ParsedScopes {
  grants: PathGrant[];
  /** The token holds at least one capability scope (storage.* or compute.*): groups are then ignored. */
  hasCapability: boolean;
  /** Every scope string, as sent (admin scopes are matched against these). */
  all: string[];
}

/**
 * Parses a token's `scope` claim. `basePath` is the canonical namespace path the issuer controls.
 * Throws InvalidTokenError for a path-less storage scope or a scope path with `..`.
 */
export function parseScopes(scope: unknown, basePath: string): ParsedScopes {
  if (scope !== undefined && typeof scope !== 'string') throw new InvalidTokenError('the scope claim is not a string');
  const all = typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
  const grants: PathGrant[] = [];
  let hasCapability = false;
  for (const s of all) {
    if (s.startsWith('compute.')) {
      hasCapability = true;
      continue;
    }
    if (!s.startsWith('storage.')) continue;
    hasCapability = true;
    const colon = s.indexOf(':');
    const name = colon === -1 ? s.slice('storage.'.length) : s.slice('storage.'.length, colon);
    if (colon === -1 || colon === s.length - 1) {
      throw new InvalidTokenError(`scope "${s.slice(0, 100)}" has no path (a storage scope without a path invalidates the token)`);
    }
    const rawPath = s.slice(colon + 1);
    const comps = canonicalComponents(rawPath, (m) => new InvalidTokenError(`scope "${s.slice(0, 100)}": ${m}`));
    // Unknown storage.* capabilities (a newer profile minor) grant nothing, but still count as capabilities.
    if (!(STORAGE_CAPABILITIES as readonly string[]).includes(name)) continue;
    grants.push({
      capability: name as StorageCapability,
      path: joinPath(basePath, comps),
      directoryOnly: rawPath.endsWith('/') && comps.length > 0,
    });
  }
  return { grants, hasCapability, all };
}

/**
 * Whether `grants` allow `action` on the canonical namespace `path`. `asDirectory`: the target is (or becomes) a
 * directory, which a directory-only grant of exactly that path covers.
 */
export function grantsAllow(grants: readonly PathGrant[], action: StorageAction, path: string, asDirectory = false): boolean {
  const needs = ACTION_NEEDS[action];
  for (const g of grants) {
    if (!needs.includes(g.capability)) continue;
    if (!covers(g.path, path)) continue;
    if (g.directoryOnly && path === g.path && !asDirectory) continue;
    return true;
  }
  // storage.create also allows making the missing parents of the path it covers (profile §2.2.1): a MKCOL of
  // `/foo` under `storage.create:/foo/bar`.
  if (action === 'create' && asDirectory) {
    for (const g of grants) {
      if ((g.capability === 'create' || g.capability === 'modify') && g.path !== path && covers(path, g.path)) return true;
    }
  }
  return false;
}
