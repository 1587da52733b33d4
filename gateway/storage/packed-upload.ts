/**
 * A packed upload to the storage endpoint (here, beside its handler packed-put.ts, because it joins two services of
 * one layer — storage's atomic publish and processing's archive checks — which may not import each other): one tar stream (members named relative to a collection) unpacked into
 * the port's namespace, each member published atomically through the same path as a PUT (buffer temp file,
 * quota, reception stages, fsync, adopt at its final name), so a packed job of many small files pays one request
 * instead of one per file.
 *
 * The archive is untrusted (services/processing/archive-entry-policy.ts): names are relative without `..`, only
 * regular files and directories are accepted (links, devices and FIFOs refuse the archive), a member's size is
 * bounded before any of its bytes are read, and the end-of-archive marker is required. A refused archive stops at
 * the refusing header: nothing of it or after it is written (members before it, which were checked and complete,
 * stay published and are reported so).
 *
 * A member fails alone, the others go on: a path the caller may not create (`authorize`, per member, the same
 * decision a PUT asks), an existing file without overwrite, a member without the checksums the receiver requires,
 * or bytes that do not match the checksums the member's PAX records carry (the packer's per-file checksums).
 * Members up to 1 MiB are read and verified by the parser, then written and published (fsync + link) up to
 * `concurrency` at once behind it, so the file-system calls of many members overlap; larger ones stream to their
 * temp file in turn and are published behind the parser the same way.
 */
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { ChecksumAlg } from '../../services/checksum/checksum-types.js';
import { MultiChecksummer } from '../../services/checksum/checksummer.js';
import { isCargoError, type ErrorCode } from '../../errors/cargo-error.js';
import { memberKind, memberSegments } from '../../services/processing/archive-entry-policy.js';
import { checksumsFromRecords } from '../../services/processing/tar-member-checksums.js';
import { unsafeArchive } from '../../services/processing/processing-errors.js';
import type { PortStorage, Upload } from '../../services/storage/port-storage.js';
import { isWithin, parseDecodedPath } from '../../services/storage/safe-path.js';
import { StorageError } from '../../services/storage/storage-errors.js';

export interface PackedUploadOptions {
  /** The collection (logical path) members are named relative to. */
  readonly dir: string;
  readonly overwrite: boolean;
  readonly maxMembers: number;
  readonly maxMemberBytes: number;
  readonly maxNameBytes: number;
  /** Every file member must carry a checksum record (default true: cargoport packers always write them). */
  readonly requireChecksums?: boolean;
  /** Publishes in flight at once (default 16). */
  readonly concurrency?: number;
  /** A body that sends nothing for this long fails the upload (CARGO_ERR_UPLOAD_STALLED); default no limit. */
  readonly idleMs?: number;
  /** May the caller do `action` on `path`? (the endpoint's access decision, without throwing). */
  authorize(action: 'create' | 'modify', path: string): Promise<boolean>;
}

export interface PackedMemberResult {
  /** The member's name in the archive. */
  readonly name: string;
  readonly path: string;
  readonly state: 'published' | 'failed';
  readonly size: number;
  readonly checksums: Partial<Record<ChecksumAlg, string>>;
  readonly code?: ErrorCode;
  readonly reason?: string;
}

export interface PackedUploadResult {
  readonly members: PackedMemberResult[];
  /** Why the archive was refused (CARGO_ERR_UNSAFE_ARCHIVE …): members not listed were not written. */
  readonly refused?: { code: ErrorCode; message: string };
}

const pad512 = (n: number) => Math.ceil(n / 512) * 512;
/** Members up to this size are read into memory and published concurrently. */
const INLINE_MAX_BYTES = 1024 * 1024;

