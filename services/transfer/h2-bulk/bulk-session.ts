/**
 * The bulk receive path: one HTTP/2 connection per origin that carries GETs and nothing else, framed here over
 * `tls.connect({ onread })` instead of node:http2 / undici.
 *
 * Why: node:http2 hands every DATA frame (8–16 KiB) to JS as a Buffer of its own, and undici wraps each in a
 * stream chunk. At 500 MB/s that is 40–60 thousand short-lived Buffers a second, and V8 spends as much CPU
 * collecting them as curl spends on the whole download (bench/RESULTS.md, session 5). Here TLS decrypts into
 * one reused buffer, DATA payloads are copied once into 256 KiB chunk buffers (recycled), and the body stream gets ≥ 64 KiB
 * views of those: the garbage per GiB drops a hundredfold and the memcpy costs ~0.1 cpu-s/GiB.
 *
 * Scope: GET requests (no request body), response headers through a full HPACK decoder, flow control with
 * back-pressure from the body stream, SETTINGS / PING / GOAWAY / RST_STREAM, connect / response-header / body
 * timeouts, connection pacing and the per-socket hook (marking) shared with the undici pool. A request that the
 * server never processed (refused stream, GOAWAY above its id, connection lost before its response) fails with
 * `unprocessed: true` so the caller replays it on a fresh session. HEAD, PUT and COPY stay on undici.
 *
 * Every server is untrusted (RFC 9113 §10): each frame is checked against its type before its payload is read
 * (frame-rules.ts), SETTINGS values against their ranges, stream ids against the streams we opened, flow control in
 * both directions; frames that cost work without progress are budgeted (flood-guard.ts), our own writes bounded
 * (a server that does not read gets no queue of ACKs), header blocks bounded in bytes, fragments and decoded size,
 * responses validated before a byte of their body is delivered (response-fields.ts). A violation ends its stream or
 * its connection with CARGO_ERR_PEER_PROTOCOL and the reason, never the process.
 */
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { LookupFunction, Socket } from 'node:net';
import { defaultConnectionPacing } from '../../throttle/connection-pacer.js';
import { Connector } from '../connect/connector.js';
import type { ErrorCode } from '../../../errors/catalogue.js';
import { TransferError, TransferErrorCode } from '../transfer-errors.js';
import { encodeGetRequest, HpackDecoder, HpackError } from './hpack.js';
import { holdChunkPool, returnChunk, takeChunk } from './chunk-pool.js';
import { FloodGuard } from './flood-guard.js';
import {
  FrameFlag, FrameType, H2ErrorCode, MAX_WINDOW, SettingId, frameHeaderViolation, frameName, settingViolation,
} from './frame-rules.js';
import { MalformedResponse, checkTrailers, hasNoContent, responseHead } from './response-fields.js';

const FRAME_DATA = FrameType.DATA;
const FRAME_HEADERS = FrameType.HEADERS;
const FRAME_PRIORITY = FrameType.PRIORITY;
const FRAME_RST_STREAM = FrameType.RST_STREAM;
const FRAME_SETTINGS = FrameType.SETTINGS;
const FRAME_PING = FrameType.PING;
const FRAME_GOAWAY = FrameType.GOAWAY;
const FRAME_WINDOW_UPDATE = FrameType.WINDOW_UPDATE;
const FRAME_CONTINUATION = FrameType.CONTINUATION;

const FLAG_END_STREAM = FrameFlag.END_STREAM;
const FLAG_ACK = FrameFlag.ACK;
const FLAG_END_HEADERS = FrameFlag.END_HEADERS;
const FLAG_PADDED = FrameFlag.PADDED;
const FLAG_PRIORITY = FrameFlag.PRIORITY;

const SETTINGS_HEADER_TABLE_SIZE = SettingId.HEADER_TABLE_SIZE;
const SETTINGS_ENABLE_PUSH = SettingId.ENABLE_PUSH;
const SETTINGS_MAX_CONCURRENT_STREAMS = SettingId.MAX_CONCURRENT_STREAMS;
const SETTINGS_INITIAL_WINDOW_SIZE = SettingId.INITIAL_WINDOW_SIZE;
const SETTINGS_MAX_FRAME_SIZE = SettingId.MAX_FRAME_SIZE;
const SETTINGS_MAX_HEADER_LIST_SIZE = SettingId.MAX_HEADER_LIST_SIZE;

const ERR_NO_ERROR = H2ErrorCode.NO_ERROR;
const ERR_PROTOCOL = H2ErrorCode.PROTOCOL_ERROR;
const ERR_INTERNAL = H2ErrorCode.INTERNAL_ERROR;
const ERR_FLOW_CONTROL = H2ErrorCode.FLOW_CONTROL_ERROR;
const ERR_STREAM_CLOSED = H2ErrorCode.STREAM_CLOSED;
const ERR_FRAME_SIZE = H2ErrorCode.FRAME_SIZE_ERROR;
const ERR_REFUSED_STREAM = H2ErrorCode.REFUSED_STREAM;
const ERR_CANCEL = H2ErrorCode.CANCEL;
const ERR_COMPRESSION = H2ErrorCode.COMPRESSION_ERROR;
const ERR_ENHANCE_YOUR_CALM = H2ErrorCode.ENHANCE_YOUR_CALM;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** The largest frame we accept (our SETTINGS_MAX_FRAME_SIZE): nginx sends 8 KiB DATA frames, others 16 KiB. */
const MAX_FRAME_SIZE = 1 << 16;
/** The server's limit on the frames we send, until its SETTINGS say otherwise (RFC 9113 §6.5.2). */
const DEFAULT_PEER_MAX_FRAME = 16384;
/** Flow-control windows before SETTINGS / WINDOW_UPDATE change them (§6.9.2). */
const DEFAULT_WINDOW = 65_535;
/** A view goes to the body stream once this much is waiting, or after FLUSH_AFTER_MS on a slow stream. */
const PUSH_BYTES = 64 * 1024;
const FLUSH_AFTER_MS = 20;
const READ_BUFFER_BYTES = 256 * 1024;
/**
 * Largest decoded response header list (our SETTINGS_MAX_HEADER_LIST_SIZE, counted as it defines: name + value +
 * 32 bytes per field). Node's http2 client accepts 64 KiB too; a GET's answer needs a few hundred bytes.
 */
