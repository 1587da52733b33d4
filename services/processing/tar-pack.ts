/**
 * Packing: a directory, a glob or a list of files → one tar stream (POSIX pax format), each member carrying its
 * checksums (tar-member-checksums.ts), name, size, mode and mtime (fractional seconds too). Ownership is not
 * carried (uid/gid 0, no user names): a member belongs to whoever unpacks it.
 *
 * The tar format puts a member's header (with our checksums) before its bytes, so a member is summed before it is
 * sent: files up to `inlineMaxBytes` are read once into memory (the small-file case packing is for; up to 16 of
 * them ahead of the one being emitted, so their thread-pool round trips overlap), larger ones are read twice
 * (summed, then streamed), and a file whose size or mtime changes meanwhile fails the pack instead of sending a
 * checksum that does not describe it. Regular files and directories only; a symlink, device or FIFO in the input
 * fails the pack naming it (a device is never opened; a file is opened O_NOFOLLOW). Back-pressure: at most 16
 * members and 1 MiB of output are held ahead of the consumer.
 */
import { constants as fsConstants, createReadStream } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { minimatch } from 'minimatch';
import tar from 'tar-stream';
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import { MultiChecksummer } from '../checksum/checksummer.js';
import { ProcessingError } from './processing-errors.js';
import { checksumRecords } from './tar-member-checksums.js';

export interface PackMember {
  /** Absolute path of the local file or directory. */
  readonly source: string;
  /** Its name inside the archive (relative, `/`-separated). */
  readonly name: string;
  /** What a directory listing said it is; absent = look (lstat) before opening. */
  readonly type?: 'file' | 'directory';
  /**
   * The checksum the file must have (a job's submitted checksum): a file whose bytes have another is left out of
   * the archive and reported to `onSkipped`, so nothing unproven reaches the receiver.
   */
  readonly expected?: { readonly alg: ChecksumAlg; readonly value: string };
  /** The member's bytes, already fetched (a remote source): `source` is then only its name in errors. */
  readonly data?: Buffer;
  /** With `data`: its mtime (ms since the epoch; default now) and permission bits (default 0644). */
  readonly mtimeMs?: number;
  readonly mode?: number;
}

export interface PackedMember {
  readonly name: string;
  readonly type: 'file' | 'directory';
  readonly size: number;
  readonly checksums: Partial<Record<ChecksumAlg, string>>;
}

export interface TarPackOptions {
  /** Checksums computed for and carried with every file member. */
  readonly checksums: readonly ChecksumAlg[];
  /** Files up to this size are read once into memory (default 1 MiB). */
  readonly inlineMaxBytes?: number;
  /** Refuse more members than this. */
  readonly maxMembers?: number;
  readonly signal?: AbortSignal;
  /** Called as each member is handed to the archive (the packer's per-member record). */
  onMember?(m: PackedMember): void;
  /**
   * A member left out: its bytes do not have its `expected` checksum (`mismatch`), or, when this callback is given,
   * its file does not exist (`missing`) — without it a missing file fails the pack.
   */
  onSkipped?(name: string, reason: string, why: 'mismatch' | 'missing'): void;
}

type TarHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;

const LOOKAHEAD = 16;
const STREAM_BUFFER = 1024 * 1024;

/** The ustar size field holds 11 octal digits; larger files travel alone, not packed. */
export const MAX_PACKED_MEMBER_BYTES = 8 * 1024 ** 3 - 1;

function packError(message: string, member?: string): ProcessingError {
  return new ProcessingError('CARGO_ERR_STAGE_FAILED', member ? `packing ${member}: ${message}` : `packing: ${message}`);
}

/** A directory tree → members named below `prefix` (default: the tree's contents at the archive root), sorted. */
export async function membersOfDirectory(dir: string, prefix = ''): Promise<PackMember[]> {
  const out: PackMember[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    const entries = (await readdir(abs, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      const childAbs = join(abs, e.name);
      out.push({ source: childAbs, name: childRel, ...(e.isFile() ? { type: 'file' as const } : e.isDirectory() ? { type: 'directory' as const } : {}) });
      if (e.isDirectory()) await walk(childAbs, childRel);
    }
  };
  await walk(dir, prefix.replace(/\/+$/, ''));
  return out;
}

/** Files (and directories) below `root` whose relative path matches `pattern` (minimatch; `**` crosses directories). */
export async function membersOfGlob(root: string, pattern: string): Promise<PackMember[]> {
  const all = await membersOfDirectory(root);
  return all.filter((m) => minimatch(m.name, pattern, { dot: false }));
}

/** Relative paths below `root` (as a manifest gives them) → members; a path leaving `root` is refused. */
export function membersOfList(root: string, paths: readonly string[]): PackMember[] {
  return paths.map((p) => {
    const abs = join(root, p);
    const rel = relative(root, abs);
    if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) throw packError('path outside the packed root', p);
    return { source: abs, name: rel.split(sep).join('/') };
  });
}

function entry(pack: tar.Pack, header: TarHeader, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (body) pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
    else pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}

