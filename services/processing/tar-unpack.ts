/**
 * Unpacking a tar stream into a target directory, safely and atomically per member.
 *
 * tar-stream parses the format (header checksums, ustar/GNU/PAX, long names — each PAX or GNU long header bounded
 * at 4 MiB by the library); around it we check every member before anything of it touches the disk
 * (archive-entry-policy.ts: relative names without `..`, no devices or FIFOs, links only inside the target, no
 * path through a link member, no duplicate names), bound its declared size (`maxMemberBytes`, the remaining
 * `quotaBytes`, and the size the sender announced for that name when `expected` is given), and require the
 * end-of-archive marker (an archive cut exactly between two members is a truncation too).
 *
 * Each file member is written to a part file (`.<name>.cargoport-part-<random>`, created O_EXCL beside its final
 * name, in a directory we created or checked is a real directory), its bytes summed with every checksum its PAX
 * records carry (tar-member-checksums.ts), its mode (permission bits only: no set-id bits) and mtime set, fsynced
 * when `durable`, and only then published by rename (overwrite) or link (refusing an existing name). A member
 * whose checksum does not match fails alone: it is reported and not published, the others go on. Anything that
 * makes the archive itself suspect (an unsafe entry, a bad header, a truncation, an I/O error) stops the unpack
 * and removes every part file; with `publish: 'end'` nothing is published unless the whole archive is good.
 *
 * Small members (≤ `inlineMaxBytes`) are read into memory and written by up to `concurrency` publishes at once
 * while the parser goes on, which is what makes many small files fast; larger ones stream straight to their
 * part file. Either way at most `concurrency` members are held, so memory is bounded and a slow disk slows the
 * sender. The readable side emits one JSON line per member (the manifest) for per-member states.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, rename, symlink, unlink, lutimes, utimes, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import tar from 'tar-stream';
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import { MultiChecksummer } from '../checksum/checksummer.js';
import { CargoError, isCargoError, type ErrorCode } from '../../errors/cargo-error.js';
import { checkSymlinkTarget, hardlinkSegments, memberKind, memberSegments, type MemberKind } from './archive-entry-policy.js';
import { checksumsFromRecords } from './tar-member-checksums.js';
import { ProcessingError, unsafeArchive } from './processing-errors.js';

export interface TarUnpackOptions {
  /** Absolute directory the members land in (created if missing). */
  readonly target: string;
  readonly maxMemberBytes: number;
  readonly maxNameBytes: number;
  readonly maxMembers: number;
  /** Total member bytes allowed (the destination's quota, or what the sender announced in all). */
  readonly quotaBytes?: number;
  /** Member name → size the sender announced: any other member, or another size, refuses the archive. */
  readonly expected?: ReadonlyMap<string, number>;
  /** Every file member must carry a checksum (archives from a cargoport packer do). */
  readonly requireChecksums?: boolean;
  /** Replace existing files (default: a member whose name exists fails alone). */
  readonly overwrite?: boolean;
  /** fsync each member and its directory before reporting it published (default true). */
  readonly durable?: boolean;
  /** `each` (default): a member is published as soon as it is complete; `end`: all at once after the archive checks out. */
  readonly publish?: 'each' | 'end';
  /** Members written at once (default 16). */
  readonly concurrency?: number;
  /** Members up to this size are read into memory and written concurrently (default 1 MiB). */
  readonly inlineMaxBytes?: number;
  /** A failed member fails the stream at its end (after the others are published); default true. */
  readonly failOnMemberError?: boolean;
  onMember?(r: MemberReport): void;
}

export interface MemberReport {
  readonly name: string;
  readonly kind: MemberKind;
  readonly size: number;
  readonly state: 'published' | 'failed';
  readonly checksums: Partial<Record<ChecksumAlg, string>>;
  readonly reason?: string;
  readonly code?: ErrorCode;
}

export interface UnpackSummary {
  members: number;
  published: number;
  failed: number;
  bytes: number;
}

interface Prepared {
  part: string;
  final: string;
  report: MemberReport;
}

const pad512 = (n: number) => Math.ceil(n / 512) * 512;
// Read once (process.umask() sets nothing without an argument); the process's umask does not change under us.
const UMASK = process.umask();

/** One member refused (its checksum); caught below, which records it on the member's report and goes on. */
class MemberFailure extends CargoError {
  constructor(message: string, code: ErrorCode) {
    super(code, message);
    this.name = 'MemberFailure';
  }
}