const MAX_HEADER_LIST = 64 * 1024;
/** Largest response header block accepted (all HEADERS + CONTINUATION fragments together, as sent). */
const MAX_HEADER_BLOCK = 256 * 1024;
/**
 * CONTINUATION frames accepted after one HEADERS frame: with frames of at least 16 KiB, 8 carry more than our whole
 * header list. nghttp2 refuses a 9th since CVE-2024-27983/28182 (CONTINUATION floods, endless empty fragments).
 */
const MAX_CONTINUATIONS = 8;
/**
 * Bytes of our own frames allowed to wait for the socket. We send only small frames (HEADERS, WINDOW_UPDATE, ACKs);
 * more than this waiting means the server does not read what we send — nghttp2 closes such a connection after 1,000
 * queued ACKs (max_outbound_ack, CVE-2019-9512/9515): without a bound each PING's ACK would queue for ever.
 */
const MAX_UNSENT_BYTES = 256 * 1024;

export interface BulkSessionOptions {
  /** `https://host[:port]` */
  origin: string;
  /**
   * Opens the TLS connection (offering h2), reading into `onread`'s buffer: the engine's connector (pacing, retries,
   * timeouts, TLS options, socket events); `standaloneBulkOpen` builds one for sessions made outside an engine.
   */
  open: (onread: { buffer: Buffer; callback: (n: number, buf: Buffer) => boolean | void }) => Promise<Socket>;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Receive windows (bytes): per stream, and for the whole connection. */
  initialWindowSize: number;
  connectionWindowSize: number;
  /** Close the connection after this long without a stream (undici's keep-alive default: 30 s). */
  idleTimeoutMs?: number;
}

/**
 * `BulkSessionOptions.open` for a session made outside an engine (tools, tests of the session itself): a connector
 * of its own with default pacing.
 */
export function standaloneBulkOpen(o: {
  origin: string; ca?: string | Buffer | Array<string | Buffer>; rejectUnauthorized?: boolean; ciphers?: string;
  lookup?: LookupFunction; connectTimeoutMs: number; connector?: Connector;
}): BulkSessionOptions['open'] {
  const connector = o.connector ?? new Connector({ pacing: defaultConnectionPacing });
  return (onread) => connector.open({
    origin: o.origin, alpn: ['h2', 'http/1.1'], flow: {}, onread, connectTimeoutMs: o.connectTimeoutMs,
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
    ...(o.ciphers !== undefined ? { ciphers: o.ciphers } : {}),
    ...(o.lookup !== undefined ? { lookup: o.lookup } : {}),
  });
}

export interface BulkResponse {
  statusCode: number;
  /** Lower-case names; repeated fields as arrays (undici's shape). */
  headers: Record<string, string | string[]>;
  body: Readable;
}

/**
 * A failure of the transport; `unprocessed` when the server provably did not act on the request. A server that
 * broke the protocol fails with CARGO_ERR_PEER_PROTOCOL and the reason.
 */
export class BulkTransportError extends TransferError {
  constructor(message: string, readonly unprocessed: boolean, cause?: unknown, code: ErrorCode = TransferErrorCode.network) {
    super(code, message, { httpStatus: code === TransferErrorCode.timeout ? 504 : 502, field: 'source', retryable: true, cause });
  }
}

/** The server did not negotiate HTTP/2: the caller uses the ordinary (undici) path for this origin. */
export class NotHttp2Error extends Error {
  constructor(readonly alpn: string | false | null) {
    super(`server negotiated ${alpn || 'no ALPN protocol'}, not h2`);
  }
}

interface Stream {
  id: number;
  resolve: (r: BulkResponse) => void;
  reject: (e: Error) => void;
  body?: BulkBody;
  /** Response headers arrived (the request is answered; later failures go to the body). */
  answered: boolean;
  ended: boolean;
  /** Bytes received on this stream not yet returned to the server with WINDOW_UPDATE. */
  ungranted: number;
  /** Body bytes received (DATA payload without padding), and what the response's content-length announced. */
  received: number;
  contentLength?: number;
  /** The server's window for DATA from us: never used (GETs carry no body), tracked for its overflow rule. */
  sendWindow: number;
  /** The body stream is above its high-water mark: window updates wait for the consumer. */
  blocked: boolean;
  lastDataAt: number;
  headersTimer?: NodeJS.Timeout;
  signal?: AbortSignal;
  onAbort?: () => void;
  chunk?: Buffer;
  chunkRecord?: ChunkRecord;
  /** chunk[pushedTo, fill) has arrived and not yet gone to the body stream. */
  fill: number;
  pushedTo: number;
  pendingSince: number;
}

/**
 * A body stream that takes its chunks back: a consumer that is done with chunks it read (written to disk, say)
 * may hand them to recycle(), and their memory carries later bytes. Allocating fresh chunk buffers for every MiB
 * instead costs a V8 mark-compact every ~40 MiB (external memory pressure): 28 per GiB, measured.
 */
export interface RecyclingReadable extends Readable {
  /** `views` were read from this stream and will not be touched again by the caller. */
  recycle(views: readonly Buffer[]): void;
}

/** Bookkeeping of one chunk buffer: bytes handed out as views and not yet recycled, and whether it is full. */
interface ChunkRecord {
  buf: Buffer;
  outstanding: number;
  sealed: boolean;
}

