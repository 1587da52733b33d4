/**
 * A content coding nobody asked for. The port sends no Accept-Encoding, yet a source may answer with
 * `Content-Encoding: gzip` (RFC 9110 §12.5.3 lets it: no Accept-Encoding means no preference), and servers label
 * stored `.gz` files that way. What the job's `contentEncoding` says:
 *
 * - `keep` (default, what curl and wget do): the bytes are stored as received, encoded. The attempt records the
 *   coding and the file carries a warning. A checksum given with the file that does not match the stored bytes
 *   but matches their decoded form fails with CARGO_ERR_CONTENT_ENCODING saying exactly that (the usual case of
 *   a server compressing a file on the fly), instead of a bare mismatch.
 * - `decode`: the body is decoded while it streams (gzip, deflate, br through node:zlib, which works off the event
 *   loop; zstd through zstd-napi) and the decoded bytes are stored. The checksum given with the file is compared
 *   with the decoded bytes; the source's Digest describes what it sent, so it is compared with the encoded bytes.
 *   A given checksum that matches only the encoded bytes fails with CARGO_ERR_CONTENT_ENCODING too.
 *
 * An encoded representation is never split into ranges and decoded piecewise (multi-stream.ts takes it whole), and
 * a decoded body is never resumed from a byte offset (offsets count encoded bytes): it starts over.
 */