export class TarUnpacker extends Duplex {
  readonly summary: UnpackSummary = { members: 0, published: 0, failed: 0, bytes: 0 };
  private readonly extract = tar.extract();
  private readonly o: Required<Omit<TarUnpackOptions, 'quotaBytes' | 'expected' | 'onMember'>> & TarUnpackOptions;
  private totalIn = 0;
  private endOfLastEntry = 0;
  private declaredBytes = 0;
  private fatal: Error | null = null;
  private readonly inflight = new Set<Promise<void>>();
  /** Part files that exist and are not yet published: removed on failure. */
  private readonly parts = new Set<string>();
  private readonly pending: Prepared[] = [];
  private readonly dirs = new Map<string, Promise<string>>();
  private readonly dirAttrs = new Map<string, { mode: number; mtime: number }>();
  private readonly dirsToSync = new Set<string>();
  private readonly names = new Set<string>();
  private readonly linkMembers = new Set<string>();
  /** File members by name → the path holding their bytes once written (for hard links), or null if failed. */
  private readonly files = new Map<string, Promise<string | null>>();
  private readonly failures: string[] = [];

  constructor(opts: TarUnpackOptions) {
    super({ readableObjectMode: false, writableHighWaterMark: 256 * 1024 });
    this.o = {
      quotaBytes: undefined, expected: undefined, requireChecksums: false, overwrite: false, durable: true, publish: 'each',
      concurrency: 16, inlineMaxBytes: 1024 * 1024, failOnMemberError: true, ...opts,
    } as typeof this.o;
    this.extract.on('entry', (header, stream, next) => {
      let admitted: ReturnType<TarUnpacker['admit']>;
      try {
        admitted = this.admit(header);
      } catch (e) {
        this.fail(e);
        return;
      }
      this.onEntry(header, stream as unknown as AsyncIterable<Buffer> & { resume(): void }, admitted).then(() => next(), (e: unknown) => this.fail(e));
    });
    this.extract.on('error', (e: Error) => this.fail(e));
  }