/** The exact mtime as a PAX record (`1796665769.290392005`), when it has a fraction the ustar field drops. */
function mtimeRecord(mtimeNs: bigint): Record<string, string> {
  const frac = mtimeNs % 1_000_000_000n;
  if (frac === 0n) return {};
  return { mtime: `${mtimeNs / 1_000_000_000n}.${frac.toString().padStart(9, '0').replace(/0+$/, '')}` };
}

const wholeSeconds = (mtimeNs: bigint) => new Date(Number(mtimeNs / 1_000_000_000n) * 1000);

type Prepared =
  | { kind: 'entry'; header: TarHeader; body?: Buffer; record: PackedMember }
  | { kind: 'skip'; name: string; reason: string; why: 'mismatch' | 'missing' }
  | { kind: 'large'; m: PackMember; fh: FileHandle; size: number; mode: number; mtimeNs: bigint };

/** Opens and reads (small files) or opens (large ones) one member, ahead of its turn. */
async function prepare(m: PackMember, opts: TarPackOptions, inlineMax: number): Promise<Prepared> {
  if (m.data) return prepareData(m, m.data, opts);
  if (m.type !== 'file') {
    // Not known to be a regular file: look first, so a device or FIFO is never opened.
    const st = await lstat(m.source, { bigint: true }).catch((e: Error) => {
      throw packError(e.message, m.name);
    });
    if (st.isDirectory()) {
      return {
        kind: 'entry', record: { name: m.name, type: 'directory', size: 0, checksums: {} },
        header: {
          name: m.name, type: 'directory', mode: Number(st.mode) & 0o7777, mtime: wholeSeconds(st.mtimeNs),
          uid: 0, gid: 0, uname: '', gname: '', pax: mtimeRecord(st.mtimeNs),
        },
      };
    }
    if (!st.isFile()) throw packError(st.isSymbolicLink() ? 'is a symbolic link (not packed)' : 'is not a regular file or directory', m.name);
  }
  // O_NOFOLLOW: a file swapped for a symlink since it was listed is refused, not followed.
  let fh: FileHandle;
  try {
    fh = await open(m.source, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && opts.onSkipped) return { kind: 'skip', name: m.name, reason: `${m.source} does not exist`, why: 'missing' };
    throw packError(code === 'ELOOP' ? 'is a symbolic link (not packed)' : (e as Error).message, m.name);
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) throw packError('is not a regular file', m.name);
    const size = Number(st.size);
    if (size > MAX_PACKED_MEMBER_BYTES) throw packError(`larger than ${MAX_PACKED_MEMBER_BYTES} bytes: send it unpacked`, m.name);
    if (size > inlineMax) return { kind: 'large', m, fh, size, mode: Number(st.mode) & 0o7777, mtimeNs: st.mtimeNs };
    const body = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(body, at, size - at, at);
      if (bytesRead === 0) throw packError(`changed while being packed (read ${at} of ${size} bytes)`, m.name);
      at += bytesRead;
    }
    await fh.close();
    const sums = new MultiChecksummer(algsFor(m, opts));
    sums.update(body);
    const checksums = sums.digests();
    const mismatch = expectedMismatch(m, checksums);
    if (mismatch) return { kind: 'skip', name: m.name, reason: mismatch, why: 'mismatch' };
    return {
      kind: 'entry', body, record: { name: m.name, type: 'file', size, checksums },
      header: {
        name: m.name, type: 'file', size, mode: Number(st.mode) & 0o7777, mtime: wholeSeconds(st.mtimeNs),
        uid: 0, gid: 0, uname: '', gname: '', pax: { ...checksumRecords(checksums), ...mtimeRecord(st.mtimeNs) },
      },
    };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** The checksums computed for a member: the archive's, plus the algorithm of its expected checksum. */
function algsFor(m: PackMember, opts: TarPackOptions): readonly ChecksumAlg[] {
  return m.expected && !opts.checksums.includes(m.expected.alg) ? [...opts.checksums, m.expected.alg] : opts.checksums;
}

/** Why a member's bytes are not what its expected checksum says, or undefined. */
function expectedMismatch(m: PackMember, checksums: Partial<Record<ChecksumAlg, string>>): string | undefined {
  if (!m.expected) return undefined;
  const actual = checksums[m.expected.alg];
  return actual === m.expected.value.toLowerCase() ? undefined : `${m.expected.alg} mismatch at the source: expected ${m.expected.value}, the file has ${actual}`;
}

/** A member whose bytes are given (fetched from a remote source). */
function prepareData(m: PackMember, body: Buffer, opts: TarPackOptions): Prepared {
  const sums = new MultiChecksummer(algsFor(m, opts));
  sums.update(body);
  const checksums = sums.digests();
  const mismatch = expectedMismatch(m, checksums);
  if (mismatch) return { kind: 'skip', name: m.name, reason: mismatch, why: 'mismatch' };
  const mtimeNs = BigInt(Math.round(m.mtimeMs ?? Date.now())) * 1_000_000n;
  return {
    kind: 'entry', body, record: { name: m.name, type: 'file', size: body.length, checksums },
    header: {
      name: m.name, type: 'file', size: body.length, mode: (m.mode ?? 0o644) & 0o7777, mtime: wholeSeconds(mtimeNs),
      uid: 0, gid: 0, uname: '', gname: '', pax: { ...checksumRecords(checksums), ...mtimeRecord(mtimeNs) },
    },
  };
}