import { createReadStream } from 'node:fs';
import { Transform, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import type { Dispatcher } from 'undici';
import type { Attempt } from './attempt.js';
import type { StreamStage } from './stream-stage.js';
import { checksumMismatch, newChecksum } from './transfer-checksum.js';
import { TransferError, TransferErrorCode } from './transfer-errors.js';

export type ContentEncodingMode = 'keep' | 'decode';

/** The codings this port can decode, by their HTTP names (x-gzip is gzip, RFC 9110 §8.4.1.3). */
const DECODERS: Record<string, () => Duplex> = {
  gzip: () => createGunzip(),
  'x-gzip': () => createGunzip(),
  // RFC 9110 "deflate" is the zlib format; a server sending raw deflate fails as corrupt input.
  deflate: () => createInflate(),
  br: () => createBrotliDecompress(),
  zstd: () => new DecompressStream(),
};

/**
 * The content codings of a response in the order they were applied (`Content-Encoding: gzip, br` is gzip, then br),
 * without `identity`; empty when the body is the representation's bytes themselves.
 */
export function contentCodings(headers: Dispatcher.ResponseData['headers']): string[] {
  const v = headers['content-encoding'];
  const raw = Array.isArray(v) ? v.join(',') : v ?? '';
  return raw.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
}

/** The stages that undo `codings` (the last applied is undone first), or a clear refusal for one we cannot decode. */
export function decodingStages(codings: readonly string[]): StreamStage[] {
  return [...codings].reverse().map((coding) => {
    const create = DECODERS[coding];
    if (!create) {
      throw new TransferError(TransferErrorCode.contentEncoding,
        `source sent Content-Encoding: ${codings.join(', ')}; "${coding}" cannot be decoded (gzip, deflate, br, zstd can); ` +
        'params.contentEncoding "keep" stores the bytes as received', { httpStatus: 502, field: 'source', retryable: false });
    }
    return { name: `content decoding (${coding})`, create };
  });
}

/** What a transfer result says about a body's codings: which, and a warning when the encoded bytes were kept. */
export function codingReport(codings: readonly string[], decoded: boolean): { contentEncoding?: string; warnings?: string[] } {
  if (codings.length === 0) return {};
  const contentEncoding = codings.join(', ');
  if (decoded) return { contentEncoding };
  return {
    contentEncoding,
    warnings: [`the source sent Content-Encoding: ${contentEncoding} although none was asked for; the encoded bytes were ` +
      'stored as received (params.contentEncoding "decode" stores them decoded)'],
  };
}

/** A decoding stage's failure (corrupt gzip …) as the source's fault, naming the coding; other errors pass. */
export function explainDecodingFailure(err: unknown, codings: readonly string[]): unknown {
  if (!(err instanceof TransferError) || err.code !== TransferErrorCode.stageFailed || !/content decoding/.test(err.message)) return err;
  return new TransferError(TransferErrorCode.contentEncoding,
    `source body could not be decoded as Content-Encoding: ${codings.join(', ')} (${err.message.replace(/^stream stage "[^"]*" failed: /, '')})`,
    { httpStatus: 502, field: 'source', retryable: false, cause: err });
}

/**
 * The checksum of the decoded form of `path`'s first `size` bytes (a part file holding encoded bytes), or undefined
 * when they do not decode. Read locally, only to explain a mismatch.
 */
export async function decodedChecksumOfFile(a: Attempt, path: string, size: number, codings: readonly string[]): Promise<string | undefined> {
  if (size === 0 || codings.some((c) => !DECODERS[c])) return undefined;
  const sum = newChecksum(a.alg);
  try {
    await pipeline([
      createReadStream(path, { start: 0, end: size - 1 }),
      ...decodingStages(codings).map((s) => s.create()),
      new Transform({ transform(chunk: Buffer, _e, done) { sum.update(chunk); done(); } }),
    ]);
  } catch {
    return undefined;
  }
  return sum.digestHex();
}

/**
 * The user's checksum against the bytes stored and, when they differ, against the other form of the body
 * (`otherForm`: decoded when the encoded bytes were kept, encoded when they were decoded). A match with the other
 * form fails with CARGO_ERR_CONTENT_ENCODING naming the mode that would have stored matching bytes; no match at all
 * is a plain checksum mismatch.
 */
export async function verifyAcrossCoding(
  a: Attempt, stored: string, mode: ContentEncodingMode, codings: readonly string[], otherForm: () => Promise<string | undefined>,
): Promise<void> {
  const expected = a.req.checksum?.value?.toLowerCase();
  if (expected === undefined || a.req.checksum!.alg !== a.alg || expected === stored) return;
  const other = await otherForm();
  if (other !== expected) {
    const e = checksumMismatch(a.alg, stored, expected, 'checksum');
    const otherBytes = mode === 'keep' ? 'decoded' : 'encoded';
    throw new TransferError(e.code, `${e.message} (the source sent Content-Encoding: ${codings.join(', ')}; ` +
      (other === undefined ? `the ${otherBytes} bytes could not be checked)` : `the ${otherBytes} bytes do not match either)`),
    { httpStatus: e.httpStatus, field: 'checksum', retryable: e.retryable });
  }
  throw new TransferError(TransferErrorCode.contentEncoding, mode === 'keep'
    ? `the source sent Content-Encoding: ${codings.join(', ')}: the stored (encoded) bytes have ${a.alg} ${stored}, ` +
      `their decoded form matches the checksum ${expected}; submit with params.contentEncoding "decode" to store the decoded bytes`
    : `the source sent Content-Encoding: ${codings.join(', ')}: the decoded bytes have ${a.alg} ${stored}, the bytes as ` +
      `sent (encoded) match the checksum ${expected}; submit with params.contentEncoding "keep" to store them as sent`,
  { httpStatus: 502, field: 'checksum', retryable: false });
}

/**
 * The checks of a body that came with a content coding: the user's value against the stored bytes (and, failing
 * that, the other form: verifyAcrossCoding), the source's Digest against the bytes as it sent them.
 */
export async function verifyCodedBody(a: Attempt, o: {
  mode: ContentEncodingMode; codings: readonly string[];
  /** Checksums of the bytes stored and of the bytes as sent (the same when they were kept). */
  stored: string | undefined; sent: string | undefined;
  sourceDigest: string | undefined;
  /** The decoded form's checksum of what was kept, when it can be computed (a local part file). */
  decodeStored?: () => Promise<string | undefined>;
}): Promise<void> {
  if (o.stored !== undefined) {
    await verifyAcrossCoding(a, o.stored, o.mode, o.codings, async () => (o.mode === 'decode' ? o.sent : o.decodeStored?.()));
  }
  if ((a.req.verify === 'source' || a.req.verify === 'both') && o.sourceDigest !== undefined && o.sent !== undefined && o.sourceDigest !== o.sent) {
    throw checksumMismatch(a.alg, o.sent, o.sourceDigest, 'source');
  }
}
