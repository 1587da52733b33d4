/**
 * The options of the outbound connections (engine-wide, and what one endpoint may override), apart from the pool
 * that applies them so the connectors (undici pool, HTTP/1.1 uploader, bulk sessions) can share them without
 * importing each other.
 */
import type { LookupFunction, Socket } from 'node:net';
import { defaultConnectionPacing, type ConnectionPacerOptions } from '../../throttle/connection-pacer.js';

export interface TransferClientOptions {
  /** Extra trust anchors (PEM) for TLS; tests pass the self-signed test CA. */
  ca?: string | Buffer | Array<string | Buffer>;
  rejectUnauthorized?: boolean;
  /**
   * OpenSSL cipher preference (TLS 1.2 names and TLS 1.3 suites). Servers that honour the client's order
   * (nginx's default) then pick e.g. AES-128-GCM, which costs both ends less CPU per byte than AES-256-GCM.
   */
  ciphers?: string;
  /** Default TCP connections per origin and parallel ranges per connection for one file when a request names none. */
  connections: number;
  streams: number;
  /** Concurrent HTTP/2 streams one connection may carry across all transfers (the server's limit still applies). */
  maxStreamsPerConnection: number;
  /** HTTP/1.1 origins get one connection per concurrent request, up to this many. */
  maxHttp1ConnectionsPerOrigin: number;
  /** HTTP/2 per-stream and per-connection receive windows in bytes (size to the bandwidth-delay product). */
  initialWindowSize: number;
  connectionWindowSize: number;
  connectTimeoutMs: number;
  /** Time to the response headers (first byte) and max gap between body chunks. */
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Disable HTTP/2 (HTTP/1.1 over several connections), e.g. for endpoints with small h2 receive windows. */
  http1Only: boolean;
  /**
   * The endpoint assembles ranged PUTs (`Content-Range` + `Cargo-Upload-Id`: a cargoport peer), so large pushes
   * may go over several connections. Never set this for other servers: they would store each part as the file.
   */
  rangedUpload: boolean;
  /** Per-host pacing of new connections (handshakes in flight, connections started per second). */
  connectionPacing: ConnectionPacerOptions;
  /**
   * GET bodies from HTTP/2 origins on the bulk receive path (h2-bulk/bulk-session.ts: our own framing over TLS,
   * no Buffer per DATA frame) instead of undici, single-stream and multi-stream lanes alike. HEAD, PUT, COPY stay on undici.
   */
  bulkReceive: boolean;
  /** Called for each new connection (marking backends set flow labels / read TCP_INFO here). */
  onSocket?: (socket: Socket, origin: string) => void;
  /** Name resolution for every connector; absent: the system resolver (tests give a name several addresses). */
  lookup?: LookupFunction;
}

export const defaultClientOptions: TransferClientOptions = {
  connections: 1,
  streams: 4,
  maxStreamsPerConnection: 100,
  maxHttp1ConnectionsPerOrigin: 64,
  rangedUpload: false,
  // 32 MiB per stream / 128 MiB per connection ≈ 10 Gbit/s at 100 ms RTT (peers.md §3.1).
  initialWindowSize: 32 * 1024 * 1024,
  connectionWindowSize: 128 * 1024 * 1024,
  connectTimeoutMs: 15_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 120_000,
  http1Only: false,
  connectionPacing: defaultConnectionPacing,
  bulkReceive: process.env['CARGOPORT_BULK_RECEIVE'] !== '0',
};

export interface ConnectionInfo {
  remoteIp?: string;
  remotePort?: number;
  /** Our end's port: tells connections to the same remote apart. */
  localPort?: number;
  protocol?: 'h2' | 'http/1.1';
}

/** Settings one endpoint may override (e.g. HTTP/1.1 only for a server with small h2 windows, more connections). */
export type OriginOptions = Partial<Pick<TransferClientOptions,
  'connections' | 'streams' | 'maxStreamsPerConnection' | 'maxHttp1ConnectionsPerOrigin' | 'initialWindowSize' |
  'connectionWindowSize' | 'connectTimeoutMs' | 'headersTimeoutMs' | 'bodyTimeoutMs' | 'http1Only' | 'ciphers' |
  'rangedUpload' | 'bulkReceive'>>;
