/**
 * What an archive member may be, checked before anything of it touches the disk. An archive is untrusted input:
 * - a name is relative, has no `..` segment (even one that would stay inside), no NUL, and at most `maxNameBytes`;
 * - only regular files, directories, and links that stay inside the target: a symlink's target is relative and
 *   resolves (from the link's own directory) inside the target; a hard link names an earlier file member of the
 *   same archive; character and block devices, FIFOs and anything else are refused;
 * - no member's path passes through a link member of the same archive (the "symlink, then a file through it"
 *   escape).
 */
import { posix } from 'node:path';
import { unsafeArchive } from './processing-errors.js';

/** The member's path below the target, as segments; '' (the archive's `./`) gives []. */
export function memberSegments(name: string, maxNameBytes: number): string[] {
  if (Buffer.byteLength(name) > maxNameBytes) throw unsafeArchive(`name longer than ${maxNameBytes} bytes`, name.slice(0, 200));
  if (name.includes('\0')) throw unsafeArchive('name contains NUL', name);
  if (name.startsWith('/')) throw unsafeArchive('absolute path', name);
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw unsafeArchive('path contains ".." (it could leave the target)', name);
  return segments;
}

/** A symlink's target, checked to stay inside the target directory; returns it unchanged. */
export function checkSymlinkTarget(memberPath: string[], linkname: string, maxNameBytes: number, name: string): string {
  if (!linkname) throw unsafeArchive('symlink without a target', name);
  if (Buffer.byteLength(linkname) > maxNameBytes) throw unsafeArchive(`link target longer than ${maxNameBytes} bytes`, name);
  if (linkname.includes('\0')) throw unsafeArchive('link target contains NUL', name);
  if (linkname.startsWith('/')) throw unsafeArchive(`symlink to an absolute path (${linkname})`, name);
  const resolved = posix.normalize(posix.join(memberPath.slice(0, -1).join('/'), linkname));
  if (resolved === '..' || resolved.startsWith('../')) throw unsafeArchive(`symlink pointing outside the target (${linkname})`, name);
  return linkname;
}

/** A hard link's target as a member path (segments), checked like a name. */
export function hardlinkSegments(linkname: string, maxNameBytes: number, name: string): string[] {
  if (!linkname) throw unsafeArchive('hard link without a target', name);
  try {
    const segs = memberSegments(linkname, maxNameBytes);
    if (segs.length === 0) throw unsafeArchive('hard link to the target directory itself', name);
    return segs;
  } catch (e) {
    throw unsafeArchive(`hard link pointing outside the target (${linkname})`, name);
  }
}

export type MemberKind = 'file' | 'directory' | 'symlink' | 'link';

/** The kind of a tar-stream header type, or a refusal for everything else. */
export function memberKind(type: string | null | undefined, name: string): MemberKind {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    case 'character-device':
    case 'block-device':
      return refuse('device file', name);
    case 'fifo':
      return refuse('FIFO', name);
    default:
      return refuse(`member of type ${String(type)}`, name);
  }
}

function refuse(what: string, name: string): never {
  throw unsafeArchive(`${what} refused`, name);
}