  // --- writable side: the tar bytes --------------------------------------------------------------------------

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.fatal) return cb(this.fatal);
    this.totalIn += chunk.length;
    if (this.extract.write(chunk)) cb();
    else this.extract.once('drain', () => cb(this.fatal));
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.fatal) return cb(this.fatal);
    this.extract.once('finish', () => {
      this.finishArchive().then(() => {
        this.push(null);
        cb();
      }, (e: unknown) => {
        this.fail(e);
        cb(this.fatal);
      });
    });
    (this.extract as unknown as { end(): void }).end();
  }

  override _read(): void {
    /* the manifest is small (one line per member) and pushed as members complete */
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.fatal ??= err ?? new ProcessingError('CARGO_ERR_STAGE_FAILED', 'unpack stopped');
    if (!this.extract.destroyed) this.extract.destroy(this.fatal);
    this.cleanup().then(() => cb(err), () => cb(err));
  }

  // --- members -------------------------------------------------------------------------------------------------

  private fail(e: unknown): void {
    if (this.fatal) return;
    const err = isCargoError(e) ? e
      : /tar|header|Unexpected end|Invalid|Header exceeds/i.test((e as Error)?.message ?? '')
        ? unsafeArchive(`not a valid tar archive: ${(e as Error).message}`)
        : new ProcessingError('CARGO_ERR_STAGE_FAILED', `unpacking: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    this.fatal = err;
    this.destroy(err);
  }

  /**
   * Everything decided from the header alone, synchronously, so a refusal is the archive's first error (before the
   * parser's own complaint about the bytes that were never sent after a 10 GB header, say).
   */
  private admit(header: tar.Header): { segs: string[]; kind: MemberKind; rel: string; size: number } | null {
    if (this.fatal) throw this.fatal;
    const dataStart = (header as tar.Header & { byteOffset?: number }).byteOffset ?? 0;
    this.endOfLastEntry = dataStart + pad512(header.type === 'file' || header.type === 'contiguous-file' ? header.size : 0);
    if (++this.summary.members > this.o.maxMembers) throw unsafeArchive(`more than ${this.o.maxMembers} members`);
    const segs = memberSegments(header.name, this.o.maxNameBytes);
    const kind = memberKind(header.type, header.name);
    if (segs.length === 0) {
      if (kind !== 'directory') throw unsafeArchive('a member without a name', header.name);
      return null;
    }
    const rel = segs.join('/');
    for (let i = 1; i < segs.length; i++) {
      if (this.linkMembers.has(segs.slice(0, i).join('/'))) throw unsafeArchive(`path passes through the link member ${segs.slice(0, i).join('/')}`, header.name);
    }
    if (this.names.has(rel)) throw unsafeArchive('appears twice in the archive', header.name);
    this.names.add(rel);
    const size = kind === 'file' ? header.size : 0;
    if (kind === 'file') this.checkSize(rel, size, header.name);
    else if (this.o.expected && kind !== 'directory' && !this.o.expected.has(rel)) throw unsafeArchive('a member the sender did not announce', header.name);
    if (kind === 'symlink') {
      checkSymlinkTarget(segs, header.linkname, this.o.maxNameBytes, header.name);
      this.linkMembers.add(rel);
    }
    if (kind === 'link' && !this.files.has(hardlinkSegments(header.linkname, this.o.maxNameBytes, header.name).join('/'))) {
      throw unsafeArchive(`hard link to ${header.linkname}, which is not an earlier file of this archive`, header.name);
    }
    return { segs, kind, rel, size };
  }

  private async onEntry(header: tar.Header, stream: AsyncIterable<Buffer> & { resume(): void }, admitted: ReturnType<TarUnpacker['admit']>): Promise<void> {
    if (!admitted) {
      stream.resume();
      return;
    }
    const { segs, kind, rel, size } = admitted;
    switch (kind) {
      case 'directory':
        stream.resume();
        this.dirAttrs.set(rel, { mode: header.mode & 0o777, mtime: mtimeOf(header) });
        await this.ensureDir(segs);
        return;
      case 'symlink': {
        stream.resume();
        await this.schedule(() => this.placeSymlink(rel, segs, header.linkname, header));
        return;
      }
      case 'link': {
        const held = this.files.get(hardlinkSegments(header.linkname, this.o.maxNameBytes, header.name).join('/'))!;
        stream.resume();
        await this.schedule(() => this.placeHardlink(rel, segs, held, header));
        return;
      }
      case 'file': {
        const checksums = checksumsFromRecords(header.pax as Record<string, string> | undefined, header.name);
        let settle!: (p: string | null) => void;
        this.files.set(rel, new Promise((r) => (settle = r)));
        if (size <= this.o.inlineMaxBytes) {
          const data = await readAll(stream, size, header.name);
          await this.schedule(() => this.placeFile(rel, segs, header, checksums, data).then(settle, (e) => {
            settle(null);
            throw e;
          }));
        } else {
          await this.waitForSlot();
          await this.placeFile(rel, segs, header, checksums, stream).then(settle, (e) => {
            settle(null);
            throw e;
          });
        }
        return;
      }
    }
  }

  private checkSize(rel: string, size: number, name: string): void {
    if (!(size >= 0) || size > this.o.maxMemberBytes) throw unsafeArchive(`declares ${size} bytes, more than the ${this.o.maxMemberBytes} allowed`, name);
    this.declaredBytes += size;
    if (this.o.quotaBytes !== undefined && this.declaredBytes > this.o.quotaBytes) {
      throw unsafeArchive(`declares ${size} bytes, beyond the quota (${this.o.quotaBytes} bytes for the whole archive)`, name);
    }
    if (this.o.expected) {
      const announced = this.o.expected.get(rel);
      if (announced === undefined) throw unsafeArchive('a member the sender did not announce', name);
      if (announced !== size) throw unsafeArchive(`declares ${size} bytes, the sender announced ${announced}`, name);
    }
  }

  private async waitForSlot(): Promise<void> {
    while (this.inflight.size >= this.o.concurrency) await Promise.race(this.inflight);
    if (this.fatal) throw this.fatal;
  }

  /** Runs `work` concurrently (bounded); a member failure is reported, anything else stops the unpack. */
  private async schedule(work: () => Promise<void>): Promise<void> {
    await this.waitForSlot();
    const p: Promise<void> = work().catch((e: unknown) => this.fail(e)).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** The directory of `segs` below the target, created (mode 0755 until the archive's own is applied) or checked. */
  private ensureDir(segs: readonly string[]): Promise<string> {
    if (segs.length === 0) return this.ensureTarget();
    const rel = segs.join('/');
    let p = this.dirs.get(rel);
    if (!p) {
      p = this.ensureDir(segs.slice(0, -1)).then(async (parent) => {
        const abs = join(parent, segs[segs.length - 1]!);
        try {
          await mkdir(abs, 0o755);
          this.dirsToSync.add(parent);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          // Never follow what is already there: a symlink planted in the target must not lead us out of it.
          if (!(await lstat(abs)).isDirectory()) throw unsafeArchive(`path passes through ${rel}, which is not a directory`, rel);
        }
        return abs;
      });
      this.dirs.set(rel, p);
    }
    return p;
  }

  private ensureTarget(): Promise<string> {
    let p = this.dirs.get('');
    if (!p) {
      p = mkdir(this.o.target, { recursive: true, mode: 0o755 }).then(() => this.o.target);
      this.dirs.set('', p);
    }
    return p;
  }

  private partName(dir: string, base: string): string {
    return join(dir, `.${base.slice(0, 200)}.cargoport-part-${randomBytes(6).toString('hex')}`);
  }

  private async placeFile(rel: string, segs: string[], header: tar.Header, checksums: Partial<Record<ChecksumAlg, string>>,
    data: Buffer | AsyncIterable<Buffer>): Promise<string | null> {
    const dir = await this.ensureDir(segs.slice(0, -1));
    const final = join(dir, segs[segs.length - 1]!);
    const part = this.partName(dir, segs[segs.length - 1]!);
    const algs = Object.keys(checksums) as ChecksumAlg[];
    const sums = algs.length ? new MultiChecksummer(algs) : null;
    this.parts.add(part);
    // Created with the member's permission bits: a chmod is needed only where the umask removed some.
    const mode = header.mode & 0o777;
    const fh = await open(part, 'wx', mode);
    let written = 0;
    try {
      if (Buffer.isBuffer(data)) {
        sums?.update(data);
        while (written < data.length) written += (await fh.write(data, written, data.length - written)).bytesWritten;
      } else {
        for await (const chunk of data) {
          if (this.fatal) throw this.fatal;
          sums?.update(chunk);
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off, written + off)).bytesWritten;
          written += chunk.length;
        }
        if (written !== header.size) throw unsafeArchive(`truncated: ${written} of ${header.size} bytes`, header.name);
      }
      if ((mode & UMASK) !== 0) await fh.chmod(mode);
      const mtime = mtimeOf(header);
      await fh.utimes(mtime, mtime);
      if (this.o.durable) await fh.sync();
    } finally {
      await fh.close();
    }
    this.summary.bytes += written;
    try {
      if (this.o.requireChecksums && !sums) throw new MemberFailure('carries no checksum', 'CARGO_ERR_CHECKSUM_UNAVAILABLE');
      for (const alg of algs) {
        const got = sums!.digestHex(alg);
        if (got !== checksums[alg]) throw new MemberFailure(`${alg} ${got} does not match the archive's ${checksums[alg]}`, 'CARGO_ERR_CHECKSUM_MISMATCH');
      }
      const report: MemberReport = { name: rel, kind: 'file', size: written, state: 'published', checksums };
      return await this.commit({ part, final, report });
    } catch (e) {
      if (!(e instanceof MemberFailure)) throw e;
      await this.dropPart(part);
      this.memberFailed({ name: rel, kind: 'file', size: written, state: 'failed', checksums, reason: e.message, code: e.code });
      return null;
    }
  }

  private async placeSymlink(rel: string, segs: string[], target: string, header: tar.Header): Promise<void> {
    const dir = await this.ensureDir(segs.slice(0, -1));
    const part = this.partName(dir, segs[segs.length - 1]!);
    this.parts.add(part);
    await symlink(target, part);
    const mtime = mtimeOf(header);
    await lutimes(part, mtime, mtime).catch(() => undefined);
    await this.commit({ part, final: join(dir, segs[segs.length - 1]!), report: { name: rel, kind: 'symlink', size: 0, state: 'published', checksums: {} } });
  }

  private async placeHardlink(rel: string, segs: string[], held: Promise<string | null>, header: tar.Header): Promise<void> {
    const source = await held;
    if (source === null) {
      this.memberFailed({ name: rel, kind: 'link', size: 0, state: 'failed', checksums: {}, reason: `its target ${header.linkname} failed`, code: 'CARGO_ERR_STAGE_FAILED' });
      return;
    }
    const dir = await this.ensureDir(segs.slice(0, -1));
    const part = this.partName(dir, segs[segs.length - 1]!);
    this.parts.add(part);
    await link(source, part);
    await this.commit({ part, final: join(dir, segs[segs.length - 1]!), report: { name: rel, kind: 'link', size: 0, state: 'published', checksums: {} } });
  }

  /** Publishes now (`each`) or keeps it for the end; returns the path that holds the bytes now. */
  private async commit(p: Prepared): Promise<string | null> {
    if (this.o.publish === 'end') {
      if (this.fatal) throw this.fatal;
      this.pending.push(p);
      return p.part;
    }
    return (await this.publishOne(p)) ? p.final : null;
  }

  /**
   * With `each`, a member complete and verified before the archive failed is still published (it was checked on
   * its own; a retry need not send it again). With `end`, nothing is published once the archive has failed.
   */
  private async publishOne(p: Prepared): Promise<boolean> {
    try {
      if (this.o.overwrite) {
        await rename(p.part, p.final);
      } else {
        await link(p.part, p.final); // refuses an existing name atomically
        await unlink(p.part);
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'EISDIR' && code !== 'ENOTEMPTY') throw e;
      await this.dropPart(p.part);
      this.memberFailed({ ...p.report, state: 'failed', reason: code === 'EEXIST' ? 'exists (overwrite is off)' : 'a directory is in the way', code: 'CARGO_ERR_DEST_EXISTS' });
      return false;
    }
    this.parts.delete(p.part);
    this.dirsToSync.add(join(p.final, '..'));
    this.summary.published++;
    this.report(p.report);
    return true;
  }

  private memberFailed(r: MemberReport): void {
    this.summary.failed++;
    if (this.failures.length < 5) this.failures.push(`${r.name} (${r.reason})`);
    this.report(r);
  }

  private report(r: MemberReport): void {
    this.o.onMember?.(r);
    this.push(JSON.stringify(r) + '\n');
  }

  private async dropPart(part: string): Promise<void> {
    this.parts.delete(part);
    await unlink(part).catch(() => undefined);
  }

  private async finishArchive(): Promise<void> {
    await Promise.all(this.inflight);
    if (this.fatal) throw this.fatal;
    // tar-stream accepts an archive that stops exactly between two members; a sender always ends it with two
    // zero blocks, so their absence means the stream was cut.
    if (this.totalIn - this.endOfLastEntry < 1024) throw unsafeArchive('truncated: the archive has no end-of-archive marker');
    for (const p of this.pending.splice(0)) await this.publishOne(p);
    // Directories last, deepest first: writing members into them changed their mtimes.
    const dirs = [...this.dirAttrs.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [rel, { mode, mtime }] of dirs) {
      const abs = join(this.o.target, rel);
      await chmod(abs, mode | 0o700);
      await utimes(abs, mtime, mtime);
    }
    if (this.o.durable) {
      for (const d of this.dirsToSync) {
        const fh = await open(d, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    }
    if (this.summary.failed > 0 && this.o.failOnMemberError) {
      throw new ProcessingError('CARGO_ERR_STAGE_FAILED',
        `${this.summary.failed} of ${this.summary.members} members failed: ${this.failures.join(', ')}${this.summary.failed > this.failures.length ? ', …' : ''}`);
    }
  }

  private async cleanup(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    this.pending.length = 0;
    await Promise.all([...this.parts].map((p) => unlink(p).catch(() => undefined)));
    this.parts.clear();
  }
}

/** Seconds since the epoch, with the PAX record's fraction when there is one (utimes takes fractional seconds). */
function mtimeOf(header: tar.Header): number {
  const precise = (header.pax as Record<string, string> | null | undefined)?.['mtime'];
  const secs = precise !== undefined ? Number(precise) : NaN;
  return Number.isFinite(secs) ? secs : header.mtime.getTime() / 1000;
}

async function readAll(stream: AsyncIterable<Buffer>, size: number, name: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of stream) {
    if (at + chunk.length > size) throw unsafeArchive('member longer than its header says', name);
    chunk.copy(out, at);
    at += chunk.length;
  }
  if (at !== size) throw unsafeArchive(`truncated: ${at} of ${size} bytes`, name);
  return out;
}
