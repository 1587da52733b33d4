/**
 * A hostile (or merely broken) HTTP/2 server for tests of the port's receive path: a raw TLS server with ALPN h2
 * that writes hand-made frames, so a test can send what no real server library would (0-byte GOAWAY, CONTINUATION
 * floods, SETTINGS out of range, malformed header blocks, DATA after trailers …).
 *
 * Per connection a script gets a `HostileConnection`: it can wait for the client's requests (HEADERS frames,
 * decoded for their :path), write frames (awaiting the socket's drain, so a flood from this server costs the test
 * process nothing while the client stops reading), flood until the client hangs up, stop reading (a server that
 * ignores our ACKs), and see every frame the client sent (its GOAWAY and RST_STREAM codes).
 *
 * Frames and HPACK fields are built here independently of services/transfer/h2-bulk, byte by byte as RFC 9113 §4.1
 * and RFC 7541 §6 lay them out, so a bug in the code under test is not mirrored by its test server (only the RFC's
 * numbers are shared).
 */
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { FrameFlag as Flag, FrameType } from '../../services/transfer/h2-bulk/frame-rules.js';
import { HpackDecoder } from '../../services/transfer/h2-bulk/hpack.js';
import { testTls } from './tls.js';

// The RFC's numbers (types, flags, settings, error codes) are shared with the code under test; how frames and
// header blocks are laid out is not.
export { FrameType, FrameFlag as Flag, SettingId as Setting, H2ErrorCode as H2Error } from '../../services/transfer/h2-bulk/frame-rules.js';

/** One frame: a 9-byte header (24-bit length, type, flags, 31-bit stream id) and the payload, as given. */
export function h2Frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b[0] = (payload.length >>> 16) & 0xff;
  b[1] = (payload.length >>> 8) & 0xff;
  b[2] = payload.length & 0xff;
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream >>> 0, 5);
  payload.copy(b, 9);
  return b;
}

/** A SETTINGS frame with these (id, value) pairs. */
export function settingsFrame(pairs: Array<[number, number]>): Buffer {
  const p = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, value], i) => {
    p.writeUInt16BE(id, 6 * i);
    p.writeUInt32BE(value >>> 0, 6 * i + 2);
  });
  return h2Frame(FrameType.SETTINGS, 0, 0, p);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function goawayFrame(lastStream: number, code: number, debug = ''): Buffer {
  return h2Frame(FrameType.GOAWAY, 0, 0, Buffer.concat([u32(lastStream), u32(code), Buffer.from(debug)]));
}

// ---- HPACK (RFC 7541 §5.1, §6), no Huffman: field bytes go on the wire exactly as the test wrote them ----------

function hpackInt(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByteFlags | value];
  const out = [firstByteFlags | max];
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}

function hpackString(s: string): number[] {
  const bytes = Buffer.from(s, 'latin1');
  return [...hpackInt(bytes.length, 7, 0x00), ...bytes];
}

/** §6.1 indexed field (static table 1–61, dynamic from 62). */
export function hpackIndexed(index: number): Buffer {
  return Buffer.from(hpackInt(index, 7, 0x80));
}

/** §6.2.2 literal without indexing, new name: the name and value bytes exactly as given (upper case, CR LF …). */
export function hpackLiteral(name: string, value: string): Buffer {
  return Buffer.from([0x00, ...hpackString(name), ...hpackString(value)]);
}

/** §6.2.1 literal with incremental indexing, new name: the field is also added to the dynamic table. */
export function hpackIndexedLiteral(name: string, value: string): Buffer {
  return Buffer.from([0x40, ...hpackString(name), ...hpackString(value)]);
}

/** §6.3 dynamic table size update. */
export function hpackTableSize(size: number): Buffer {
  return Buffer.from(hpackInt(size, 5, 0x20));
}

/** A response header block: `:status` then the fields, all literals (names and values verbatim). */
export function responseBlock(status: string, fields: Array<[string, string]> = []): Buffer {
  return Buffer.concat([hpackLiteral(':status', status), ...fields.map(([n, v]) => hpackLiteral(n, v))]);
}

/** HEADERS frame(s) of a whole block in one frame with END_HEADERS (and END_STREAM when `end`). */
export function headersFrame(stream: number, block: Buffer, end = false): Buffer {
  return h2Frame(FrameType.HEADERS, Flag.END_HEADERS | (end ? Flag.END_STREAM : 0), stream, block);
}

export function dataFrame(stream: number, payload: Buffer, end = false): Buffer {
  return h2Frame(FrameType.DATA, end ? Flag.END_STREAM : 0, stream, payload);
}

