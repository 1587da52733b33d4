/**
 * The catalogue of every stable error code the port can answer or record: HTTP status, whether trying again may
 * succeed, and one line of meaning. `CargoError` takes its defaults from here, the problem+json writer and the
 * README's error section are checked against it, so a code cannot exist in one place only.
 *
 * An instance may still override status or retryability where the same code covers cases that differ (an HTTP
 * 429 from a remote endpoint is retryable, a 403 is not, both are CARGO_ERR_HTTP_4XX).
 */
export interface ErrorSpec {
  /** HTTP status the gateway answers with (or, for transfer failures, the status recorded on the attempt). */
  readonly status: number;
  /** Whether retrying the same operation may succeed. */
  readonly retryable: boolean;
  /** One line, for the README and `cargoport` users. */
  readonly meaning: string;
}

/**
 * Codes are added here first, then thrown. Keep the entries sorted by code. Declared `as const` so that
 * `ErrorCode` below is the union of these keys: a code missing here does not compile where a `CargoError` is made.
 */
export const errorCatalogue = {
  CARGO_ERR_ABORTED: { status: 499, retryable: true, meaning: 'The attempt was stopped by a cancel, an admin stop or a shutdown; a stopped file is requeued with its resume offsets.' },
  CARGO_ERR_ADDRESS_REFUSED: { status: 403, retryable: false, meaning: 'An outbound URL (job source or destination, HTTP-TPC remote) resolves to a loopback, private, link-local or own address that auth.allowAddresses does not allow.' },
  CARGO_ERR_API: { status: 502, retryable: false, meaning: 'The CLI received an error answer from the gateway that carried no code of its own.' },
  CARGO_ERR_AUTH: { status: 502, retryable: false, meaning: 'A remote endpoint refused access (HTTP 401/403) to the source or destination.' },
  CARGO_ERR_BAD_ADMIN_REQUEST: { status: 400, retryable: false, meaning: 'An admin operation names an unknown scope or an invalid target.' },
  CARGO_ERR_BAD_CHECKSUM: { status: 400, retryable: false, meaning: 'A checksum is not of the form ALG:VALUE with a known algorithm and a valid value.' },
  CARGO_ERR_BAD_CONTENT_LENGTH: { status: 400, retryable: false, meaning: 'The request\'s Content-Length is invalid or does not match its body.' },
  CARGO_ERR_BAD_HEADER: { status: 400, retryable: false, meaning: 'A request header has an invalid value (the field names it).' },
  CARGO_ERR_BAD_JSON: { status: 400, retryable: false, meaning: 'The request body is not valid JSON (or is empty where JSON is required).' },
  CARGO_ERR_BAD_LIMIT: { status: 400, retryable: false, meaning: 'A live byte-rate limit is not a positive integer or null.' },
  CARGO_ERR_BAD_PATH: { status: 400, retryable: false, meaning: 'A storage path is malformed (NUL byte, bad percent-encoding, `..` escaping the namespace).' },
  CARGO_ERR_BAD_PROCESSING: { status: 400, retryable: false, meaning: 'A job\'s params.processing (or the operator\'s processing config) is invalid; the field is named.' },
  CARGO_ERR_BAD_RANGE: { status: 416, retryable: false, meaning: 'A Range or Content-Range header cannot be satisfied or parsed.' },
  CARGO_ERR_BAD_REQUEST: { status: 400, retryable: false, meaning: 'The request could not be parsed as HTTP, or the HTTP server refused it before any route ran (malformed URL, header or framing) for a reason no more specific code covers; the detail says what.' },
  CARGO_ERR_BAD_SCITAG: { status: 400, retryable: false, meaning: 'A job names a scitags experiment or activity that is not in the registry (the field names it); flow ids outside 65-65535 are refused by the schema.' },
  CARGO_ERR_BAD_SCOPE: { status: 400, retryable: false, meaning: 'An admin or limit scope is unknown, or its target is missing or malformed.' },
  CARGO_ERR_BAD_SHARE_REQUEST: { status: 400, retryable: false, meaning: 'A share-link request (POST with Content-Type application/macaroon-request) is malformed or asks for more than a link may give: an activity other than DOWNLOAD, LIST or READ_METADATA, a caveat not understood, or a validity over auth.shareMaxValiditySec.' },
  CARGO_ERR_BAD_URL: { status: 400, retryable: false, meaning: 'A source or destination is not a valid absolute URL of a supported form.' },
  CARGO_ERR_BODY_TOO_LARGE: { status: 413, retryable: false, meaning: 'The request body is larger than gateway.bodyLimitBytes (the problem names the limit and its value).' },
  CARGO_ERR_BODY_TOO_LONG: { status: 400, retryable: false, meaning: 'An upload sent more bytes than its Content-Length announced.' },
  CARGO_ERR_CHECKSUM_MISMATCH: { status: 502, retryable: true, meaning: 'The bytes that arrived do not have the expected checksum; nothing was published.' },
  CARGO_ERR_CHECKSUM_STATE: { status: 500, retryable: false, meaning: 'A checksum was used in a state that does not allow it (a fault of the port).' },
  CARGO_ERR_CHECKSUM_UNAVAILABLE: { status: 502, retryable: false, meaning: 'Checksum verification was required but the endpoint reported no checksum.' },
  CARGO_ERR_CHECKSUM_WORKER: { status: 500, retryable: true, meaning: 'A checksum worker thread failed.' },
  CARGO_ERR_CLIENT_BUSY: { status: 429, retryable: true, meaning: 'The client address already has gateway.maxRequestsPerClient requests in flight; retry after one finishes (Retry-After).' },
  CARGO_ERR_CONFIG: { status: 500, retryable: false, meaning: 'A configuration file or setting is invalid (the field names the key).' },
  CARGO_ERR_CONFLICT: { status: 409, retryable: false, meaning: 'The storage operation conflicts with the resource\'s current state.' },
  CARGO_ERR_CONNECT: { status: 502, retryable: true, meaning: 'The CLI could not connect to the gateway.' },
  CARGO_ERR_CONTENT_ENCODING: { status: 502, retryable: false, meaning: 'The source sent a content coding (Content-Encoding) that cannot be decoded, or the checksum matches the other form of the bytes (encoded vs decoded) than the one params.contentEncoding stores.' },
  CARGO_ERR_CROSS_SERVER: { status: 502, retryable: false, meaning: 'A WebDAV MOVE names a destination on another server.' },
  CARGO_ERR_DATADIR_IN_USE: { status: 500, retryable: false, meaning: 'Another cargoport process already uses this data directory.' },
  CARGO_ERR_DEPTH: { status: 400, retryable: false, meaning: 'A PROPFIND Depth header is not 0 or 1.' },
  CARGO_ERR_DEST_CONFLICT: { status: 502, retryable: false, meaning: 'The destination answered 409 Conflict to an upload, also after the port created its missing parent collections (MKCOL).' },
  CARGO_ERR_DEST_EXISTS: { status: 409, retryable: false, meaning: 'The destination exists and the job\'s `existing` policy keeps it: fail, or skip-identical with other content or none to compare (the message says which).' },
  CARGO_ERR_DUPLICATE_DESTINATION: { status: 400, retryable: false, meaning: 'Two files of one submission have the same destination.' },
  CARGO_ERR_EXISTS: { status: 412, retryable: false, meaning: 'The storage path already exists and the request does not allow replacing it.' },
  CARGO_ERR_EXPORT_EXISTS: { status: 409, retryable: false, meaning: 'An export with this name exists already (replace it with PUT /api/v1/exports/NAME).' },
  CARGO_ERR_EXPORT_NOT_FOUND: { status: 404, retryable: false, meaning: 'No export definition has this name, or the export has no run with this id.' },
  CARGO_ERR_EXPORT_RUN_FAILED: { status: 500, retryable: true, meaning: 'An export run could not select or submit its files (the manifest or directory could not be read); its files are left to the next run.' },
  CARGO_ERR_FILE_NOT_FOUND: { status: 404, retryable: false, meaning: 'The job has no file with this id.' },
  CARGO_ERR_FORBIDDEN: { status: 403, retryable: false, meaning: 'The request is not allowed on this path or target.' },
  CARGO_ERR_HEADERS_TOO_LARGE: { status: 431, retryable: false, meaning: 'The request header section (HTTP/1.1) or header list (HTTP/2, RFC 9113 §6.5.2) is larger than gateway.maxHeaderBytes.' },
  CARGO_ERR_HOOK_FAILED: { status: 422, retryable: false, meaning: 'A site hook exited non-zero or overran its time limit; the message ends with the tail of its stderr.' },
  CARGO_ERR_HTTP_4XX: { status: 502, retryable: false, meaning: 'A remote endpoint answered with a client error (4xx) other than 401/403/404.' },
  CARGO_ERR_HTTP_5XX: { status: 502, retryable: true, meaning: 'A remote endpoint answered with a server error (5xx).' },
  CARGO_ERR_INTERNAL: { status: 500, retryable: true, meaning: 'A fault of the port itself (logged on the server); never the client\'s input.' },
  CARGO_ERR_INVALID_EXPORT: { status: 400, retryable: false, meaning: 'An export definition is invalid: bad schedule, time zone, selection, destination template or parameter (the field names it).' },
  CARGO_ERR_INVALID_TOKEN: { status: 401, retryable: false, meaning: 'The bearer token is not accepted: bad signature or algorithm, unknown issuer or key, expired, wrong audience, a required WLCG claim missing, or a malformed storage scope (answered with WWW-Authenticate: Bearer error="invalid_token").' },
  CARGO_ERR_ISSUER_UNAVAILABLE: { status: 503, retryable: true, meaning: 'The keys of the token\'s (trusted) issuer could not be fetched, so the token cannot be checked yet.' },
  CARGO_ERR_IS_A_COLLECTION: { status: 409, retryable: false, meaning: 'The storage path is a collection where a file is required.' },
  CARGO_ERR_JOB_NOT_FOUND: { status: 404, retryable: false, meaning: 'No job has this id (or it expired after jobs.retentionSec).' },
  CARGO_ERR_LOCAL_IO: { status: 500, retryable: true, meaning: 'Local file I/O failed (ENOSPC, EIO, EACCES …; the message names the cause).' },
  CARGO_ERR_METHOD_NOT_ALLOWED: { status: 405, retryable: false, meaning: 'The storage endpoint does not support this method on this path.' },
  CARGO_ERR_NEARLINE: { status: 409, retryable: false, meaning: 'The file is on tape only; stage it (Tape REST) before reading it.' },
  CARGO_ERR_NETWORK: { status: 502, retryable: true, meaning: 'The connection to a remote endpoint failed or was reset.' },
  CARGO_ERR_NOT_A_COLLECTION: { status: 409, retryable: false, meaning: 'A parent of the storage path is not a collection.' },
  CARGO_ERR_NOT_A_FILE: { status: 400, retryable: false, meaning: 'The storage path is not a regular file.' },
  CARGO_ERR_NOT_EMPTY: { status: 409, retryable: false, meaning: 'The collection is not empty.' },
  CARGO_ERR_NOT_FOUND: { status: 404, retryable: false, meaning: 'No such file or collection in the storage namespace.' },
  CARGO_ERR_NO_ROUTE: { status: 404, retryable: false, meaning: 'No route answers this method and path.' },
  CARGO_ERR_NO_SPACE: { status: 507, retryable: true, meaning: 'The buffer (or storage) has no room for this upload now.' },
  CARGO_ERR_OUTBOUND_TOKEN: { status: 502, retryable: true, meaning: 'The token for a remote endpoint (auth.outbound: token file, client-credentials grant) could not be obtained; the message names the source, never a token.' },
  CARGO_ERR_OWNER_QUEUE_FULL: { status: 429, retryable: true, meaning: 'The owner already has jobs.maxQueuedFilesPerOwner files not yet finished; this submission would exceed it (limit and counts in the problem).' },
  CARGO_ERR_PEER_PROTOCOL: { status: 502, retryable: true, meaning: 'A remote server broke its protocol or flooded the connection (HTTP/2 frames, HTTP-TPC performance markers; the message names how); its stream or connection was closed and nothing it sent was published.' },
  CARGO_ERR_PRECONDITION: { status: 412, retryable: false, meaning: 'A conditional request header (If-Match, If-None-Match …) does not hold.' },
  CARGO_ERR_PROBE_FAILED: { status: 502, retryable: true, meaning: '`cargoport probe` could not measure the link: the peer answered a probe request wrongly (not a cargoport /probe endpoint, short body, unexpected status) or refused the connection (the message names which measurement and why).' },
  CARGO_ERR_PROBE_TOO_LARGE: { status: 413, retryable: false, meaning: 'A /probe request asked for or sent more bytes than probe.maxBytes (the problem names the limit and its value).' },
  CARGO_ERR_QUEUE_TIMEOUT: { status: 408, retryable: false, meaning: 'The file waited in the queue longer than the job\'s maxTimeInQueueSec.' },
  CARGO_ERR_RECALL_FAILED: { status: 502, retryable: true, meaning: 'A tape recall of the nearline backend failed.' },
  CARGO_ERR_RECEPTION_REFUSED: { status: 422, retryable: false, meaning: 'A reception stage of the storage endpoint refused the uploaded file.' },
  CARGO_ERR_REDIS_BINARY_MISSING: { status: 500, retryable: false, meaning: 'The embedded Redis needs redis-server, which was not found.' },
  CARGO_ERR_REDIS_CRASHING: { status: 500, retryable: false, meaning: 'The embedded redis-server died repeatedly; the port gave up restarting it.' },
  CARGO_ERR_REDIS_PATH: { status: 500, retryable: false, meaning: 'The data directory cannot host the embedded Redis (not absolute, or the socket path is too long).' },
  CARGO_ERR_REDIS_START: { status: 500, retryable: false, meaning: 'The embedded redis-server did not start (its log is named).' },
  CARGO_ERR_REDIS_UNAVAILABLE: { status: 503, retryable: true, meaning: 'Redis is not reachable.' },
  CARGO_ERR_REQUEST_TIMEOUT: { status: 408, retryable: true, meaning: 'The request headers did not arrive within the gateway\'s time limit.' },
  CARGO_ERR_SAME_ENDPOINTS: { status: 400, retryable: false, meaning: 'A file\'s source and destination are the same URL.' },
  CARGO_ERR_SCITAGS_REGISTRY: { status: 502, retryable: true, meaning: 'The scitags registry could not be fetched from marking.registryUrl or is not a version-1 registry; the bundled copy stays in use.' },
  CARGO_ERR_SHARE_EXHAUSTED: { status: 403, retryable: false, meaning: 'The share link\'s download count is used up.' },
  CARGO_ERR_SHARE_NOT_FOUND: { status: 404, retryable: false, meaning: 'No share link has this id (or it expired), or it is not the caller\'s.' },
  CARGO_ERR_SHORT_BODY: { status: 400, retryable: false, meaning: 'An upload ended before the announced number of bytes arrived.' },
  CARGO_ERR_SIZE_MISMATCH: { status: 502, retryable: true, meaning: 'The number of bytes moved differs from the size announced or expected.' },
  CARGO_ERR_SOURCE_CHANGED: { status: 502, retryable: true, meaning: 'The source changed during the transfer (its validators differ); the partial data was dropped.' },
  CARGO_ERR_SOURCE_FRAMING: { status: 502, retryable: false, meaning: 'The source sent bytes where its answer should have ended (a Content-Length shorter than the body, garbage after it): the body cannot be trusted.' },
  CARGO_ERR_SOURCE_NOT_FOUND: { status: 404, retryable: false, meaning: 'The source does not exist.' },
  CARGO_ERR_STAGE_FAILED: { status: 422, retryable: false, meaning: 'A processing stage failed on these bytes; nothing was published.' },
  CARGO_ERR_STAGE_REQUEST_NOT_FOUND: { status: 404, retryable: false, meaning: 'No Tape REST stage request has this id (it was deleted, or the gateway restarted).' },
  CARGO_ERR_STALLED: { status: 504, retryable: true, meaning: 'The transfer made no progress for transfer.stallTimeoutSec (or went below the low-speed limit).' },
  CARGO_ERR_TIMEOUT: { status: 504, retryable: true, meaning: 'A remote endpoint did not answer in time (connect, headers or body timeout).' },
  CARGO_ERR_TLS: { status: 502, retryable: false, meaning: 'The TLS handshake with a remote endpoint failed (certificate not trusted, expired, wrong name …).' },
  CARGO_ERR_TLS_SETUP: { status: 500, retryable: false, meaning: 'The gateway\'s TLS certificate or key cannot be read or generated.' },
  CARGO_ERR_TOO_MANY_FILES: { status: 413, retryable: false, meaning: 'A submission has more files than jobs.maxFilesPerJob (or a Tape REST request more than it takes).' },
  CARGO_ERR_TPC_DISABLED: { status: 501, retryable: false, meaning: 'HTTP third-party copy is not enabled on this storage endpoint.' },
  CARGO_ERR_TPC_FAILED: { status: 502, retryable: true, meaning: 'The remote storage reported a failed third-party copy.' },
  CARGO_ERR_TPC_SOURCE: { status: 502, retryable: false, meaning: 'The third-party copy\'s source could not be read.' },
  CARGO_ERR_TPC_UNSUPPORTED: { status: 502, retryable: false, meaning: 'The remote storage refuses HTTP third-party copy in this mode.' },
  CARGO_ERR_UNAUTHENTICATED: { status: 401, retryable: false, meaning: 'The request needs a bearer token (anonymous callers may only read public prefixes).' },
  CARGO_ERR_UNKNOWN: { status: 500, retryable: true, meaning: 'An attempt ended failed without a recorded error code (a fault of the port).' },
  CARGO_ERR_UNKNOWN_STAGE: { status: 400, retryable: false, meaning: 'A processing stage or site hook name that nothing is registered under.' },
  CARGO_ERR_UNSAFE_ARCHIVE: { status: 422, retryable: false, meaning: 'A tar archive refused while unpacking: an entry escaping the target, a link outside it, a device or FIFO, an oversized header or member, a bad header, a truncation.' },
  CARGO_ERR_UNSUPPORTED_MEDIA: { status: 415, retryable: false, meaning: 'The request has a body or media type this operation does not accept.' },
  CARGO_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, meaning: 'The request\'s Content-Type is not accepted by this route.' },
  CARGO_ERR_UNSUPPORTED_PROCESSING: { status: 400, retryable: false, meaning: 'The job asks for processing stages the port does not provide.' },
  CARGO_ERR_UNSUPPORTED_SCHEME: { status: 400, retryable: false, meaning: 'A URL scheme other than https, http or file.' },
  CARGO_ERR_UPLOAD_STALLED: { status: 408, retryable: true, meaning: 'An upload sent no byte for storage.uploadIdleTimeoutSec; its temp file and buffer quota were given back and its stream or connection closed.' },
  CARGO_ERR_USAGE: { status: 400, retryable: false, meaning: 'The CLI was called with invalid arguments.' },
  CARGO_ERR_VALIDATION: { status: 400, retryable: false, meaning: 'The request does not match the route\'s schema (the field names what is wrong).' },
  CARGO_ERR_WORKER_CRASHED: { status: 500, retryable: true, meaning: 'The worker process running this attempt crashed (serve saw it exit unasked); the file was requeued from its last checkpoint at once, and is failed with this code once it has been running in workers.crashLimit crashes.' },
  CARGO_ERR_WORKER_LOST: { status: 500, retryable: true, meaning: 'The worker running this attempt died; the file was claimed again within workers.lockDurationMs, from its last checkpoint.' },
  CARGO_ERR_WORKER_START: { status: 500, retryable: false, meaning: 'A worker child process of serve could not start (its configuration or Redis was refused); the message carries its own error.' },
} as const satisfies Readonly<Record<`CARGO_ERR_${string}`, ErrorSpec>>;

/** Every stable code of the port. `CargoError` accepts nothing else. */
export type ErrorCode = keyof typeof errorCatalogue;

/** Whether `code` (read from Redis, a remote answer, a CLI argument …) is one of the catalogue's codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCatalogue, code);
}

/** The catalogue entry of `code`, if it has one. */
export function errorSpec(code: string): ErrorSpec | undefined {
  return isErrorCode(code) ? errorCatalogue[code] : undefined;
}