class BulkBody extends Readable implements RecyclingReadable {
  constructor(private readonly session: H2BulkSession, private readonly stream: Stream) {
    super({ highWaterMark: 1024 * 1024 });
    // Between the response and its reader (a probe kept across awaits, a part file being opened) nobody listens
    // for 'error', and a connection lost then would be an unhandled 'error' event: a crashed worker. The error
    // stays on the stream (`destroyed`, `errored`) for the reader, who checks it before reading, as FilePump does.
    this.on('error', () => undefined);
  }
  recycle(views: readonly Buffer[]): void {
    this.session.recycle(views);
  }
  override _read(): void {
    this.session.onDemand(this.stream);
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.session.cancel(this.stream);
    cb(err);
  }
}

export class H2BulkSession {
  readonly origin: string;
  remoteIp?: string;
  remotePort?: number;
  localPort?: number;
  private socket?: TLSSocket;
  private readonly ready: Promise<void>;
  private readonly streams = new Map<number, Stream>();
  private nextStreamId = 1;
  private closed = false;
  private goingAway = false;
  private closeError?: Error;
  private peerMaxStreams = 100;
  private peerMaxFrame = DEFAULT_PEER_MAX_FRAME;
  /** The server's SETTINGS_INITIAL_WINDOW_SIZE and its connection window for DATA from us (never used: GETs). */
  private peerInitialWindow = DEFAULT_WINDOW;
  private connSendWindow = DEFAULT_WINDOW;
  /** The lowest last-stream-id of the server's GOAWAYs (it may only go down). */
  private goawayLastStream = MAX_WINDOW;
  private readonly waiting: Array<() => void> = [];
  private readonly hpack = new HpackDecoder();
  private connUngranted = 0;
  /**
   * DATA bytes the server may still send on streams we reset (each stream's window left when we reset it): frames
   * in flight then are legal, more than that on closed streams is not (STREAM_CLOSED).
   */
  private closedStreamAllowance = 0;
  private readonly flood = new FloodGuard();
  private settingsAcked = false;
  private readonly ticker: NodeJS.Timeout;
  /** When the last stream ended (idle close). */
  private idleSince = Date.now();
  private readonly chunks = new WeakMap<ArrayBufferLike, ChunkRecord>();
  /** Lets go of the process-wide chunk pool when this session closes. */
  private readonly releaseChunkPool = holdChunkPool();
  // Frame parser state, carried across reads.
  private readonly head = Buffer.alloc(9);
  private headFill = 0;
  private frameLen = 0;
  private frameType = 0;
  private frameFlags = 0;
  private frameStream = 0;
  private remaining = 0;
  /** DATA frame: pad length byte still to read, data bytes left (the padding after them is skipped). */
  private padPending = false;
  private dataLeft = 0;
  /** DATA frame: its data bytes (without padding), known once the pad length is read. */
  private dataInFrame = 0;
  /** DATA frame: the open stream it feeds, if any (a closed stream's DATA is counted, not delivered). */
  private dataStream: Stream | undefined;
  /** The current frame's payload is ignored (unknown type, or a stream error already raised for it). */
  private skipPayload = false;
  private control = Buffer.alloc(1024);
  private controlFill = 0;
  /** Header block being assembled (HEADERS + CONTINUATION): fragments, stream, END_STREAM flag, size, count. */
  private block: Buffer[] = [];
  private blockOpen = false;
  private blockStream = 0;
  private blockEndStream = false;
  private blockBytes = 0;
  private blockContinuations = 0;

  constructor(private readonly o: BulkSessionOptions) {
    this.origin = o.origin;
    this.ready = this.connect();
    this.ready.catch(() => undefined); // reported to every request that waits on it
    this.ticker = setInterval(() => this.tick(), 50);
    this.ticker.unref();
  }

