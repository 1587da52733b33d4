/**
 * The single choke point between a client-supplied URL path and the file system. Every storage operation
 * goes through `parseLogicalPath` (URL → canonical logical path, or CARGO_ERR_BAD_PATH) and then
 * `confine` (logical path → absolute path under a root, refusing anything whose existing ancestors resolve,
 * through symlinks, outside that root). Nothing else in the tree may join a client string onto a root.
 *
 * Rules, and why:
 * - percent-decoding happens exactly once, per segment; a segment that still contains an encoded `.`, `/`,
 *   `\` or NUL after decoding is refused, because some other layer (a proxy, a CGI, a tool) may decode it again
 *   and turn `%252e%252e` into `..`;
 * - `.` and `..` segments are refused, not resolved: a client has no legitimate reason to send them, and
 *   clamping hides bugs and attacks alike;
 * - control characters (NUL included) and backslashes are refused outright;
 * - limits: 4096 bytes for the whole path and 255 bytes per component (Linux NAME_MAX/PATH_MAX).
 */
import { lstat, realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import { badPath, forbidden } from './storage-errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_COMPONENT_BYTES = 255;
/** Names the port uses for its own temp files; clients can neither see nor address them. */
export const RESERVED_PREFIX = '.cargoport-';

export interface LogicalPath {
  /** Canonical form: leading '/', components joined by '/', no trailing '/' ('/' for the root). */
  path: string;
  segments: string[];
  /** The client wrote a trailing slash (collection semantics for MKCOL / listings). */
  trailingSlash: boolean;
}

const ENCODED_DANGER = /%(2e|2f|5c|00)/i;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_BACKSLASH = /[\u0000-\u001f\u007f\\]/;

/** Parse a raw (still percent-encoded) URL path, without query string, into a canonical logical path. */
export function parseLogicalPath(rawPath: string): LogicalPath {
  if (rawPath.length > MAX_PATH_BYTES * 3) throw badPath('path too long');
  if (rawPath !== '' && !rawPath.startsWith('/')) throw badPath('path must be absolute');
  const parts = rawPath.split('/');
  const segments: string[] = [];
  let bytes = 0;
  for (let i = 0; i < parts.length; i++) {
    const raw = parts[i];
    if (raw === '') continue; // leading slash, duplicate slashes (collapsed, as gfal2 and the Tape spec expect)
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw badPath('malformed percent-encoding');
    }
    if (seg === '.' || seg === '..') throw badPath('dot segments are not allowed');
    if (seg.includes('/')) throw badPath('encoded slash in a path component');
    if (CONTROL_OR_BACKSLASH.test(seg)) throw badPath('control character or backslash in path');
    if (ENCODED_DANGER.test(seg)) throw badPath('double-encoded traversal characters');
    if (seg.startsWith(RESERVED_PREFIX)) throw badPath('reserved name');
    const len = Buffer.byteLength(seg);
    if (len > MAX_COMPONENT_BYTES) throw badPath('path component too long');
    bytes += len + 1;
    if (bytes > MAX_PATH_BYTES) throw badPath('path too long');
    segments.push(seg);
  }
  return {
    path: '/' + segments.join('/'),
    segments,
    trailingSlash: rawPath.length > 1 && rawPath.endsWith('/'),
  };
}

/** Canonicalise an already-decoded logical path (Tape REST bodies, MOVE Destination after URL parsing). */
export function parseDecodedPath(path: string): LogicalPath {
  if (typeof path !== 'string') throw badPath('path must be a string');
  // Re-encode '%' so the single decoding in parseLogicalPath is an identity for already-decoded input.
  return parseLogicalPath(path.replace(/%/g, '%25').replace(/\?/g, '%3F').replace(/#/g, '%23'));
}

/** Whether `child` is `parent` itself or inside it, on whole components. */
export function isWithin(parent: string, child: string): boolean {
  if (parent === '/') return child.startsWith('/');
  return child === parent || child.startsWith(parent + '/');
}

/**
 * A root directory plus the discipline to stay inside it. `realRoot` is resolved once at creation so
 * that comparisons are against the physical location.
 */
export class ConfinedRoot {
  private constructor(readonly realRoot: string) {}

  static async open(root: string): Promise<ConfinedRoot> {
    return new ConfinedRoot(await realpath(root));
  }

  /** Absolute path for a canonical logical path (no I/O). */
  join(logical: string): string {
    return logical === '/' ? this.realRoot : this.realRoot + logical;
  }

  /**
   * Absolute path for `logical`, after checking that the deepest existing ancestor (the path itself when it
   * exists) resolves inside the root. Symlinks that stay inside the root are followed; any that lead out are
   * refused with 403. A remaining race (a symlink swapped in between this check and the open) needs write
   * access inside the root, which only the port itself has.
   */
  async confine(logical: string): Promise<string> {
    const abs = this.join(logical);
    let probe = abs;
    for (;;) {
      try {
        const real = await realpath(probe);
        if (real !== this.realRoot && !real.startsWith(this.realRoot + sep)) {
          throw forbidden('path resolves outside the storage root');
        }
        return abs;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
        // A dangling symlink also reports ENOENT; following it on create could write outside the root.
        const isLink = await lstat(probe).then((st) => st.isSymbolicLink(), () => false);
        if (isLink) throw forbidden('path is a dangling symbolic link');
        if (probe === this.realRoot) return abs;
        probe = probe.slice(0, probe.lastIndexOf('/')) || '/';
        if (probe.length < this.realRoot.length) return abs;
      }
    }
  }
}
