/**
 * The contract between the worker (services/jobs + workers/) and the transfer engine. The engine owns
 * everything below this interface: protocol choice, connections × streams, ranges, resume, checksums while
 * streaming, atomic publish, stall watchdog. The worker owns job state, retries across attempts and admin
 * control, which reach the engine only through `TransferControl`.
 */
import type { Gate } from '../throttle/pause-gate.js';
import type { StreamStage } from './stream-stage.js';
import type { ChecksumAlg, ExpectedChecksum } from '../checksum/checksum-types.js';
import type { RateLimiter } from '../throttle/rate-limiter.js';
import type { FlowTag } from '../marking/flow-id.js';

export type { ChecksumAlg, ExpectedChecksum, RateLimiter };
export type VerifyMode = 'none' | 'source' | 'destination' | 'both';

/** What survives an aborted attempt, so the next attempt continues instead of restarting. */
export interface ResumeState {
  /** Temp file the previous attempt wrote into (file:// destinations / pulls to local storage). */
  tempPath?: string;
  /** Validator of the source the bytes came from; a changed ETag invalidates the partial data. */
  etag?: string;
  lastModified?: string;
  /** Total size of the source when the partial data was written. */
  size?: number;
  /** Byte ranges [start, end) already written and durable in tempPath, sorted, non-overlapping. */
  done: Array<[number, number]>;
}

export interface TransferRequest {
  /** file:///abs/path, https://host[:port]/path or http://… */
  source: string;
  destination: string;
  /** Expected size in bytes, when known (from the submission). */
  size?: number;
  checksum?: ExpectedChecksum;
  verify: VerifyMode;
  overwrite: boolean;
  /** Parallel TCP connections and HTTP/2 streams per connection for one file (engine defaults when absent). */
  connections?: number;
  streams?: number;
  /**
   * Fixed extra headers for requests to the source / destination (SciTag, TransferHeader*). Credentials that may
   * change during a transfer (a token refreshed) come from `TransferControl.credentials` instead, asked per request.
   */
  sourceHeaders?: Record<string, string>;
  destinationHeaders?: Record<string, string>;
  resume?: ResumeState;
  /**
   * The scitags flow of this transfer (services/marking): its connections are opened with the flow's IPv6
   * label and announced with fireflies. The SciTag headers are the caller's (sourceHeaders / destinationHeaders).
   */
  flow?: FlowTag;
  /**
   * Remote → remote only: let one storage copy from/to the other (HTTP third-party copy) instead of streaming the
   * bytes through the port; see third-party-copy.ts. Default `streamed`.
   */
  copyMode?: 'auto' | 'pull' | 'push' | 'streamed';
  /**
   * Local destinations: names this attempt's part file (`.<name>.cargoport-part-<partTag>`); part files of the
   * earlier attempts named by `stalePartTags` are removed first unless resumed (a worker killed before its first
   * checkpoint leaves one behind). Without a tag the name is random.
   */
  partTag?: string;
  stalePartTags?: string[];
  /**
   * A body the source sent with a Content-Encoding nobody asked for: `keep` (default) stores it as received and
   * warns, `decode` stores it decoded (content-coding.ts).
   */
  contentEncoding?: 'keep' | 'decode';
}

export interface TransferProgress {
  /** Bytes durably moved in this file so far (including resumed bytes). */
  bytes: number;
  total?: number;
}


/** One request the engine is about to send, as shown to a credential provider. */
export interface CredentialRequest {
  url: string;
  role: 'source' | 'destination';
  /** GET, HEAD, PUT, DELETE, MKCOL, COPY … */
  method: string;
}

/**
 * Headers carrying the credentials for one request (`Authorization: Bearer …`), asked before every request the
 * engine sends: each range, each retry and continuation, HEADs and TPC COPYs alike — so a token that expires during a
 * long transfer is replaced by the next request, not after the attempt.
 */
export type CredentialProvider = (req: CredentialRequest) => Promise<Record<string, string>>;

/** Who a transfer belongs to, for the connections it opens (socket events, connection reuse). */
export interface FlowContext {
  jobId?: string;
  fileId?: string;
  /** SciTag flow id (scitags.md): flows with different tags never share a connection. */
  scitag?: number;
  /**
   * Identity behind the credentials (e.g. the token's issuer + subject): flows of different identities never share a
   * connection. Not the credential itself.
   */
  credentialsId?: string;
}

export interface TransferControl {
  /** Per-request credentials (see CredentialProvider); merged over the request's fixed headers. */
  credentials?: CredentialProvider;
  /** The flow this transfer is (job, file, SciTag, credentials identity): keys connection reuse, tags socket events. */
  flow?: FlowContext;
  /** Abort = stop this attempt now; partial data is kept and reported through onCheckpoint for resume. */
  signal: AbortSignal;
  /** Closed gate = paused: hold bytes in flight, start nothing, suspend stall watchdogs. */
  gate: Gate;
  /**
   * Rate limiters every byte passes (scoped caps). A live array: the owner rewrites it in place when a cap is set
   * or lifted mid-transfer, so pass the array itself down and read it for every chunk — never copy it.
   */
  limiters?: readonly RateLimiter[];
  onProgress?(p: TransferProgress): void;
  /**
   * The remote end (address, port) of a connection that answered one of this transfer's requests: called for every
   * answer, so the same connection repeats; `localPort` tells connections apart (HTTP-TPC performance markers list
   * them as `RemoteConnections`).
   */
  onConnection?(remote: { ip: string; port?: number; localPort?: number }): void;
  onCheckpoint?(state: ResumeState): void;
  /** Transforms between source and destination (processing); see stream-stage.ts for what they imply. */
  stages?: readonly StreamStage[];
}

export interface TransferResult {
  bytes: number;
  /** Bytes that did not need to move because a previous attempt had them. */
  resumedBytes: number;
  checksum?: { alg: ChecksumAlg; value: string };
  remoteIp?: string;
  /** `tpc-pull` / `tpc-push`: the bytes went directly between the two storages (third-party copy). */
  protocol: 'h2' | 'http/1.1' | 'file' | 'tpc-pull' | 'tpc-push';
  connections: number;
  streams: number;
  durationMs: number;
  /** The content codings the source applied to the body (`gzip`), when it did. */
  contentEncoding?: string;
  /** What the user should know although the transfer succeeded (encoded bytes stored as received). */
  warnings?: string[];
}

/** The engine's entry point; implemented in services/transfer/engine.ts. */
export type TransferFn = (req: TransferRequest, ctl: TransferControl) => Promise<TransferResult>;