/** A large member: summed in a first pass, then streamed; a file changed meanwhile fails the pack. */
async function packLarge(pack: tar.Pack, p: Extract<Prepared, { kind: 'large' }>, opts: TarPackOptions): Promise<PackedMember | { skip: string }> {
  const { m, fh, size } = p;
  try {
    const sums = new MultiChecksummer(algsFor(m, opts));
    for await (const chunk of createReadStream('', { fd: fh, autoClose: false, start: 0, end: size - 1, signal: opts.signal })) sums.update(chunk as Buffer);
    const checksums = sums.digests();
    const mismatch = expectedMismatch(m, checksums);
    if (mismatch) return { skip: mismatch };
    const header: TarHeader = {
      name: m.name, type: 'file', size, mode: p.mode, mtime: wholeSeconds(p.mtimeNs),
      uid: 0, gid: 0, uname: '', gname: '', pax: { ...checksumRecords(checksums), ...mtimeRecord(p.mtimeNs) },
    };
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(header, (err) => (err ? reject(packError(err.message, m.name)) : resolve()));
      const src = createReadStream('', { fd: fh, autoClose: false, start: 0, end: size - 1, signal: opts.signal });
      src.on('error', (e) => {
        sink.destroy(e);
        reject(e);
      });
      src.pipe(sink as unknown as NodeJS.WritableStream);
    });
    const after = await fh.stat({ bigint: true });
    if (after.size !== BigInt(size) || after.mtimeNs !== p.mtimeNs) throw packError('changed while being packed', m.name);
    return { name: m.name, type: 'file', size, checksums };
  } finally {
    await fh.close();
  }
}

/** The members as one tar stream. Errors (a file gone, changed or of another type) fail the stream naming it. */
export function createTarPack(members: Iterable<PackMember> | AsyncIterable<PackMember>, opts: TarPackOptions): Readable {
  const pack = tar.pack({ highWaterMark: STREAM_BUFFER });
  const inlineMax = opts.inlineMaxBytes ?? 1024 * 1024;
  // tar-stream's Pack is a streamx Readable; the engine and pipeline() get a Node Readable, paused when it is full.
  // Buffers of 1 MiB on both sides: with the 16 KiB default every 64 KiB member paused and resumed the pack, which
  // cost more than reading the member.
  const out = new Readable({ highWaterMark: STREAM_BUFFER, read: () => void pack.resume() });
  pack.on('data', (c: unknown) => {
    if (!out.push(c as Buffer)) pack.pause();
  });
  pack.on('end', () => out.push(null));
  pack.on('error', (e: Error) => out.destroy(e));
  const produce = async () => {
    // Members are opened and read up to LOOKAHEAD ahead of the one being emitted (each waits for a thread-pool
    // round trip or several; one at a time they would be most of the cost of small files), in order.
    const queue: Array<Promise<Prepared>> = [];
    const iterator = (Symbol.asyncIterator in members ? members[Symbol.asyncIterator]() : members[Symbol.iterator]()) as Iterator<PackMember> | AsyncIterator<PackMember>;
    let exhausted = false;
    let count = 0;
    const refill = async () => {
      while (!exhausted && queue.length < LOOKAHEAD) {
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          return;
        }
        if (opts.maxMembers !== undefined && ++count > opts.maxMembers) throw packError(`more than ${opts.maxMembers} members`);
        const p = prepare(next.value, opts, inlineMax);
        p.catch(() => undefined); // awaited in its turn; until then a failure must not be "unhandled"
        queue.push(p);
      }
    };
    try {
      for (;;) {
        await refill();
        const head = queue.shift();
        if (!head) break;
        if (opts.signal?.aborted || out.destroyed) return;
        const prepared = await head;
        if (prepared.kind === 'skip') {
          opts.onSkipped?.(prepared.name, prepared.reason, prepared.why);
        } else if (prepared.kind === 'large') {
          const packed = await packLarge(pack, prepared, opts); // outside onMember?.(), which would skip it
          if ('skip' in packed) opts.onSkipped?.(prepared.m.name, packed.skip, 'mismatch');
          else opts.onMember?.(packed);
        } else {
          await entry(pack, prepared.header, prepared.body);
          opts.onMember?.(prepared.record);
        }
      }
      pack.finalize();
    } finally {
      // Members opened ahead and never emitted (a failure, an abort) are closed.
      for (const p of queue) p.then((x) => (x.kind === 'large' ? x.fh.close() : undefined), () => undefined).catch(() => undefined);
    }
  };
  produce().catch((e: unknown) => {
    const err = e instanceof ProcessingError ? e : packError((e as Error).message);
    pack.destroy(err);
    out.destroy(err);
  });
  out.once('close', () => {
    if (!pack.destroyed) pack.destroy();
  });
  return out;
}
