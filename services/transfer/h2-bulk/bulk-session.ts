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
 */
import { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { addressOptions } from '../connect/address-options.js';
import { connectRetryDelayMs, type ConnectionPacer } from '../../throttle/connection-pacer.js';
import { TransferError, TransferErrorCode } from '../transfer-errors.js';
import { encodeGetRequest, HpackDecoder, HpackError } from './hpack.js';
import { holdChunkPool, returnChunk, takeChunk } from './chunk-pool.js';

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
const FRAME_SETTINGS = 0x4;
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_PING = 0x6;
const FRAME_GOAWAY = 0x7;
const FRAME_WINDOW_UPDATE = 0x8;
const FRAME_CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

const ERR_NO_ERROR = 0x0;
const ERR_PROTOCOL = 0x1;
const ERR_FLOW_CONTROL = 0x3;
const ERR_FRAME_SIZE = 0x6;
const ERR_REFUSED_STREAM = 0x7;
const ERR_CANCEL = 0x8;
const ERR_COMPRESSION = 0x9;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** The largest frame we accept (our SETTINGS_MAX_FRAME_SIZE): nginx sends 8 KiB DATA frames, others 16 KiB. */
const MAX_FRAME_SIZE = 1 << 16;
/** The server's limit on the frames we send, until its SETTINGS say otherwise (RFC 9113 §6.5.2). */
const DEFAULT_PEER_MAX_FRAME = 16384;
const MAX_WINDOW = 2 ** 31 - 1;
/** A view goes to the body stream once this much is waiting, or after FLUSH_AFTER_MS on a slow stream. */
const PUSH_BYTES = 64 * 1024;
const FLUSH_AFTER_MS = 20;
const READ_BUFFER_BYTES = 256 * 1024;
/** Largest response header block accepted (all HEADERS + CONTINUATION fragments together). */
const MAX_HEADER_BLOCK = 256 * 1024;

export interface BulkSessionOptions {
  /** `https://host[:port]` */
  origin: string;
  ca?: string | Buffer | Array<string | Buffer>;
  rejectUnauthorized?: boolean;
  ciphers?: string;
  lookup?: LookupFunction;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Receive windows (bytes): per stream, and for the whole connection. */
  initialWindowSize: number;
  connectionWindowSize: number;
  pacer: ConnectionPacer;
  onSocket?: (socket: Socket, origin: string) => void;
  /** Close the connection after this long without a stream (undici's keep-alive default: 30 s). */
  idleTimeoutMs?: number;
}

export interface BulkResponse {
  statusCode: number;
  /** Lower-case names; repeated fields as arrays (undici's shape). */
  headers: Record<string, string | string[]>;
  body: Readable;
}

/** A failure of the transport; `unprocessed` when the server provably did not act on the request. */
export class BulkTransportError extends TransferError {
  constructor(message: string, readonly unprocessed: boolean, cause?: unknown, code: string = TransferErrorCode.network) {
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
  private socket?: TLSSocket;
  private readonly ready: Promise<void>;
  private readonly streams = new Map<number, Stream>();
  private nextStreamId = 1;
  private closed = false;
  private goingAway = false;
  private closeError?: Error;
  private peerMaxStreams = 100;
  private peerMaxFrame = DEFAULT_PEER_MAX_FRAME;
  private readonly waiting: Array<() => void> = [];
  private readonly hpack = new HpackDecoder();
  private connUngranted = 0;
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
  private control = Buffer.alloc(1024);
  private controlFill = 0;
  /** Header block being assembled (HEADERS + CONTINUATION) and its stream / END_STREAM flag. */
  private block: Buffer[] = [];
  private blockStream = 0;
  private blockEndStream = false;
  private blockBytes = 0;

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
    while (this.usable && this.streams.size >= this.peerMaxStreams) await new Promise<void>((r) => this.waiting.push(r));
    if (!this.usable) throw new BulkTransportError(`HTTP/2 connection to ${this.origin} is closing`, true, this.closeError);
    if (signal.aborted) throw signal.reason;
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    if (this.nextStreamId > MAX_WINDOW) this.goingAway = true;
    const url = new URL(this.origin);
    const block = encodeGetRequest(url.host, path, headers);
    return new Promise<BulkResponse>((resolve, reject) => {
      const s: Stream = {
        id, resolve, reject, answered: false, ended: false, ungranted: 0, blocked: false, lastDataAt: Date.now(),
        fill: 0, pushedTo: 0, pendingSince: 0, signal,
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

  // ---- connection ------------------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    const url = new URL(this.origin);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 443);
    try {
      for (let retry = 1; ; retry++) {
        const release = await this.o.pacer.turn(host);
        let retryIn: number | undefined;
        try {
          await this.connectOnce(host, port);
          return;
        } catch (e) {
          // An overflowing accept backlog answers with RST / refusal: paced retries, the pool's one policy.
          retryIn = connectRetryDelayMs((e as NodeJS.ErrnoException).code, retry);
          if (retryIn === undefined) throw e;
        } finally {
          release();
        }
        await new Promise((r) => setTimeout(r, retryIn));
      }
    } catch (e) {
      this.closed = true;
      this.closeError = e as Error;
      clearInterval(this.ticker);
      this.releaseChunkPool();
      throw e;
    }
  }

  /** One TLS connection attempt; rejects with the socket's own error (its `code` classifies it). */
  private connectOnce(host: string, port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const socket = tlsConnect({
        // http/1.1 offered too: a server without h2 then says so (→ NotHttp2Error, the undici path) instead of
        // refusing the handshake with a no_application_protocol alert.
        // SNI carries names only (RFC 6066 §3).
        host, port, servername: isIP(host) ? undefined : host, ALPNProtocols: ['h2', 'http/1.1'],
        ...(this.o.ca !== undefined ? { ca: this.o.ca } : {}),
        ...(this.o.rejectUnauthorized !== undefined ? { rejectUnauthorized: this.o.rejectUnauthorized } : {}),
        ...(this.o.ciphers !== undefined ? { ciphers: this.o.ciphers } : {}),
        ...addressOptions(this.o.lookup),
        onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Buffer) => this.onRead(n, buf) },
      } as unknown as ConnectionOptions);
      const timer = setTimeout(() => {
        const e = Object.assign(new Error(`connect to ${this.origin} timed out after ${this.o.connectTimeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' });
        socket.destroy(e);
      }, this.o.connectTimeoutMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        settled = true;
        if (socket.alpnProtocol !== 'h2') {
          socket.destroy();
          reject(new NotHttp2Error(socket.alpnProtocol));
          return;
        }
        this.socket = socket;
        this.remoteIp = socket.remoteAddress;
        socket.setNoDelay(true);
        this.o.onSocket?.(socket, this.origin);
        this.writePreface();
        resolve();
      });
      socket.on('error', (e) => {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          const code = (e as NodeJS.ErrnoException).code;
          reject(code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' ? new NotHttp2Error(false) : e);
          return;
        }
        this.shutdown(new BulkTransportError(`HTTP/2 connection to ${this.origin} failed: ${e.message}`, false, e), ERR_NO_ERROR);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          reject(Object.assign(new Error(`connection to ${this.origin} closed during the handshake`), { code: 'ECONNRESET' }));
          return;
        }
        if (socket === this.socket) this.shutdown(new BulkTransportError(`HTTP/2 connection to ${this.origin} closed`, false), ERR_NO_ERROR);
      });
    });
  }

  private writePreface(): void {
    const settings = Buffer.alloc(24);
    let p = 0;
    for (const [id, value] of [
      [SETTINGS_ENABLE_PUSH, 0], [SETTINGS_INITIAL_WINDOW_SIZE, Math.min(MAX_WINDOW, this.o.initialWindowSize)],
      [SETTINGS_MAX_FRAME_SIZE, MAX_FRAME_SIZE], [SETTINGS_HEADER_TABLE_SIZE, 4096],
    ] as const) {
      settings.writeUInt16BE(id, p);
      settings.writeUInt32BE(value, p + 2);
      p += 6;
    }
    const connIncrement = Math.min(MAX_WINDOW, this.o.connectionWindowSize) - 65_535;
    this.socket!.write(Buffer.concat([
      PREFACE, frame(FRAME_SETTINGS, 0, 0, settings),
      ...(connIncrement > 0 ? [frame(FRAME_WINDOW_UPDATE, 0, 0, u32(connIncrement))] : []),
    ]));
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
    this.socket!.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /** Fails every stream and closes the socket (GOAWAY with `code` first when the socket still writes). */
  private shutdown(err: Error, code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    clearInterval(this.ticker);
    this.releaseChunkPool();
    const s = this.socket;
    if (s && !s.destroyed && s.writable) {
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
      this.failStream(st, st.answered ? err : new BulkTransportError(err.message, true, err), -1);
    }
    for (const w of this.waiting.splice(0)) w();
  }

  private connectionError(code: number, message: string): void {
    this.shutdown(new BulkTransportError(`HTTP/2 protocol error from ${this.origin}: ${message}`, false), code);
  }

  // ---- streams ---------------------------------------------------------------------------------------------

  /**
   * Ends a stream with `err`: before its response the request promise rejects, after it the body errors.
   * `rstCode` ≥ 0 also resets the stream at the server (cancel, timeout); −1 when the server ended it.
   */
  private failStream(s: Stream, err: Error, rstCode: number): void {
    if (!this.streams.has(s.id)) return;
    this.forget(s);
    if (rstCode >= 0 && !s.ended && this.socket && !this.socket.destroyed) {
      this.socket.write(frame(FRAME_RST_STREAM, 0, s.id, u32(rstCode)));
    }
    if (!s.answered) s.reject(err);
    else if (!s.ended) s.body!.destroy(err);
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
    if (!s.ended && this.socket && !this.socket.destroyed) this.socket.write(frame(FRAME_RST_STREAM, 0, s.id, u32(ERR_CANCEL)));
  }

  /** The consumer wants more: grant the window held back while it was above its high-water mark. */
  onDemand(s: Stream): void {
    if (!s.blocked) return;
    s.blocked = false;
    this.grantStream(s, true);
  }

  private grantStream(s: Stream, force = false): void {
    if (s.ended || !this.streams.has(s.id)) return;
    if (s.ungranted === 0 || (!force && s.ungranted < this.o.initialWindowSize / 4)) return;
    this.socket!.write(frame(FRAME_WINDOW_UPDATE, 0, s.id, u32(s.ungranted)));
    s.ungranted = 0;
  }

  private grantConnection(received: number): void {
    this.connUngranted += received;
    if (this.connUngranted >= this.o.connectionWindowSize / 4) {
      if (this.socket && !this.socket.destroyed) this.socket.write(frame(FRAME_WINDOW_UPDATE, 0, 0, u32(this.connUngranted)));
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

  /** onread callback: `buf[0, n)` holds decrypted bytes; they must be consumed before returning. */
  private onRead(n: number, buf: Buffer): boolean {
    let i = 0;
    while (i < n && !this.closed) {
      if (this.headFill < 9) {
        const k = Math.min(9 - this.headFill, n - i);
        buf.copy(this.head, this.headFill, i, i + k);
        this.headFill += k;
        i += k;
        if (this.headFill < 9) break;
        if (!this.startFrame()) return true;
        if (this.remaining === 0) this.finishFrame();
        continue;
      }
      const k = Math.min(this.remaining, n - i);
      if (this.frameType === FRAME_DATA) this.dataBytes(buf, i, i + k);
      else this.controlBytes(buf, i, i + k);
      i += k;
      this.remaining -= k;
      if (this.remaining === 0) this.finishFrame();
    }
    // Views of what arrived in this read go out now if they waited long enough (slow links).
    if (!this.closed) for (const s of this.streams.values()) if (s.answered && s.fill > s.pushedTo) this.pushData(s, false);
    return true;
  }

  /** Parses the 9-byte frame header; false after a connection error. */
  private startFrame(): boolean {
    const h = this.head;
    this.frameLen = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    this.frameType = h[3]!;
    this.frameFlags = h[4]!;
    this.frameStream = h.readUInt32BE(5) & 0x7fffffff;
    this.remaining = this.frameLen;
    if (this.frameLen > MAX_FRAME_SIZE) {
      this.connectionError(ERR_FRAME_SIZE, `frame of ${this.frameLen} bytes above our limit ${MAX_FRAME_SIZE}`);
      return false;
    }
    if (this.block.length > 0 && this.frameType !== FRAME_CONTINUATION) {
      this.connectionError(ERR_PROTOCOL, 'header block interrupted by another frame');
      return false;
    }
    if (this.frameType === FRAME_DATA) {
      this.padPending = (this.frameFlags & FLAG_PADDED) !== 0;
      this.dataLeft = this.padPending ? -1 : this.frameLen;
    } else {
      if (this.control.length < this.frameLen) this.control = Buffer.alloc(this.frameLen);
      this.controlFill = 0;
    }
    return true;
  }

  private dataBytes(buf: Buffer, start: number, end: number): void {
    if (this.padPending) {
      const padLen = buf[start]!;
      this.padPending = false;
      this.dataLeft = this.frameLen - 1 - padLen;
      if (this.dataLeft < 0) return this.connectionError(ERR_PROTOCOL, 'DATA padding longer than the frame');
      start++;
    }
    const take = Math.min(this.dataLeft, end - start);
    if (take <= 0) return;
    this.dataLeft -= take;
    const s = this.streams.get(this.frameStream);
    if (s?.answered && !s.ended) {
      s.lastDataAt = Date.now();
      this.onData(s, buf, start, start + take);
    }
  }

  private controlBytes(buf: Buffer, start: number, end: number): void {
    buf.copy(this.control, this.controlFill, start, end);
    this.controlFill += end - start;
  }

  /** The current frame is complete. Returns true (the parser goes on with the next header). */
  private finishFrame(): boolean {
    this.headFill = 0;
    const { frameType: type, frameFlags: flags, frameStream: id, frameLen: len } = this;
    const payload = this.control.subarray(0, this.controlFill);
    switch (type) {
      case FRAME_DATA: {
        // Flow control counts the whole frame, padding included (RFC 9113 §6.9.1).
        this.grantConnection(len);
        const s = this.streams.get(id);
        if (!s) break; // reset or finished by us: nothing to deliver, the connection window is returned above
        if (!s.answered) {
          this.failStream(s, new BulkTransportError(`DATA before response headers on stream ${id}`, false), ERR_PROTOCOL);
          break;
        }
        s.ungranted += len;
        // Bytes received and not yet granted back can only exceed the stream window if the server ignores it.
        // Such a server would fill our memory while the consumer is slow: the stream ends here (RFC 9113 §6.9.1).
        if (s.ungranted > this.o.initialWindowSize) {
          this.failStream(s, new BulkTransportError(
            `HTTP/2 flow-control error from ${this.origin}: stream ${id} sent ${s.ungranted} bytes into a window of ${this.o.initialWindowSize}`, false), ERR_FLOW_CONTROL);
          break;
        }
        if (!s.blocked) this.grantStream(s);
        if (flags & FLAG_END_STREAM) this.endStream(s);
        break;
      }
      case FRAME_HEADERS:
      case FRAME_CONTINUATION: {
        let fragment = payload;
        if (type === FRAME_HEADERS) {
          let p = 0;
          let padLen = 0;
          if (flags & FLAG_PADDED) padLen = payload[p++] ?? 0;
          if (flags & FLAG_PRIORITY) p += 5;
          if (p + padLen > payload.length) {
            this.connectionError(ERR_PROTOCOL, 'HEADERS padding longer than the frame');
            return true;
          }
          fragment = payload.subarray(p, payload.length - padLen);
          this.blockStream = id;
          this.blockEndStream = (flags & FLAG_END_STREAM) !== 0;
        } else if (this.block.length === 0 || id !== this.blockStream) {
          this.connectionError(ERR_PROTOCOL, 'CONTINUATION without a header block in progress');
          return true;
        }
        this.block.push(Buffer.from(fragment));
        this.blockBytes += fragment.length;
        if (this.blockBytes > MAX_HEADER_BLOCK) {
          // A header block without end (CONTINUATION flood) would grow without bound.
          this.connectionError(ERR_PROTOCOL, `header block larger than ${MAX_HEADER_BLOCK} bytes`);
          return true;
        }
        if (flags & FLAG_END_HEADERS) {
          const block = Buffer.concat(this.block);
          this.block = [];
          this.blockBytes = 0;
          this.onHeaderBlock(this.blockStream, block, this.blockEndStream);
        }
        break;
      }
      case FRAME_SETTINGS:
        if (flags & FLAG_ACK) break;
        if (len % 6 !== 0) {
          this.connectionError(ERR_FRAME_SIZE, 'SETTINGS length not a multiple of 6');
          return true;
        }
        for (let p = 0; p < len; p += 6) {
          const key = payload.readUInt16BE(p);
          const value = payload.readUInt32BE(p + 2);
          if (key === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxStreams = value;
          else if (key === SETTINGS_MAX_FRAME_SIZE) this.peerMaxFrame = value;
        }
        this.socket!.write(frame(FRAME_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
        for (const w of this.waiting.splice(0)) w();
        break;
      case FRAME_PING:
        if (!(flags & FLAG_ACK)) this.socket!.write(frame(FRAME_PING, FLAG_ACK, 0, Buffer.from(payload)));
        break;
      case FRAME_GOAWAY: {
        const last = payload.readUInt32BE(0) & 0x7fffffff;
        const code = payload.readUInt32BE(4);
        this.goingAway = true;
        // Streams above `last` were never processed: the caller may send them again elsewhere.
        for (const s of [...this.streams.values()]) {
          if (s.id > last) this.failStream(s, new BulkTransportError(`${this.origin} sent GOAWAY (code ${code}) before processing the request`, true), -1);
        }
        if (this.streams.size === 0) this.close();
        break;
      }
      case FRAME_RST_STREAM: {
        const s = this.streams.get(id);
        if (!s) break;
        const code = payload.readUInt32BE(0);
        this.failStream(s, new BulkTransportError(`${this.origin} reset the stream (HTTP/2 error ${code})`, code === ERR_REFUSED_STREAM && !s.answered), -1);
        break;
      }
      case FRAME_PUSH_PROMISE:
        this.connectionError(ERR_PROTOCOL, 'PUSH_PROMISE although push is disabled');
        return true;
      case FRAME_WINDOW_UPDATE:
        if (len !== 4) this.connectionError(ERR_FRAME_SIZE, 'WINDOW_UPDATE of the wrong length');
        break; // we send no DATA: the server's windows do not concern us
      default:
        break; // PRIORITY and unknown extension frames are ignored (RFC 9113 §4.1, §5.5)
    }
    return true;
  }

  private onHeaderBlock(id: number, block: Buffer, endStream: boolean): void {
    let fields: Array<[string, string]>;
    try {
      fields = this.hpack.decode(block);
    } catch (e) {
      this.connectionError(ERR_COMPRESSION, e instanceof HpackError ? e.message : String(e));
      return;
    }
    const s = this.streams.get(id);
    if (!s) return; // decoded anyway: the dynamic table must stay in step with the server's
    if (s.answered) {
      // Trailers: nothing we use; they may end the stream.
      if (endStream) this.endStream(s);
      return;
    }
    const headers: Record<string, string | string[]> = {};
    let status = NaN;
    for (const [name, value] of fields) {
      if (name === ':status') {
        status = Number(value);
        continue;
      }
      if (name.startsWith(':')) continue;
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    if (!Number.isInteger(status)) {
      this.failStream(s, new BulkTransportError(`response on stream ${id} without a valid :status`, false), ERR_PROTOCOL);
      return;
    }
    if (status >= 100 && status < 200) return; // informational: the final answer follows
    s.answered = true;
    if (s.headersTimer) clearTimeout(s.headersTimer);
    s.lastDataAt = Date.now();
    s.body = new BulkBody(this, s);
    s.resolve({ statusCode: status, headers, body: s.body });
    if (endStream) this.endStream(s);
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

