/**
 * What the lead passes when registering the storage endpoint (`app.register(storagePlugin, {prefix, ...})`)
 * and the Tape REST API (`registerTapeRest(app, opts)`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PortStorage } from '../../services/storage/port-storage.js';
import type { TransferEngine } from '../../services/transfer/engine.js';
import type { AddressPolicy } from '../../services/auth/address-policy.js';
import type { RateLimiter } from '../../services/throttle/rate-limiter.js';

/**
 * What a request wants to do to a path. `stat` covers HEAD/PROPFIND Depth 0/checksums, `list` PROPFIND Depth 1
 * and directory listings; `create` is a new file or collection, `modify` an overwrite or rename, `delete`;
 * `stage`/`poll` are Tape REST; TPC COPY asks `read` on its local source (push) or `create`/`modify` on its
 * local destination (pull).
 */
export type StorageAction = 'read' | 'stat' | 'list' | 'create' | 'modify' | 'delete' | 'stage' | 'poll';

/**
 * The single authorisation decision point of the storage endpoint. Return true to allow, false to deny (403);
 * throw a CargoError with httpStatus 401 for a missing/invalid credential. Called after the path has been
 * validated and before anything about the path's existence is revealed, so a denied GET of a missing file is
 * 403, never 404 (the WLCG compliance suite checks this).
 */
export type AuthorizeFn = (request: FastifyRequest, action: StorageAction, path: string) => boolean | Promise<boolean>;

export interface TpcOptions {
  /**
   * The process's transfer engine (services/transfer/engine.ts): it executes the copy and HEADs a pull source over
   * its connections, with its TLS trust and endpoint settings; without it COPY answers 501.
   */
  engine?: Pick<TransferEngine, 'transfer' | 'pool'>;
  /** Seconds between performance markers (default 5; WLCG clients expect ≤ 5). */
  markerIntervalMs?: number;
  /** RequireChecksumVerification default when the header is absent (dCache/StoRM default: true). */
  requireChecksumByDefault?: boolean;
  /**
   * Outbound address policy for Source/Destination (services/auth/address-policy.ts): every address the remote
   * resolves to must pass. Default: the strict policy (no loopback, private, link-local or own addresses).
   */
  addressPolicy?: AddressPolicy;
  /** Skip the address policy entirely (tests between two local instances). */
  allowLocal?: boolean;
  /** What `Credential: gridsite` means (no delegation is implemented): treat as `none` (default) or 400. */
  gridsite?: 'as-none' | 'reject';
  /** HEAD of a pull source (status + headers); default: through the engine's pool. */
  probeSource?(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>;
  /** Told about every accepted copy (for logs / packet marking: `scitag` is the effective flow tag). */
  onTransfer?(info: { mode: 'pull' | 'push'; path: string; remote: string; scitag?: number }): void;
}

export interface StorageEndpointOptions {
  storage: PortStorage;
  /** Logical path prefixes served to anonymous clients, read-only (GET/HEAD/PROPFIND/listing). */
  publicPrefixes?: string[];
  /** Default: allow everything (the authorisation issue replaces it). */
  authorize?: AuthorizeFn;
  tpc?: TpcOptions;
  /** Idle time after which an incomplete multi-stream (ranged PUT) upload is dropped. Default 15 min. */
  rangedUploadIdleMs?: number;
  /**
   * A PUT (or one part of a multi-stream upload) whose body sends nothing for this long fails with
   * CARGO_ERR_UPLOAD_STALLED (408): its temp file and quota are given back and its stream or connection is closed.
   * Default: no limit (the gateway sets storage.uploadIdleTimeoutSec).
   */
  uploadIdleTimeoutMs?: number;
  /**
   * Share links: decides and mints the link a `POST <path>` with `Content-Type: application/macaroon-request`
   * asks for (`body`: its parsed JSON). Calls `exists` (which throws 404) once the caller is allowed. Without it,
   * such a POST is 405.
   */
  shareRequest?(request: FastifyRequest, path: string, body: unknown, exists: () => Promise<void>): Promise<{ token: string; id: string; expiresAt: string }>;
  /** Public base URL of the port (share-link answers); default https://<Host>. */
  publicUrl?: string;
  /** Byte-rate limiter a GET's body is paced by (a share link's cap), decided by the authorize hook. */
  downloadLimiter?(request: FastifyRequest): RateLimiter | undefined;
  /** Largest body a single PUT may carry when no Content-Length is given (default: unlimited, quota applies). */
  maxPutBytes?: number;
  /** Bounds of a packed upload (PUT of a tar to a collection, packed-put.ts); default processing.tar* defaults. */
  packed?: { maxMembers?: number; maxMemberBytes?: number; maxNameBytes?: number };
}

export interface TapeRestOptions {
  storage: PortStorage;
  /** `sitename` in the discovery document (key of targetedMetadata). */
  sitename: string;
  /** Absolute base URL clients should use for the API, e.g. https://host:port/tape/v1; default from Host. */
  publicBaseUrl?: string;
  /** Namespace prefix the storage endpoint is mounted under (e.g. '/data'): Tape paths are echoed in it. */
  storagePrefix?: string;
  authorize?: AuthorizeFn;
  /** Requests older than this are forgotten (default 24 h). */
  requestTtlMs?: number;
}

/** Any Fastify instance (HTTP/2 secure server included): the lead's gateway is not the default http.Server. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFastifyInstance = FastifyInstance<any, any, any, any, any>;
