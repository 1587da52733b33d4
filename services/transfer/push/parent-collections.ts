/**
 * Missing parent collections at a WebDAV destination. Plain WebDAV servers (lighttpd mod_webdav, Apache mod_dav)
 * answer a PUT into a collection that does not exist with 409 Conflict (RFC 4918 §9.7.1); storage systems made for
 * bulk data (dCache, XRootD, StoRM, the port's own endpoint) create the parents themselves. gfal2 and FTS create
 * them with MKCOL before writing; so does the port:
 *
 * - a PUT answered 409 (CARGO_ERR_DEST_CONFLICT) makes the missing ancestors with MKCOL, top-down from the deepest
 *   one that exists (found by going up while MKCOL answers 409; 405 means it exists already), then the upload runs
 *   once more; an origin that did this once is remembered, and later uploads to it create their parents first;
 * - before an HTTP-TPC push (the source writes into the destination, so its 409 never reaches the port), the
 *   destination's parents are created as gfal2 does, best effort.
 *
 * Collections known to exist are remembered per origin (bounded), and concurrent files of one directory share one
 * MKCOL, so a job of 10,000 files into a new directory costs one short chain of MKCOLs, not one per file.
 */
import type { ClientPool } from '../connect/client-pool.js';
import { mkcolRequest, type HttpEndpoint } from '../http/http-requests.js';
import { TransferError, TransferErrorCode, errorForHttpStatus, redactUrl } from '../transfer-errors.js';

/** Collections remembered per origin before the memory starts over (a long-running port writes many trees). */
const MAX_KNOWN_COLLECTIONS = 10_000;

interface OriginState {
  /** Uploads to this origin create their parents first (it answered 409 once). */
  createsNothing: boolean;
  /** Collection paths (no trailing slash) that exist, as far as we know. */
  known: Set<string>;
  /** MKCOLs in flight, shared by concurrent files of one directory. */
  pending: Map<string, Promise<void>>;
}

/** Per engine (its pool): what was learned about each destination origin. */
const learned = new WeakMap<object, Map<string, OriginState>>();

function stateOf(pool: ClientPool, origin: string): OriginState {
  // Keyed by the pool's identity: every attempt's flow view of one engine's pool shares what was learned.
  let origins = learned.get(pool.identity);
  if (!origins) learned.set(pool.identity, (origins = new Map()));
  let s = origins.get(origin);
  if (!s) origins.set(origin, (s = { createsNothing: false, known: new Set(), pending: new Map() }));
  return s;
}

/** The ancestors of a request path's collection, deepest first: `/a/b/c.dat` → [`/a/b`, `/a`]. */
export function parentCollections(requestPath: string): string[] {
  const path = requestPath.split('?')[0]!.replace(/\/+$/, '');
  const out: string[] = [];
  for (let at = path.lastIndexOf('/'); at > 0; at = path.lastIndexOf('/', at - 1)) {
    // An empty segment (`/a//b`) names no collection of its own.
    if (path[at - 1] !== '/') out.push(path.slice(0, at));
  }
  return out;
}

/** The destination's headers for one request (`method`), credentials asked for it (TransferControl.credentials). */
export type UploadHeaders = (method: string) => Promise<Record<string, string>>;

/** Headers of an upload that make sense on a MKCOL: its credentials and markings, not its conditions or body. */
function mkcolHeaders(uploadHeaders: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(uploadHeaders)) {
    if (!/^(if-none-match|if-match|digest|content-length|content-range|content-type|cargo-upload-id)$/i.test(k)) out[k] = v;
  }
  return out;
}

/**
 * Makes sure the collection `path` exists: MKCOL it; on 409 make its parent first (recursively), then MKCOL it
 * again. 201 (and any 2xx) and 405 (something exists there already) are success.
 */
function ensureCollection(pool: ClientPool, dst: HttpEndpoint, s: OriginState, path: string, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
  if (path === '' || s.known.has(path)) return Promise.resolve();
  const inFlight = s.pending.get(path);
  if (inFlight) return inFlight;
  const made = (async () => {
    let status = await mkcolRequest(pool, dst, path, headers, signal);
    if (status === 409) {
      await ensureCollection(pool, dst, s, parentCollections(path)[0] ?? '', headers, signal);
      status = await mkcolRequest(pool, dst, path, headers, signal);
    }
    if ((status < 200 || status >= 300) && status !== 405) {
      const e = errorForHttpStatus(status, 'destination', `${dst.origin}${path}`);
      throw new TransferError(e.code, `creating the parent collection ${redactUrl(`${dst.origin}${path}`)} (MKCOL): ${e.message}`, {
        httpStatus: e.httpStatus, field: 'destination', retryable: e.retryable,
      });
    }
    if (s.known.size >= MAX_KNOWN_COLLECTIONS) s.known.clear();
    s.known.add(path);
  })();
  s.pending.set(path, made);
  void made.then(() => s.pending.delete(path), () => s.pending.delete(path));
  return made;
}

/**
 * Creates the missing parent collections of `dst` (its immediate parent first; going up only as far as needed).
 * `strict`: a refusal fails the caller; otherwise (a precaution before an upload or a TPC push) it is ignored and the
 * upload itself reports what the destination thinks.
 */
export async function createParentCollections(
  pool: ClientPool, dst: HttpEndpoint, uploadHeaders: UploadHeaders, signal: AbortSignal, strict: boolean,
): Promise<void> {
  const parent = parentCollections(dst.path)[0];
  if (parent === undefined) return;
  const s = stateOf(pool, dst.origin);
  try {
    await ensureCollection(pool, dst, s, parent, mkcolHeaders(await uploadHeaders('MKCOL')), signal);
  } catch (e) {
    if (strict || signal.aborted) throw e;
  }
}

/**
 * Runs an upload to `dst` (`upload` opens its source again each time) with WebDAV parent creation: first the parents
 * when the origin is known not to create them, then the upload; a 409 from it creates the parents and runs it once
 * more. A second 409 is the destination's final word (CARGO_ERR_DEST_CONFLICT).
 */
export async function withParentCollections<T>(
  pool: ClientPool, dst: HttpEndpoint, uploadHeaders: UploadHeaders, signal: AbortSignal, upload: () => Promise<T>,
): Promise<T> {
  const s = stateOf(pool, dst.origin);
  if (s.createsNothing) await createParentCollections(pool, dst, uploadHeaders, signal, false);
  try {
    return await upload();
  } catch (e) {
    if (!(e instanceof TransferError && e.code === TransferErrorCode.destConflict) || signal.aborted) throw e;
    s.createsNothing = true;
    // What we believed exists may have been removed meanwhile: ask the server again.
    for (const p of parentCollections(dst.path)) s.known.delete(p);
    await createParentCollections(pool, dst, uploadHeaders, signal, true);
  }
  try {
    return await upload();
  } catch (e) {
    if (!(e instanceof TransferError && e.code === TransferErrorCode.destConflict)) throw e;
    throw new TransferError(TransferErrorCode.destConflict, `${e.message}, also after its parent collections were created`, {
      httpStatus: e.httpStatus, field: 'destination', retryable: false, cause: e,
    });
  }
}