  /** False once the session can take no new request (closed, going away, or stream ids used up). */
  get usable(): boolean {
    return !this.closed && !this.goingAway;
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  async request(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<BulkResponse> {
    await this.ready;
    await this.streamSlot(signal);
    if (!this.usable) throw new BulkTransportError(`HTTP/2 connection to ${this.origin} is closing`, true, this.closeError);
    if (signal.aborted) throw signal.reason;
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    if (this.nextStreamId > MAX_WINDOW) this.goingAway = true;
    const url = new URL(this.origin);
    const block = encodeGetRequest(url.host, path, headers);
    return new Promise<BulkResponse>((resolve, reject) => {
      const s: Stream = {
        id, resolve, reject, answered: false, ended: false, ungranted: 0, received: 0, sendWindow: this.peerInitialWindow,
        blocked: false, lastDataAt: Date.now(), fill: 0, pushedTo: 0, pendingSince: 0, signal,
      };
      s.headersTimer = setTimeout(() => this.failStream(s, new BulkTransportError(
        `no response headers from ${this.origin} within ${this.o.headersTimeoutMs} ms`, false, undefined, TransferErrorCode.timeout), ERR_CANCEL), this.o.headersTimeoutMs);
      s.onAbort = () => this.failStream(s, signal.reason as Error, ERR_CANCEL);
      signal.addEventListener('abort', s.onAbort, { once: true });
      this.streams.set(id, s);
      this.writeHeaders(id, block);
    });
  }

  close(): void {
    this.shutdown(new BulkTransportError(`HTTP/2 connection to ${this.origin} closed`, true), ERR_NO_ERROR);
  }

  /**
   * Waits while the server's SETTINGS_MAX_CONCURRENT_STREAMS are all in use — at most the response-header timeout
   * (a server announcing 0 streams for ever must not hold a transfer for ever) and never past an abort.
   */
  private async streamSlot(signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.o.headersTimeoutMs;
    while (this.usable && this.streams.size >= this.peerMaxStreams) {
      if (signal.aborted) throw signal.reason;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new BulkTransportError(`${this.origin} allowed no new stream for ${this.o.headersTimeoutMs} ms (SETTINGS_MAX_CONCURRENT_STREAMS ${this.peerMaxStreams})`,
          false, undefined, TransferErrorCode.timeout);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          const i = this.waiting.indexOf(done);
          if (i >= 0) this.waiting.splice(i, 1);
          resolve();
        };
        const timer = setTimeout(done, left);
        signal.addEventListener('abort', done, { once: true });
        this.waiting.push(done);
      });
    }
  }

  // ---- connection ------------------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    try {
      let socket: TLSSocket;
      try {
        socket = await this.o.open({ buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Buffer) => this.onRead(n, buf) }) as TLSSocket;
      } catch (e) {
        // http/1.1 is offered too, so a server without h2 says so (below); one that still refuses the handshake with
        // a no_application_protocol alert is no h2 server either.
        if ((e as NodeJS.ErrnoException).code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') throw new NotHttp2Error(false);
        throw e;
      }
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy();
        throw new NotHttp2Error(socket.alpnProtocol);
      }
      this.socket = socket;
      this.remoteIp = socket.remoteAddress;
      this.remotePort = socket.remotePort;
      this.localPort = socket.localPort;
      socket.on('error', (e) => {
        this.shutdown(new BulkTransportError(`HTTP/2 connection to ${this.origin} failed: ${e.message}`, false, e), ERR_NO_ERROR);
      });
      socket.on('close', () => {
        if (socket === this.socket) this.shutdown(new BulkTransportError(`HTTP/2 connection to ${this.origin} closed`, false), ERR_NO_ERROR);
      });
      this.writePreface();
    } catch (e) {
      this.closed = true;
      this.closeError = e as Error;
      clearInterval(this.ticker);
      this.releaseChunkPool();
      throw e;
    }
  }

  private writePreface(): void {
    const settings = Buffer.alloc(30);
    let p = 0;
    for (const [id, value] of [
      [SETTINGS_ENABLE_PUSH, 0], [SETTINGS_INITIAL_WINDOW_SIZE, this.streamWindow],
      [SETTINGS_MAX_FRAME_SIZE, MAX_FRAME_SIZE], [SETTINGS_HEADER_TABLE_SIZE, 4096], [SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST],
    ] as const) {
      settings.writeUInt16BE(id, p);
      settings.writeUInt32BE(value, p + 2);
      p += 6;
    }
    const connIncrement = this.connectionWindow - DEFAULT_WINDOW;
    this.socket!.write(Buffer.concat([
      PREFACE, frame(FRAME_SETTINGS, 0, 0, settings),
      ...(connIncrement > 0 ? [frame(FRAME_WINDOW_UPDATE, 0, 0, u32(connIncrement))] : []),
    ]));
  }

  /** The stream window we announce, and the connection window we open (never below the default). */
  private get streamWindow(): number {
    return Math.min(MAX_WINDOW, this.o.initialWindowSize);
  }

  private get connectionWindow(): number {
    return Math.max(DEFAULT_WINDOW, Math.min(MAX_WINDOW, this.o.connectionWindowSize));
  }

  /**
   * Every frame after the preface goes out here. Our frames are small; a server that lets them pile up does not
   * read, and a connection to it is closed instead of queueing its ACKs without end. False when nothing was sent.
   */
  private send(frameBytes: Buffer): boolean {
    const socket = this.socket;
    if (!socket || socket.destroyed || this.closed) return false;
    if (socket.writableLength > MAX_UNSENT_BYTES) {
      this.connectionError(ERR_ENHANCE_YOUR_CALM, `server does not read what we send (${socket.writableLength} bytes of our frames waiting)`);
      return false;
    }
    socket.write(frameBytes);
    return true;
  }

  private writeHeaders(id: number, block: Buffer): void {
    const parts: Buffer[] = [];
    for (let off = 0; off < block.length || off === 0; off += this.peerMaxFrame) {
      const piece = block.subarray(off, off + this.peerMaxFrame);
      const last = off + this.peerMaxFrame >= block.length;
      parts.push(off === 0
        ? frame(FRAME_HEADERS, FLAG_END_STREAM | (last ? FLAG_END_HEADERS : 0), id, piece)
        : frame(FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, id, piece));
      if (last) break;
    }
    this.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /**
   * Fails every stream and closes the socket (GOAWAY with `code` first when the socket still writes). Requests not
   * answered yet fail as unprocessed (the caller may send them elsewhere) unless `replayable` is false: after a
   * protocol error the server's behaviour, not the connection, is what failed them.
   */
  private shutdown(err: Error, code: number, replayable = true): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    clearInterval(this.ticker);
    this.releaseChunkPool();
    const s = this.socket;
    if (s && !s.destroyed && s.writable && s.writableLength <= MAX_UNSENT_BYTES) {
      const payload = Buffer.alloc(8);
      payload.writeUInt32BE(0, 0);
      payload.writeUInt32BE(code, 4);
      s.end(frame(FRAME_GOAWAY, 0, 0, payload));
      setTimeout(() => s.destroy(), 1000).unref();
    } else {
      s?.destroy();
    }
    // A request not answered yet may be sent again elsewhere (GETs are idempotent).
    for (const st of [...this.streams.values()]) {
      this.failStream(st, st.answered || !replayable ? err : new BulkTransportError(err.message, true, err), -1);
    }
    for (const w of this.waiting.splice(0)) w();
  }

  /** The server broke the protocol (or a limit): every stream fails with the reason, GOAWAY `code` goes out. */
  private connectionError(code: number, message: string): void {
    this.shutdown(new BulkTransportError(`HTTP/2 protocol error from ${this.origin}: ${message}`, false, undefined, TransferErrorCode.peerProtocol), code, false);
  }

  /** A stream error (RFC 9113 §5.4.2): this stream is reset with `code`, the connection goes on. */
  private streamError(s: Stream, code: number, message: string): void {
    this.failStream(s, new BulkTransportError(`HTTP/2 protocol error from ${this.origin} on stream ${s.id}: ${message}`, false, undefined, TransferErrorCode.peerProtocol), code);
  }

  /** A response that breaks RFC 9113 §8: a stream error of type PROTOCOL_ERROR (§8.1.1). */
  private malformed(s: Stream, reason: string): void {
    this.failStream(s, new BulkTransportError(`malformed response from ${this.origin} (stream ${s.id}): ${reason}`, false, undefined, TransferErrorCode.peerProtocol), ERR_PROTOCOL);
  }

  /** One more frame that costs work without progress; false (and the connection closed) once the budget is spent. */
  private glitch(kind: string): boolean {
    if (this.flood.take()) return true;
    this.connectionError(ERR_ENHANCE_YOUR_CALM, this.flood.describe(kind));
    return false;
  }

  // ---- streams ---------------------------------------------------------------------------------------------

  /**
   * Ends a stream with `err`: before its response the request promise rejects, after it the body errors.
   * `rstCode` ≥ 0 also resets the stream at the server (cancel, timeout); −1 when the server ended it.
   */
  private failStream(s: Stream, err: Error, rstCode: number): void {
    if (!this.streams.has(s.id)) return;
    this.forget(s);
    if (rstCode >= 0) this.resetStream(s, rstCode);
    if (!s.answered) s.reject(err);
    else if (!s.ended) s.body!.destroy(err);
  }

  /**
   * RST_STREAM from us. The server may have DATA for the stream in flight, up to the window it still had: that
   * much is allowed on closed streams (and discarded), more is a STREAM_CLOSED error.
   */
  private resetStream(s: Stream, code: number): void {
    if (s.ended) return;
    this.closedStreamAllowance += Math.max(0, this.streamWindow - s.ungranted);
    this.send(frame(FRAME_RST_STREAM, 0, s.id, u32(code)));
  }

  private forget(s: Stream): void {
    this.streams.delete(s.id);
    // Bytes copied but not pushed are dropped with the stream; views already pushed may still come back.
    if (s.chunkRecord && !s.ended) {
      s.fill = s.pushedTo;
      this.sealChunk(s);
    }
    if (s.headersTimer) clearTimeout(s.headersTimer);
    if (s.onAbort) s.signal?.removeEventListener('abort', s.onAbort);
    this.waiting.shift()?.();
    if (this.streams.size === 0) this.idleSince = Date.now();
    if (this.goingAway && this.streams.size === 0) this.close();
  }

  /** The body stream (or its consumer) destroyed it: reset the stream if it is still running. */
  cancel(s: Stream): void {
    if (!this.streams.has(s.id)) return;
    this.forget(s);
    this.resetStream(s, ERR_CANCEL);
  }

  /** The consumer wants more: grant the window held back while it was above its high-water mark. */
  onDemand(s: Stream): void {
    if (!s.blocked) return;
    s.blocked = false;
    this.grantStream(s, true);
  }

  private grantStream(s: Stream, force = false): void {
    if (s.ended || !this.streams.has(s.id)) return;
    if (s.ungranted === 0 || (!force && s.ungranted < this.streamWindow / 4)) return;
    this.send(frame(FRAME_WINDOW_UPDATE, 0, s.id, u32(s.ungranted)));
    s.ungranted = 0;
  }

  private grantConnection(received: number): void {
    this.connUngranted += received;
    if (this.connUngranted >= this.connectionWindow / 4) {
      this.send(frame(FRAME_WINDOW_UPDATE, 0, 0, u32(this.connUngranted)));
      this.connUngranted = 0;
    }
  }

  /** Copies DATA payload bytes into the stream's chunk buffer; views go to the body stream in pushData. */
  private onData(s: Stream, src: Buffer, start: number, end: number): void {
    let off = start;
    while (off < end) {
      if (!s.chunk || s.fill === s.chunk.length) {
        this.pushData(s, true);
        this.sealChunk(s);
        const buf = takeChunk();
        const record: ChunkRecord = { buf, outstanding: 0, sealed: false };
        this.chunks.set(buf.buffer, record);
        s.chunk = buf;
        s.chunkRecord = record;
        s.fill = 0;
        s.pushedTo = 0;
      }
      const n = Math.min(end - off, s.chunk.length - s.fill);
      src.copy(s.chunk, s.fill, off, off + n);
      if (s.fill === s.pushedTo) s.pendingSince = Date.now();
      s.fill += n;
      off += n;
    }
    if (s.fill - s.pushedTo >= PUSH_BYTES) this.pushData(s, false);
  }

  /** Hands chunk[pushedTo, fill) to the body stream (all of it when `all`, else only a worthwhile amount). */
  private pushData(s: Stream, all: boolean): void {
    if (!s.chunk || s.fill === s.pushedTo || !s.body) return;
    if (!all && s.fill - s.pushedTo < PUSH_BYTES && Date.now() - s.pendingSince < FLUSH_AFTER_MS) return;
    const view = s.chunk.subarray(s.pushedTo, s.fill);
    s.chunkRecord!.outstanding += view.length;
    s.pushedTo = s.fill;
    if (!s.body.push(view)) s.blocked = true;
  }

  /** No more views will be cut from the stream's current chunk: it may be reused once they all come back. */
  private sealChunk(s: Stream): void {
    const record = s.chunkRecord;
    if (!record) return;
    record.sealed = true;
    s.chunk = undefined;
    s.chunkRecord = undefined;
    this.maybeReuse(record);
  }

  recycle(views: readonly Buffer[]): void {
    for (const v of views) {
      const record = this.chunks.get(v.buffer);
      if (!record) continue;
      record.outstanding -= v.length;
      this.maybeReuse(record);
    }
  }

  private maybeReuse(record: ChunkRecord): void {
    if (!record.sealed || record.outstanding !== 0) return;
    this.chunks.delete(record.buf.buffer);
    returnChunk(record.buf);
  }

  private endStream(s: Stream): void {
    this.pushData(s, true);
    this.sealChunk(s);
    s.ended = true;
    this.forget(s);
    s.body?.push(null);
  }

  private tick(): void {
    const now = Date.now();
    // An idle connection is closed, as undici's keep-alive does: a worker that once pulled from many servers
    // must not hold a TLS connection to each of them for ever.
    if (this.streams.size === 0 && this.socket && now - this.idleSince > (this.o.idleTimeoutMs ?? 30_000)) {
      this.close();
      return;
    }
    for (const s of this.streams.values()) {
      if (!s.answered) continue;
      this.pushData(s, false);
      if (!s.blocked && now - s.lastDataAt > this.o.bodyTimeoutMs) {
        this.failStream(s, new BulkTransportError(`no body bytes from ${this.origin} for ${this.o.bodyTimeoutMs} ms`, false, undefined, TransferErrorCode.timeout), ERR_CANCEL);
      }
    }
  }

  // ---- frames ----------------------------------------------------------------------------------------------

  /**
   * onread callback: `buf[0, n)` holds decrypted bytes; they must be consumed before returning. Nothing a server
   * sends may throw out of here (an exception in onread takes the process down): every rule below ends a stream or
   * the connection. The catch is the last line behind them — a bug of ours fails this connection, not the process.
   */
  private onRead(n: number, buf: Buffer): boolean {
    try {
      this.parse(n, buf);
    } catch (e) {
      this.shutdown(new BulkTransportError(`internal error in the HTTP/2 receive path for ${this.origin}: ${(e as Error).message}`,
        false, e, 'CARGO_ERR_INTERNAL'), ERR_INTERNAL, false);
    }
    return true;
  }

  private parse(n: number, buf: Buffer): void {
    let i = 0;
    while (i < n && !this.closed) {
      if (this.headFill < 9) {
        const k = Math.min(9 - this.headFill, n - i);
        buf.copy(this.head, this.headFill, i, i + k);
        this.headFill += k;
        i += k;
        if (this.headFill < 9) break;
        if (!this.startFrame()) return;
        if (this.remaining === 0) this.finishFrame();
        continue;
      }
      const k = Math.min(this.remaining, n - i);
      if (this.skipPayload) { /* ignored */ } else if (this.frameType === FRAME_DATA) this.dataBytes(buf, i, i + k);
      else this.controlBytes(buf, i, i + k);
      i += k;
      this.remaining -= k;
      if (this.remaining === 0) this.finishFrame();
    }
    // Views of what arrived in this read go out now if they waited long enough (slow links).
    if (!this.closed) for (const s of this.streams.values()) if (s.answered && s.fill > s.pushedTo) this.pushData(s, false);
  }

  /**
   * Parses the 9-byte frame header and applies every rule that needs no payload (RFC 9113 §4–§6): size by type,
   * stream 0 or not, idle and closed streams, header block sequencing, flow control. False after a connection error.
   */
  private startFrame(): boolean {
    const h = this.head;
    const len = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    const type = h[3]!;
    const flags = h[4]!;
    const id = h.readUInt32BE(5) & 0x7fffffff;
    this.frameLen = len;
    this.frameType = type;
    this.frameFlags = flags;
    this.frameStream = id;
    this.remaining = len;
    this.skipPayload = false;
    this.controlFill = 0;
    if (len > MAX_FRAME_SIZE) {
      this.connectionError(ERR_FRAME_SIZE, `frame of ${len} bytes above our limit ${MAX_FRAME_SIZE}`);
      return false;
    }
    if (this.blockOpen && type !== FRAME_CONTINUATION) {
      this.connectionError(ERR_PROTOCOL, `header block interrupted by a ${frameName(type)} frame`);
      return false;
    }
    const violation = frameHeaderViolation(type, flags, len, id);
    if (violation) {
      if (!violation.streamOnly) {
        this.connectionError(violation.code, violation.reason);
        return false;
      }
      const s = this.streams.get(id);
      if (s) this.streamError(s, violation.code, violation.reason);
      this.skipPayload = true;
      return true;
    }
    // A frame on a stream we never opened: servers open none (push is off), and ours above nextStreamId are idle.
    if (id !== 0 && type !== FRAME_PRIORITY && type <= FRAME_CONTINUATION && (id % 2 === 0 || id >= this.nextStreamId)) {
      this.connectionError(ERR_PROTOCOL, id % 2 === 0
        ? `${frameName(type)} frame on stream ${id} (a server opens no streams: push is off)`
        : `${frameName(type)} frame on idle stream ${id}`);
      return false;
    }
    switch (type) {
      case FRAME_DATA:
        return this.startData(len, flags, id);
      case FRAME_HEADERS:
        this.blockOpen = true;
        this.blockStream = id;
        this.blockEndStream = (flags & FLAG_END_STREAM) !== 0;
        this.blockBytes = 0;
        this.blockContinuations = 0;
        break;
      case FRAME_CONTINUATION:
        if (!this.blockOpen || id !== this.blockStream) {
          this.connectionError(ERR_PROTOCOL, 'CONTINUATION without a header block in progress');
          return false;
        }
        if (++this.blockContinuations > MAX_CONTINUATIONS) {
          this.connectionError(ERR_ENHANCE_YOUR_CALM, `header block in more than ${MAX_CONTINUATIONS} CONTINUATION frames`);
          return false;
        }
        break;
      case FRAME_PRIORITY:
      case FRAME_RST_STREAM:
      case FRAME_SETTINGS:
      case FRAME_PING:
      case FRAME_GOAWAY:
      case FRAME_WINDOW_UPDATE:
        break;
      default:
        // Unknown types are ignored (§4.1, §5.5), their payload unread; a stream of them is still a flood.
        if (!this.glitch(`frames of ${frameName(type)}`)) return false;
        this.skipPayload = true;
        return true;
    }
    if (type === FRAME_HEADERS || type === FRAME_CONTINUATION) {
      if (this.blockBytes + len > MAX_HEADER_BLOCK) {
        this.connectionError(ERR_ENHANCE_YOUR_CALM, `header block larger than ${MAX_HEADER_BLOCK} bytes`);
        return false;
      }
    }
    if (this.control.length < len) this.control = Buffer.alloc(len);
    return true;
  }

  /**
   * A DATA frame's header: flow control (the server may not send past the windows we gave), and where its bytes go
   * — an open stream, or nowhere (a stream we reset may still receive what was in flight; nothing else may).
   */
  private startData(len: number, flags: number, id: number): boolean {
    this.padPending = (flags & FLAG_PADDED) !== 0;
    this.dataLeft = this.padPending ? -1 : len;
    this.dataInFrame = this.padPending ? 0 : len;
    this.dataStream = undefined;
    if (this.connUngranted + len > this.connectionWindow) {
      this.connectionError(ERR_FLOW_CONTROL, `DATA beyond the connection window of ${this.connectionWindow} bytes`);
      return false;
    }
    const s = this.streams.get(id);
    if (!s) {
      if (len > this.closedStreamAllowance) {
        this.connectionError(ERR_STREAM_CLOSED, `DATA frame on closed stream ${id}`);
        return false;
      }
      this.closedStreamAllowance -= len;
      return true;
    }
    // Bytes received and not yet granted back can only exceed the stream window if the server ignores it. Such a
    // server would fill our memory while the consumer is slow: the stream ends here (RFC 9113 §6.9.1).
    if (s.ungranted + len > this.streamWindow) {
      this.streamError(s, ERR_FLOW_CONTROL, `flow-control error: the server sent ${s.ungranted + len} bytes into a window of ${this.streamWindow}`);
      return true;
    }
    this.dataStream = s;
    return true;
  }

  private dataBytes(buf: Buffer, start: number, end: number): void {
    if (this.padPending) {
      const padLen = buf[start]!;
      this.padPending = false;
      this.dataLeft = this.frameLen - 1 - padLen;
      if (this.dataLeft < 0) return this.connectionError(ERR_PROTOCOL, 'DATA padding longer than the frame');
      this.dataInFrame = this.dataLeft;
      start++;
    }
    const take = Math.min(this.dataLeft, end - start);
    if (take <= 0) return;
    this.dataLeft -= take;
    const s = this.dataStream;
    if (!s || !this.streams.has(s.id)) return;
    if (!s.answered) return; // failed when the frame ends
    s.received += take;
    // More than the content-length announced: nothing of it is delivered, the stream fails.
    if (s.contentLength !== undefined && s.received > s.contentLength) {
      this.malformed(s, `more DATA than its content-length (${s.contentLength})`);
      return;
    }
    s.lastDataAt = Date.now();
    this.onData(s, buf, start, start + take);
  }

  private controlBytes(buf: Buffer, start: number, end: number): void {
    buf.copy(this.control, this.controlFill, start, end);
    this.controlFill += end - start;
  }

  /** The current frame is complete. */
  private finishFrame(): void {
    this.headFill = 0;
    if (this.skipPayload) return;
    const { frameType: type, frameFlags: flags, frameStream: id, frameLen: len } = this;
    const payload = this.control.subarray(0, this.controlFill);
    switch (type) {
      case FRAME_DATA:
        return this.finishData(len, flags, id);
      case FRAME_HEADERS:
      case FRAME_CONTINUATION:
        return this.headerFragment(type, flags, id, payload);
      case FRAME_SETTINGS:
        return this.settings(flags, payload);
      case FRAME_PING:
        if (flags & FLAG_ACK) {
          this.glitch('PING ACKs (we sent no PING)');
          return;
        }
        if (this.glitch('PING frames')) this.send(frame(FRAME_PING, FLAG_ACK, 0, Buffer.from(payload)));
        return;
      case FRAME_GOAWAY:
        return this.goaway(payload);
      case FRAME_RST_STREAM: {
        const s = this.streams.get(id);
        if (!s) {
          this.glitch('RST_STREAM frames on closed streams');
          return;
        }
        const code = payload.readUInt32BE(0);
        this.failStream(s, new BulkTransportError(`${this.origin} reset the stream (HTTP/2 error ${code})`, code === ERR_REFUSED_STREAM && !s.answered), -1);
        return;
      }
      case FRAME_WINDOW_UPDATE:
        return this.windowUpdate(id, payload);
      case FRAME_PRIORITY: {
        if (!this.glitch('PRIORITY frames')) return;
        const s = this.streams.get(id);
        if (s && (payload.readUInt32BE(0) & 0x7fffffff) === id) this.streamError(s, ERR_PROTOCOL, 'PRIORITY frame making the stream depend on itself');
        return;
      }
      default:
        return; // unknown types were skipped at their header
    }
  }

  private finishData(len: number, flags: number, id: number): void {
    // Flow control counts the whole frame, padding included (RFC 9113 §6.9.1).
    this.grantConnection(len);
    const s = this.dataStream;
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (this.dataInFrame === 0 && !endStream && !this.glitch('empty DATA frames')) return;
    if (!s || !this.streams.has(id)) return; // a closed stream's: counted, not delivered
    if (!s.answered) {
      this.malformed(s, 'DATA before response headers');
      return;
    }
    s.ungranted += len;
    if (!s.blocked) this.grantStream(s);
    if (endStream) this.finishBody(s);
  }

  /** END_STREAM on an answered stream: the body is whole only if it is as long as its content-length said. */
  private finishBody(s: Stream): void {
    if (s.contentLength !== undefined && s.received !== s.contentLength) {
      this.malformed(s, `response ended after ${s.received} of the ${s.contentLength} bytes its content-length announced`);
      return;
    }
    this.endStream(s);
  }

  private headerFragment(type: number, flags: number, id: number, payload: Buffer): void {
    let fragment = payload;
    if (type === FRAME_HEADERS) {
      let p = 0;
      let padLen = 0;
      if (flags & FLAG_PADDED) padLen = payload[p++]!;
      if (flags & FLAG_PRIORITY) {
        if ((payload.readUInt32BE(p) & 0x7fffffff) === id) {
          // A stream error (§5.3.1), but the block must still be decoded: the HPACK table is the connection's.
          const s = this.streams.get(id);
          if (s) this.streamError(s, ERR_PROTOCOL, 'HEADERS making the stream depend on itself');
        }
        p += 5;
      }
      if (p + padLen > payload.length) {
        this.connectionError(ERR_PROTOCOL, 'HEADERS padding longer than the frame');
        return;
      }
      fragment = payload.subarray(p, payload.length - padLen);
    }
    this.block.push(Buffer.from(fragment));
    this.blockBytes += fragment.length;
    if (flags & FLAG_END_HEADERS) {
      const block = this.block.length === 1 ? this.block[0]! : Buffer.concat(this.block);
      this.block = [];
      this.blockOpen = false;
      this.onHeaderBlock(this.blockStream, block, this.blockEndStream);
    }
  }

  private settings(flags: number, payload: Buffer): void {
    if (flags & FLAG_ACK) {
      // We send one SETTINGS frame: one ACK is due, any other is noise.
      if (this.settingsAcked) this.glitch('SETTINGS ACKs');
      this.settingsAcked = true;
      return;
    }
    if (!this.glitch('SETTINGS frames')) return;
    for (let p = 0; p < payload.length; p += 6) {
      const key = payload.readUInt16BE(p);
      const value = payload.readUInt32BE(p + 2);
      const violation = settingViolation(key, value);
      if (violation) return this.connectionError(violation.code, violation.reason);
      if (key === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxStreams = value;
      else if (key === SETTINGS_MAX_FRAME_SIZE) this.peerMaxFrame = value;
      else if (key === SETTINGS_INITIAL_WINDOW_SIZE) {
        // The change applies to every open stream's window (§6.9.2); one taken past 2^31-1 is a connection error.
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) return this.connectionError(ERR_FLOW_CONTROL, `SETTINGS_INITIAL_WINDOW_SIZE ${value} takes stream ${s.id}'s window above 2^31-1`);
        }
      }
    }
    this.send(frame(FRAME_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
    for (const w of this.waiting.splice(0)) w();
  }

  private goaway(payload: Buffer): void {
    if (!this.glitch('GOAWAY frames')) return;
    // A server may send GOAWAY more than once, lowering the last stream id, never raising it (§6.8).
    const last = Math.min(this.goawayLastStream, payload.readUInt32BE(0) & 0x7fffffff);
    this.goawayLastStream = last;
    const code = payload.readUInt32BE(4);
    const debug = payload.subarray(8, 8 + 200).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
    this.goingAway = true;
    // Streams above `last` were never processed: the caller may send them again elsewhere.
    for (const s of [...this.streams.values()]) {
      if (s.id > last) {
        this.failStream(s, new BulkTransportError(`${this.origin} sent GOAWAY (code ${code}${debug ? `: ${debug}` : ''}) before processing the request`, true), -1);
      }
    }
    if (this.streams.size === 0) this.close();
  }

  private windowUpdate(id: number, payload: Buffer): void {
    if (!this.glitch('WINDOW_UPDATE frames')) return;
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) return this.connectionError(ERR_PROTOCOL, 'WINDOW_UPDATE of 0 on the connection');
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW) this.connectionError(ERR_FLOW_CONTROL, 'WINDOW_UPDATE takes the connection\'s window above 2^31-1');
      return;
    }
    const s = this.streams.get(id);
    if (!s) return; // a closed stream's (counted above)
    if (increment === 0) return this.streamError(s, ERR_PROTOCOL, 'WINDOW_UPDATE of 0');
    s.sendWindow += increment;
    if (s.sendWindow > MAX_WINDOW) this.streamError(s, ERR_FLOW_CONTROL, 'WINDOW_UPDATE takes the stream\'s window above 2^31-1');
  }

  private onHeaderBlock(id: number, block: Buffer, endStream: boolean): void {
    let fields: Array<[string, string]>;
    try {
      fields = this.hpack.decode(block, MAX_HEADER_LIST);
    } catch (e) {
      if (e instanceof HpackError && e.limit) this.connectionError(ERR_ENHANCE_YOUR_CALM, e.message);
      else this.connectionError(ERR_COMPRESSION, e instanceof HpackError ? e.message : String(e));
      return;
    }
    const s = this.streams.get(id);
    if (!s) {
      // Decoded anyway (the dynamic table must stay in step with the server's), and counted: nothing comes of it.
      this.glitch('HEADERS frames on closed streams');
      return;
    }
    try {
      if (s.answered) {
        // Trailers (§8.1): they end the stream, and carry no pseudo-header.
        if (!endStream) throw new MalformedResponse('trailers without END_STREAM (DATA may not follow trailers)');
        checkTrailers(fields);
        this.finishBody(s);
        return;
      }
      const head = responseHead(fields);
      if (head.status < 200) {
        // Informational: the final answer follows on the same stream.
        if (endStream) throw new MalformedResponse(`informational response (${head.status}) with END_STREAM`);
        this.glitch('informational responses');
        return;
      }
      s.answered = true;
      if (s.headersTimer) clearTimeout(s.headersTimer);
      s.lastDataAt = Date.now();
      if (!hasNoContent(head.status)) s.contentLength = head.contentLength;
      s.body = new BulkBody(this, s);
      s.resolve({ statusCode: head.status, headers: head.headers, body: s.body });
      if (endStream) this.finishBody(s);
    } catch (e) {
      if (!(e instanceof MalformedResponse)) throw e;
      this.malformed(s, e.message);
    }
  }
}

/** One HTTP/2 frame: 9-byte header (length, type, flags, stream) and payload. */
export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream, 5);
  payload.copy(b, 9);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