export async function receivePackedUpload(storage: PortStorage, body: Readable, o: PackedUploadOptions): Promise<PackedUploadResult> {
  const members: PackedMemberResult[] = [];
  const requireChecksums = o.requireChecksums ?? true;
  const concurrency = o.concurrency ?? 16;
  const inflight = new Set<Promise<void>>();
  const names = new Set<string>();
  const extract = tar.extract();
  let totalIn = 0;
  let endOfLastEntry = 0;
  let count = 0;
  let refused: PackedUploadResult['refused'];
  let bodyError: Error | undefined;
  // A client that goes away (an HTTP/2 stream reset) or stops sending must end the iteration below, which would
  // otherwise wait for ever for a body that never ends.
  const gone = () => {
    if (!body.readableEnded && !body.destroyed) body.destroy(new StorageError('CARGO_ERR_SHORT_BODY', 'the client went away before the end of the archive', 400));
  };
  body.once('aborted', gone);
  body.once('close', gone);
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    if (!o.idleMs) return;
    clearTimeout(idle);
    idle = setTimeout(() => body.destroy(new StorageError('CARGO_ERR_UPLOAD_STALLED', `the archive sent nothing for ${o.idleMs} ms`, 408)), o.idleMs);
    idle.unref();
  };
  armIdle();
  const counting = (async function* () {
    for await (const chunk of body) {
      armIdle();
      totalIn += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  })();
  // Errors of the body (a client gone) reach the extractor, whose iteration then throws.
  const feeding = (async () => {
    try {
      for await (const chunk of counting) {
        if (!extract.write(chunk)) await new Promise<void>((r) => extract.once('drain', () => r()));
      }
      (extract as unknown as { end(): void }).end();
    } catch (e) {
      bodyError = e as Error;
      extract.destroy(e as Error);
    }
  })();

  const failed = (name: string, path: string, size: number, code: ErrorCode, reason: string, checksums: Partial<Record<ChecksumAlg, string>> = {}) =>
    members.push({ name, path, state: 'failed', size, checksums, code, reason });

  try {
    for await (const entry of extract) {
      const header = entry.header;
      const dataStart = (header as tar.Header & { byteOffset?: number }).byteOffset ?? 0;
      const isFile = header.type === 'file' || header.type === 'contiguous-file';
      endOfLastEntry = dataStart + pad512(isFile ? header.size ?? 0 : 0);
      // Everything decided from the header alone, before any byte of the member is read.
      if (++count > o.maxMembers) throw unsafeArchive(`more than ${o.maxMembers} members`);
      const segs = memberSegments(header.name, o.maxNameBytes);
      const kind = memberKind(header.type, header.name);
      if (kind === 'symlink' || kind === 'link') throw unsafeArchive('links are not accepted by a packed upload', header.name);
      const size = header.size ?? 0;
      if (isFile && size > o.maxMemberBytes) throw unsafeArchive(`declares ${size} bytes, more than ${o.maxMemberBytes}`, header.name);
      if (segs.length === 0) {
        entry.resume();
        continue;
      }
      let path: string;
      try {
        path = parseDecodedPath(`${o.dir}/${segs.join('/')}`).path;
      } catch (e) {
        throw unsafeArchive(`not a valid storage path: ${(e as Error).message}`, header.name);
      }
      if (!isWithin(o.dir, path) || path === o.dir) throw unsafeArchive('leaves the target collection', header.name);
      if (names.has(path)) throw unsafeArchive('duplicate member name', header.name);
      names.add(path);

      if (kind === 'directory') {
        entry.resume();
        if (!(await o.authorize('create', path))) {
          failed(header.name, path, 0, 'CARGO_ERR_FORBIDDEN', `create not allowed on ${path}`);
          continue;
        }
        try {
          await storage.mkdir(path, { parents: true });
        } catch (e) {
          if (!(isCargoError(e) && e.code === 'CARGO_ERR_EXISTS')) failed(header.name, path, 0, isCargoError(e) ? e.code : 'CARGO_ERR_INTERNAL', (e as Error).message);
        }
        continue;
      }

      const expected = checksumsFromRecords(header.pax as Record<string, string> | undefined, header.name);
      const algs = Object.keys(expected) as ChecksumAlg[];
      const refuse = async (code: ErrorCode, reason: string) => {
        await drain(entry as unknown as AsyncIterable<Buffer>);
        failed(header.name, path, size, code, reason, expected);
      };
      if (requireChecksums && algs.length === 0) {
        await refuse('CARGO_ERR_CHECKSUM_MISMATCH', 'the member carries no checksum record');
        continue;
      }
      if (size <= INLINE_MAX_BYTES) {
        // A small member: read and verified here (no file-system call), then written and published behind the
        // parser, up to `concurrency` at once, so the file-system calls of many members overlap.
        const bytes = await readMember(entry as unknown as AsyncIterable<Buffer>, size, header.name);
        const sums = new MultiChecksummer(algs);
        sums.update(bytes);
        const actual = sums.digests();
        const wrong = algs.find((a) => actual[a] !== expected[a]);
        if (wrong) {
          failed(header.name, path, size, 'CARGO_ERR_CHECKSUM_MISMATCH', `${wrong} mismatch: the archive says ${expected[wrong]}, the member's bytes have ${actual[wrong]}`, expected);
          continue;
        }
        while (inflight.size >= concurrency) await Promise.race(inflight);
        const name = header.name;
        const mode = (header.mode ?? 0o644) & 0o777;
        const mtime = paxMtime(header);
        const p: Promise<void> = (async () => {
          if (!(await o.authorize('create', path))) return void failed(name, path, size, 'CARGO_ERR_FORBIDDEN', `create not allowed on ${path}`, expected);
          if (o.overwrite && await storage.stat(path).then(() => true, () => false) && !(await o.authorize('modify', path))) {
            return void failed(name, path, size, 'CARGO_ERR_FORBIDDEN', `modify not allowed on ${path}`, expected);
          }
          const upload = await storage.beginUpload(path, { overwrite: o.overwrite, expectedSize: size });
          let committing = false;
          try {
            upload.account(size);
            if (size > 0) await upload.handle.write(bytes, 0, size, 0);
            await upload.handle.chmod(mode);
            await upload.handle.utimes(mtime, mtime);
            committing = true;
            await upload.commit();
          } finally {
            if (!committing) await upload.abort();
          }
          members.push({ name, path, state: 'published', size, checksums: expected });
        })().catch((e: unknown) => void failed(name, path, size, isCargoError(e) ? e.code : 'CARGO_ERR_INTERNAL', (e as Error).message, expected))
          .finally(() => inflight.delete(p));
        inflight.add(p);
        continue;
      }
      if (!(await o.authorize('create', path))) {
        await refuse('CARGO_ERR_FORBIDDEN', `create not allowed on ${path}`);
        continue;
      }
      let upload: Upload;
      try {
        const exists = o.overwrite && await storage.stat(path).then(() => true, () => false);
        if (exists && !(await o.authorize('modify', path))) {
          await refuse('CARGO_ERR_FORBIDDEN', `modify not allowed on ${path}`);
          continue;
        }
        upload = await storage.beginUpload(path, { overwrite: o.overwrite, expectedSize: size });
      } catch (e) {
        await refuse(isCargoError(e) ? e.code : 'CARGO_ERR_INTERNAL', (e as Error).message);
        continue;
      }
      let published = false;
      try {
        const sums = new MultiChecksummer(algs);
        let at = 0;
        for await (const chunk of entry as AsyncIterable<Buffer>) {
          await upload.handle.write(chunk, 0, chunk.length, at);
          at += chunk.length;
          upload.account(at);
          sums.update(chunk);
        }
        if (at !== size) throw unsafeArchive(`truncated: ${at} of ${size} bytes`, header.name);
        const actual = sums.digests();
        const wrong = algs.find((a) => actual[a] !== expected[a]);
        if (wrong) {
          failed(header.name, path, size, 'CARGO_ERR_CHECKSUM_MISMATCH', `${wrong} mismatch: the archive says ${expected[wrong]}, the member's bytes have ${actual[wrong]}`, expected);
          continue;
        }
        await upload.handle.chmod((header.mode ?? 0o644) & 0o777);
        const mtime = paxMtime(header);
        await upload.handle.utimes(mtime, mtime);
        // fsync + adopt behind the parser, up to `concurrency` at once.
        while (inflight.size >= concurrency) await Promise.race(inflight);
        published = true;
        const p: Promise<void> = upload.commit().then(
          () => void members.push({ name: header.name, path, state: 'published', size, checksums: expected }),
          (e: unknown) => void failed(header.name, path, size, isCargoError(e) ? e.code : 'CARGO_ERR_INTERNAL', (e as Error).message, expected),
        ).finally(() => inflight.delete(p));
        inflight.add(p);
      } finally {
        if (!published) await upload.abort();
      }
    }
    // tar-stream accepts an archive that stops exactly between two members; a sender always ends it with two zero
    // blocks, so their absence means the stream was cut.
    if (totalIn - endOfLastEntry < 1024) throw unsafeArchive('truncated: the archive has no end-of-archive marker');
  } catch (e) {
    // The body's own failure (a client gone) is a short body; anything else the parser says is the archive's fault.
    refused = isCargoError(e)
      ? { code: e.code, message: e.message }
      : bodyError
        ? { code: isCargoError(bodyError) ? bodyError.code : 'CARGO_ERR_SHORT_BODY', message: `the archive stopped: ${bodyError.message}` }
        : { code: 'CARGO_ERR_UNSAFE_ARCHIVE', message: `not a valid tar archive: ${(e as Error)?.message ?? String(e)}` };
    extract.destroy();
    body.resume();
  }
  clearTimeout(idle);
  await Promise.allSettled([...inflight]);
  await feeding;
  return { members, ...(refused ? { refused } : {}) };
}

/** The member's mtime, exact when a PAX `mtime` record gives the fraction. */
function paxMtime(header: tar.Header): Date {
  const rec = (header.pax as Record<string, string> | undefined)?.['mtime'];
  if (rec !== undefined && /^\d+(\.\d+)?$/.test(rec)) return new Date(Number(rec) * 1000);
  return header.mtime ?? new Date();
}

/** A small member's bytes; fewer than its header declared is a truncation. */
async function readMember(entry: AsyncIterable<Buffer>, size: number, name: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of entry) {
    if (at + chunk.length > size) throw unsafeArchive('more bytes than its header declares', name);
    chunk.copy(out, at);
    at += chunk.length;
  }
  if (at !== size) throw unsafeArchive(`truncated: ${at} of ${size} bytes`, name);
  return out;
}

async function drain(entry: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of entry) { /* discarded */ }
}