// ---- the server ------------------------------------------------------------------------------------------

/** A script that answers every request of a connection with `frames(stream)`, until the connection closes. */
export function answerEveryRequest(frames: (stream: number, path: string) => Buffer[]): (c: HostileConnection) => Promise<void> {
  return async (c) => {
    for (;;) {
      const r = await Promise.race([c.nextRequest(), c.closed.then(() => null)]);
      if (!r) return;
      if (!(await c.write(...frames(r.stream, r.path)))) return;
    }
  };
}

export interface ClientFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export interface ClientRequest {
  stream: number;
  path: string;
  headers: Array<[string, string]>;
}

export interface HostileConnection {
  readonly socket: TLSSocket;
  /** Every frame the client sent on this connection, in order. */
  readonly frames: ClientFrame[];
  /** The client's next request (a HEADERS frame from it), in arrival order. */
  nextRequest(): Promise<ClientRequest>;
  /** Writes the frames; resolves once the socket takes more (drain), false once the connection is gone. */
  write(...frames: Buffer[]): Promise<boolean>;
  /**
   * Writes `make(i)` for i = 0, 1, … as fast as the client takes them, until the connection closes or `max`
   * frames went out; resolves with the count written.
   */
  flood(make: (i: number) => Buffer, max?: number): Promise<number>;
  /** Stops reading from the client (a server that never reads our ACKs or WINDOW_UPDATEs). */
  stopReading(): void;
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>;
  /** Whether the connection has closed. */
  readonly isClosed: boolean;
}

export interface HostileServerOptions {
  /** The server's first frame; an empty SETTINGS frame unless given (null: the script writes it). */
  settings?: Buffer | null;
}

export interface HostileServer {
  origin: string;
  url(path: string): string;
  /** Connections accepted so far. */
  readonly connections: HostileConnection[];
  close(): Promise<void>;
}

const PREFACE_BYTES = 24;

export async function startHostileH2Server(
  script: (c: HostileConnection) => void | Promise<void>, opts: HostileServerOptions = {},
): Promise<HostileServer> {
  const tls = testTls();
  const connections: HostileConnection[] = [];
  const sockets = new Set<TLSSocket>();
  const server = createTlsServer({ key: tls.key, cert: tls.cert, ALPNProtocols: ['h2'] }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const c = hostileConnection(socket);
    connections.push(c);
    void c.closed.then(() => sockets.delete(socket));
    const first = opts.settings === undefined ? h2Frame(FrameType.SETTINGS, 0, 0) : opts.settings;
    void (async () => {
      if (first) await c.write(first);
      await script(c);
    })().catch(() => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const origin = `https://localhost:${port}`;
  return {
    origin,
    url: (path) => `${origin}${path}`,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function hostileConnection(socket: TLSSocket): HostileConnection {
  const frames: ClientFrame[] = [];
  const requests: ClientRequest[] = [];
  const requestWaiters: Array<(r: ClientRequest) => void> = [];
  const hpack = new HpackDecoder();
  let buf: Buffer = Buffer.alloc(0);
  let prefaceSeen = false;
  let isClosed = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    isClosed = true;
    resolve();
  }));

  socket.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    if (!prefaceSeen) {
      if (buf.length < PREFACE_BYTES) return;
      prefaceSeen = true;
      buf = buf.subarray(PREFACE_BYTES);
    }
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const f: ClientFrame = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(buf.subarray(9, 9 + len)) };
      buf = buf.subarray(9 + len);
      frames.push(f);
      if (f.type === FrameType.HEADERS) {
        // The bulk session's requests fit one frame and carry no padding or priority.
        const headers = hpack.decode(f.payload);
        const req = { stream: f.stream, path: headers.find(([n]) => n === ':path')?.[1] ?? '', headers };
        const w = requestWaiters.shift();
        if (w) w(req);
        else requests.push(req);
      }
    }
  });

  const write = async (...out: Buffer[]): Promise<boolean> => {
    for (const f of out) {
      if (isClosed || socket.destroyed) return false;
      if (!socket.write(f)) {
        await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
      }
    }
    return !isClosed && !socket.destroyed;
  };

  return {
    socket,
    frames,
    nextRequest: () => {
      const r = requests.shift();
      if (r) return Promise.resolve(r);
      return new Promise((resolve) => requestWaiters.push(resolve));
    },
    write,
    flood: async (make, max = Number.MAX_SAFE_INTEGER) => {
      let i = 0;
      while (i < max && (await write(make(i)))) i++;
      return i;
    },
    stopReading: () => {
      socket.pause();
    },
    closed,
    get isClosed() {
      return isClosed;
    },
  };
}
