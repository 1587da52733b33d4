/**
 * The port's own HTTP/2 receive path (services/transfer/h2-bulk) against a hostile server writing hand-made frames
 * (test/support/hostile-h2-server.ts). Each case is one attack: the attacks of issue 11 item 8 (each of which
 * crashed or froze the port, or published a wrong file, before this suite), and one or more of every class of
 * RFC 9113 §10 that concerns a client: §10.5 denial of service (SETTINGS / PING / RST_STREAM floods, large and
 * decompression-bomb header blocks, CONTINUATION floods, zero-window stalls, empty frames), §10.3 intermediary
 * encapsulation (CR, LF, NUL in fields), §10.6 compression (table size updates), §10.7 padding, plus the frame
 * rules of §4–§6 and the response rules of §8.
 *
 * Each attack runs through the transfer engine into a file:// destination (or on a session directly where it needs
 * two requests on one connection) while this process watches itself: the event loop must keep answering a timer,
 * the memory must stay within MEMORY_BOUND of where it started, the transfer must fail with the named cause (code
 * CARGO_ERR_PEER_PROTOCOL unless said otherwise) and no final file may appear. Floods must also end with the
 * connection closed by us (a reading server receives our GOAWAY with the code the RFC names).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { H2BulkSession, standaloneBulkOpen, type BulkResponse } from '../../services/transfer/h2-bulk/bulk-session.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { loopAnswered, monitorAttack } from '../support/attack-monitor.js';
import {
  Flag, FrameType, H2Error, Setting, answerEveryRequest, dataFrame, goawayFrame, h2Frame, headersFrame, hpackIndexed, hpackIndexedLiteral,
  hpackLiteral, hpackTableSize, responseBlock, settingsFrame, startHostileH2Server, u32, type HostileConnection,
} from '../support/hostile-h2-server.js';
import { tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

/**
 * Growth of RSS (and of heap + buffers) allowed during one attack: generous, the broken path grew by gigabytes. Not
 * a GC-forced figure: one second of a PING flood read at loopback speed leaves its read buffers as garbage until the
 * next collection, measured at 48–72 MiB here (the ACKs we owe are bounded by MAX_UNSENT_BYTES and the flood guard).
 */
const MEMORY_BOUND = 128 * 1024 * 1024;
const PEER_PROTOCOL = 'CARGO_ERR_PEER_PROTOCOL';
const BODY = Buffer.from('the bytes a well-behaved server sends\n');

type Script = (c: HostileConnection) => Promise<void>;

interface Attack {
  name: string;
  script: Script;
  /** The server's first frame (default: an empty SETTINGS frame; null: the script writes it). */
  settings?: Buffer | null;
  /** The error the transfer must end with, or 'ok' for what must still work (BODY published; a custom client succeeds). */
  expect: RegExp | 'ok';
  code?: string;
  /** We must close the connection (a connection error or a flood), with this GOAWAY code when the server reads. */
  closes?: boolean;
  goaway?: number;
  /** A client other than one engine pull (two requests on one session). */
  client?: (origin: string) => Promise<unknown>;
}

/** Answers every request with `frames(stream)` (the engine may ask again after a failure). */
const respond = (frames: (stream: number) => Buffer[]): Script => answerEveryRequest((stream) => frames(stream));

/** Waits for the first request, writes `first(stream)`, then floods `each(stream, i)` until we hang up. */
function flood(each: (stream: number, i: number) => Buffer, first: (stream: number) => Buffer[] = () => [], opts: { stopReading?: boolean } = {}): Script {
  return async (c) => {
    const r = await c.nextRequest();
    if (opts.stopReading) c.stopReading();
    if (!(await c.write(...first(r.stream)))) return;
    await c.flood((i) => each(r.stream, i));
  };
}

const ok = (stream: number, fields: Array<[string, string]> = [['content-length', String(BODY.length)]]): Buffer[] => [
  headersFrame(stream, responseBlock('200', fields)), dataFrame(stream, BODY, true),
];

/** A header block of `bytes` split into HEADERS + CONTINUATION frames of `frameBytes`. */
function fragmented(stream: number, block: Buffer, frameBytes: number, endStream = false): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < block.length; off += frameBytes) {
    const piece = block.subarray(off, off + frameBytes);
    const last = off + frameBytes >= block.length;
    out.push(off === 0
      ? h2Frame(FrameType.HEADERS, (last ? Flag.END_HEADERS : 0) | (endStream ? Flag.END_STREAM : 0), stream, piece)
      : h2Frame(FrameType.CONTINUATION, last ? Flag.END_HEADERS : 0, stream, piece));
  }
  return out;
}

function session(origin: string, headersTimeoutMs = 5000): H2BulkSession {
  return new H2BulkSession({
    origin, open: standaloneBulkOpen({ origin, ca: testTls().cert, connectTimeoutMs: 5000 }), headersTimeoutMs, bodyTimeoutMs: 5000,
    initialWindowSize: 4 * 1024 * 1024, connectionWindowSize: 16 * 1024 * 1024,
  });
}

async function readAll(res: BulkResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of res.body) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

const attacks: Attack[] = [
  // ---- issue 11 item 8: each crashed the process, froze it, or published a wrong file ------------------------
  {
    name: 'a GOAWAY frame with a 0-byte payload',
    script: respond(() => [h2Frame(FrameType.GOAWAY, 0, 0)]),
    expect: /0-byte GOAWAY frame/, closes: true,
  },
  {
    name: 'a RST_STREAM frame with a 0-byte payload',
    script: respond((s) => [h2Frame(FrameType.RST_STREAM, 0, s)]),
    expect: /0-byte RST_STREAM frame/, closes: true,
  },
  {
    name: 'endless empty CONTINUATION frames',
    script: flood((s) => h2Frame(FrameType.CONTINUATION, 0, s), (s) => [h2Frame(FrameType.HEADERS, 0, s, responseBlock('200'))]),
    expect: /CONTINUATION/, closes: true,
  },
  {
    name: 'SETTINGS_MAX_FRAME_SIZE = 0, then a second request on the connection',
    script: async (c) => {
      const r = await c.nextRequest();
      await c.write(settingsFrame([[Setting.MAX_FRAME_SIZE, 0]]), ...ok(r.stream));
      // The second request would be written in frames of at most 0 bytes.
      await respond(ok)(c);
    },
    client: async (origin) => {
      const s = session(origin);
      try {
        await readAll(await s.request('/a', {}, new AbortController().signal));
        await readAll(await s.request('/b', {}, new AbortController().signal));
      } finally {
        s.close();
      }
    },
    expect: /SETTINGS_MAX_FRAME_SIZE 0 /, closes: true,
  },
  {
    name: 'a PING flood from a server that does not read',
    script: flood(() => h2Frame(FrameType.PING, 0, 0, Buffer.alloc(8, 7)), () => [], { stopReading: true }),
    expect: /flood of PING/, closes: true,
  },
  {
    name: 'a SETTINGS flood from a server that does not read',
    script: flood(() => settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 100]]), () => [], { stopReading: true }),
    expect: /flood of SETTINGS/, closes: true,
  },
  {
    name: 'an HPACK block of 256 KiB of repeated indexed fields',
    script: async (c) => {
      const r = await c.nextRequest();
      const block = Buffer.concat([hpackLiteral(':status', '200'), Buffer.alloc(256 * 1024 - 64, hpackIndexed(15)[0])]);
      await c.write(...fragmented(r.stream, block, 65_536));
    },
    expect: /header list larger than/, closes: true,
  },
  {
    name: 'a second :status overriding the first (an error page stored as the file)',
    script: respond((s) => [headersFrame(s, Buffer.concat([hpackLiteral(':status', '503'), hpackLiteral(':status', '200')])), dataFrame(s, Buffer.from('<h1>503 Service Unavailable</h1>'), true)]),
    expect: /more than one :status/,
  },
  {
    name: 'an upper-case Content-Length and a truncated body',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['Content-Length', String(BODY.length * 2)]])), dataFrame(s, BODY, true)]),
    expect: /"Content-Length".*upper-case/,
  },
  {
    name: ':status " 2e2 "',
    script: respond((s) => [headersFrame(s, responseBlock(' 2e2 ')), dataFrame(s, BODY, true)]),
    expect: /:status " 2e2 " is not three digits/,
  },
  {
    name: 'DATA after a trailers block',
    script: respond((s) => [
      headersFrame(s, responseBlock('200')), dataFrame(s, BODY),
      headersFrame(s, Buffer.concat([hpackLiteral('x-trailer', 'yes')])), dataFrame(s, Buffer.from('appended after the trailers'), true),
    ]),
    expect: /trailers without END_STREAM/,
  },

  // ---- RFC 9113 §10.5: denial of service ----------------------------------------------------------------
  {
    name: 'a PING flood (the server reads: it gets GOAWAY ENHANCE_YOUR_CALM)',
    script: flood(() => h2Frame(FrameType.PING, 0, 0, Buffer.alloc(8))),
    expect: /flood of PING/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a SETTINGS flood (the server reads)',
    script: flood(() => h2Frame(FrameType.SETTINGS, 0, 0)),
    expect: /flood of SETTINGS/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a flood of SETTINGS ACKs (we sent one SETTINGS frame)',
    script: flood(() => h2Frame(FrameType.SETTINGS, Flag.ACK, 0)),
    expect: /flood of SETTINGS ACKs/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a SETTINGS frame with 10,000 entries',
    script: respond(() => [settingsFrame(Array.from({ length: 10_000 }, () => [Setting.MAX_CONCURRENT_STREAMS, 100] as [number, number]))]),
    expect: /SETTINGS frame with 10000 entries/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a RST_STREAM flood on a stream already reset',
    script: flood((s) => h2Frame(FrameType.RST_STREAM, 0, s, u32(H2Error.CANCEL)), (s) => [headersFrame(s, responseBlock('200')), h2Frame(FrameType.RST_STREAM, 0, s, u32(H2Error.CANCEL))]),
    client: async (origin) => {
      // Stream 1 is reset at once; stream 3 waits on the same connection while the resets of stream 1 pour in.
      const s = session(origin);
      try {
        const first = s.request('/a', {}, new AbortController().signal).then(readAll).catch(() => undefined);
        await readAll(await s.request('/b', {}, new AbortController().signal));
        await first;
      } finally {
        s.close();
      }
    },
    expect: /flood of RST_STREAM/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a flood of empty DATA frames',
    script: flood((s) => dataFrame(s, Buffer.alloc(0)), (s) => [headersFrame(s, responseBlock('200', [['content-length', '100']]))]),
    expect: /flood of empty DATA/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a flood of zero-length HEADERS frames',
    script: flood((s) => h2Frame(FrameType.HEADERS, Flag.END_HEADERS, s)),
    expect: /without :status/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a flood of PRIORITY frames',
    script: flood((s) => h2Frame(FrameType.PRIORITY, 0, s, Buffer.from([0, 0, 0, 0, 16]))),
    expect: /flood of PRIORITY/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a flood of WINDOW_UPDATE frames',
    script: flood(() => h2Frame(FrameType.WINDOW_UPDATE, 0, 0, u32(1))),
    expect: /flood of WINDOW_UPDATE/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a flood of frames of an unknown type',
    script: flood(() => h2Frame(0xfa, 0, 0, Buffer.alloc(10))),
    expect: /flood of frames of type 0xfa/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a flood of 1xx informational responses',
    script: flood((s) => headersFrame(s, responseBlock('103', [['link', '</a>; rel=preload']]))),
    expect: /flood of informational/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'a header list bomb: one 4 KiB field in the dynamic table, referenced 1,000 times',
    script: respond((s) => [headersFrame(s, Buffer.concat([
      hpackLiteral(':status', '200'), hpackIndexedLiteral('x-bomb', 'b'.repeat(4000)), Buffer.alloc(1000, hpackIndexed(62)[0]),
    ]))]),
    expect: /header list larger than/, closes: true,
  },
  {
    name: 'a header block in more CONTINUATION frames than any server needs',
    script: respond((s) => fragmented(s, Buffer.concat([hpackLiteral(':status', '200'), ...Array.from({ length: 40 }, (_, i) => hpackLiteral(`x-${i}`, 'v'))]), 10)),
    expect: /CONTINUATION frames/, closes: true,
  },
  {
    name: 'a zero-window stall: response headers, then no DATA',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['content-length', '100']]))]),
    expect: /no body bytes/, code: 'CARGO_ERR_TIMEOUT',
  },
  {
    name: 'the server closes its own window (INITIAL_WINDOW_SIZE 0): our requests carry no DATA and still go',
    settings: settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]),
    script: respond((s) => ok(s)),
    expect: 'ok',
  },

  // ---- §10.3: intermediary encapsulation ----------------------------------------------------------------
  {
    name: 'CR LF in a field value (a smuggled header line)',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['x-note', 'a\r\nset-cookie: b']])), dataFrame(s, BODY, true)]),
    expect: /value of "x-note"/,
  },
  {
    name: 'NUL in a field value',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['etag', '"a\0b"']])), dataFrame(s, BODY, true)]),
    expect: /value of "etag"/,
  },
  {
    name: 'a field value with leading white space',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['content-length', ` ${BODY.length}`]])), dataFrame(s, BODY, true)]),
    expect: /value of "content-length"/,
  },
  {
    name: 'a field name with a space and a colon',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['x bad:name', 'v']])), dataFrame(s, BODY, true)]),
    expect: /invalid field name "x bad:name"/,
  },
  {
    name: 'a connection-specific field (transfer-encoding)',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['transfer-encoding', 'chunked']])), dataFrame(s, BODY, true)]),
    expect: /connection-specific field "transfer-encoding"/,
  },

  // ---- §10.6 compression and HPACK rules ------------------------------------------------------------------
  {
    name: 'a dynamic table size update above the size we announced',
    script: respond((s) => [headersFrame(s, Buffer.concat([hpackTableSize(1 << 20), hpackLiteral(':status', '200')]), true)]),
    expect: /table size update to 1048576 above/, closes: true, goaway: H2Error.COMPRESSION_ERROR,
  },
  {
    name: 'a dynamic table size update after a field',
    script: respond((s) => [headersFrame(s, Buffer.concat([hpackLiteral(':status', '200'), hpackTableSize(0)]), true)]),
    expect: /table size update after a header field/, closes: true, goaway: H2Error.COMPRESSION_ERROR,
  },

  // ---- §10.7 padding ------------------------------------------------------------------------------------
  {
    name: 'a flood of padding-only DATA frames',
    script: flood((s) => h2Frame(FrameType.DATA, Flag.PADDED, s, Buffer.concat([Buffer.from([255]), Buffer.alloc(255)])), (s) => [headersFrame(s, responseBlock('200'))]),
    expect: /flood of empty DATA/, closes: true, goaway: H2Error.ENHANCE_YOUR_CALM,
  },
  {
    name: 'padding longer than the HEADERS frame',
    script: respond((s) => [h2Frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED, s, Buffer.concat([Buffer.from([200]), responseBlock('200')]))]),
    expect: /HEADERS padding/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'a PADDED DATA frame with no room for its pad length',
    script: respond((s) => [headersFrame(s, responseBlock('200')), h2Frame(FrameType.DATA, Flag.PADDED, s)]),
    expect: /0-byte DATA frame with PADDED/, closes: true, goaway: H2Error.FRAME_SIZE_ERROR,
  },
  {
    name: 'padded frames within the rules (what nghttpd sends) still work',
    script: respond((s) => [
      h2Frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED, s, Buffer.concat([Buffer.from([10]), responseBlock('200'), Buffer.alloc(10)])),
      h2Frame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, s, Buffer.concat([Buffer.from([255]), BODY, Buffer.alloc(255)])),
    ]),
    expect: 'ok',
  },

  // ---- §4–§6 frame rules -------------------------------------------------------------------------------
  {
    name: 'a frame above our SETTINGS_MAX_FRAME_SIZE',
    script: respond((s) => [dataFrame(s, Buffer.alloc(70_000))]),
    expect: /frame of 70000 bytes above our limit/, closes: true, goaway: H2Error.FRAME_SIZE_ERROR,
  },
  {
    name: 'a 7-byte GOAWAY frame',
    script: respond(() => [h2Frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(7))]),
    expect: /7-byte GOAWAY frame/, closes: true,
  },
  {
    name: 'a 7-byte PING frame',
    script: respond(() => [h2Frame(FrameType.PING, 0, 0, Buffer.alloc(7))]),
    expect: /7-byte PING frame/, closes: true, goaway: H2Error.FRAME_SIZE_ERROR,
  },
  {
    name: 'a SETTINGS frame of 5 bytes',
    script: respond(() => [h2Frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5))]),
    expect: /5-byte SETTINGS frame/, closes: true, goaway: H2Error.FRAME_SIZE_ERROR,
  },
  {
    name: 'a SETTINGS ACK with a payload',
    script: respond(() => [h2Frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(6))]),
    expect: /SETTINGS ACK with a payload/, closes: true, goaway: H2Error.FRAME_SIZE_ERROR,
  },
  {
    name: 'a 3-byte WINDOW_UPDATE frame',
    script: respond(() => [h2Frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))]),
    expect: /3-byte WINDOW_UPDATE frame/, closes: true, goaway: H2Error.FRAME_SIZE_ERROR,
  },
  {
    name: 'a 4-byte PRIORITY frame',
    script: respond((s) => [h2Frame(FrameType.PRIORITY, 0, s, Buffer.alloc(4))]),
    expect: /4-byte PRIORITY frame/,
  },
  {
    name: 'a WINDOW_UPDATE of 0 on the connection',
    script: respond(() => [h2Frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0))]),
    expect: /WINDOW_UPDATE of 0/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'a WINDOW_UPDATE overflowing the connection window',
    script: respond(() => [h2Frame(FrameType.WINDOW_UPDATE, 0, 0, u32(2 ** 31 - 1))]),
    expect: /window above 2\^31-1/, closes: true, goaway: H2Error.FLOW_CONTROL_ERROR,
  },
  {
    name: 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1',
    script: respond(() => [settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]])]),
    expect: /SETTINGS_INITIAL_WINDOW_SIZE 2147483648/, closes: true, goaway: H2Error.FLOW_CONTROL_ERROR,
  },
  {
    name: 'SETTINGS_ENABLE_PUSH = 1 from a server',
    script: respond(() => [settingsFrame([[Setting.ENABLE_PUSH, 1]])]),
    expect: /SETTINGS_ENABLE_PUSH 1/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'SETTINGS_MAX_FRAME_SIZE = 2^24',
    script: respond(() => [settingsFrame([[Setting.MAX_FRAME_SIZE, 2 ** 24]])]),
    expect: /SETTINGS_MAX_FRAME_SIZE 16777216 /, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'a SETTINGS frame on a stream',
    script: respond((s) => [h2Frame(FrameType.SETTINGS, 0, s)]),
    expect: /SETTINGS frame on stream 1/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'a PING frame on a stream',
    script: respond((s) => [h2Frame(FrameType.PING, 0, s, Buffer.alloc(8))]),
    expect: /PING frame on stream 1/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'a GOAWAY frame on a stream',
    script: respond((s) => [h2Frame(FrameType.GOAWAY, 0, s, Buffer.alloc(8))]),
    expect: /GOAWAY frame on stream 1/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'HEADERS on stream 0',
    script: respond(() => [headersFrame(0, responseBlock('200'), true)]),
    expect: /HEADERS frame on stream 0/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'DATA on stream 0',
    script: respond(() => [dataFrame(0, BODY, true)]),
    expect: /DATA frame on stream 0/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'RST_STREAM on stream 0',
    script: respond(() => [h2Frame(FrameType.RST_STREAM, 0, 0, u32(0))]),
    expect: /RST_STREAM frame on stream 0/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'HEADERS opening a stream with an even id (a push without PUSH_PROMISE)',
    script: respond(() => [headersFrame(2, responseBlock('200'), true)]),
    expect: /HEADERS frame on stream 2/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'DATA on an idle stream',
    script: respond(() => [dataFrame(99, BODY, true)]),
    expect: /DATA frame on idle stream 99/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'WINDOW_UPDATE on an idle stream',
    script: respond(() => [h2Frame(FrameType.WINDOW_UPDATE, 0, 77, u32(100))]),
    expect: /WINDOW_UPDATE frame on idle stream 77/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'PUSH_PROMISE although we disabled push',
    script: respond((s) => [h2Frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, s, Buffer.concat([u32(2), hpackIndexed(2), hpackIndexed(7), hpackIndexed(4)]))]),
    expect: /PUSH_PROMISE/, closes: true, goaway: H2Error.PROTOCOL_ERROR,
  },
  {
    name: 'DATA on a stream the server already ended',
    script: respond((s) => [...ok(s), dataFrame(s, Buffer.from('late'), true)]),
    // The body was complete when the late frame came: it is delivered, and the late frame closes the connection.
    client: async (origin) => {
      const s = session(origin);
      try {
        assert.deepEqual(await readAll(await s.request('/a', {}, new AbortController().signal)), BODY);
        while (s.usable) await new Promise((r) => setTimeout(r, 10));
      } finally {
        s.close();
      }
    },
    expect: 'ok', closes: true, goaway: H2Error.STREAM_CLOSED,
  },
  {
    name: 'frames of unknown types and PRIORITY frames around a response are ignored',
    script: respond((s) => [
      h2Frame(0xfa, 0, 0, Buffer.from('extension')), h2Frame(FrameType.PRIORITY, 0, s, Buffer.from([0, 0, 0, 0, 16])),
      headersFrame(s, responseBlock('200', [['content-length', String(BODY.length)]])), h2Frame(0xfb, 0xff, s, Buffer.alloc(100)),
      dataFrame(s, BODY, true),
    ]),
    expect: 'ok',
  },

  // ---- §8 response rules -------------------------------------------------------------------------------
  {
    name: 'a pseudo-header after a regular field',
    script: respond((s) => [headersFrame(s, Buffer.concat([hpackLiteral('server', 'x'), hpackLiteral(':status', '200')])), dataFrame(s, BODY, true)]),
    expect: /pseudo-header ":status" after a regular field/,
  },
  {
    name: 'a request pseudo-header in a response',
    script: respond((s) => [headersFrame(s, Buffer.concat([hpackLiteral(':status', '200'), hpackLiteral(':path', '/x')])), dataFrame(s, BODY, true)]),
    expect: /pseudo-header ":path" in a response/,
  },
  {
    name: 'a response without :status',
    script: respond((s) => [headersFrame(s, hpackLiteral('server', 'x')), dataFrame(s, BODY, true)]),
    expect: /without :status/,
  },
  {
    name: ':status 101 (not used in HTTP/2)',
    script: respond((s) => [headersFrame(s, responseBlock('101')), dataFrame(s, BODY, true)]),
    expect: /:status 101/,
  },
  {
    name: 'two Content-Length fields',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['content-length', String(BODY.length)], ['content-length', '5']])), dataFrame(s, BODY, true)]),
    expect: /more than one content-length/,
  },
  {
    name: 'a Content-Length that is not a number',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['content-length', '1e3']])), dataFrame(s, BODY, true)]),
    expect: /content-length "1e3"/,
  },
  {
    name: 'a body shorter than its Content-Length, ended',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['content-length', String(BODY.length + 10)]])), dataFrame(s, BODY, true)]),
    expect: new RegExp(`ended after ${BODY.length} of the ${BODY.length + 10} bytes its content-length announced`),
  },
  {
    name: 'a body longer than its Content-Length',
    script: respond((s) => [headersFrame(s, responseBlock('200', [['content-length', '5']])), dataFrame(s, BODY, true)]),
    expect: /more DATA than its content-length \(5\)/,
  },
  {
    name: 'a pseudo-header in trailers',
    script: respond((s) => [headersFrame(s, responseBlock('200')), dataFrame(s, BODY), headersFrame(s, hpackLiteral(':status', '200'), true)]),
    expect: /pseudo-header ":status" in trailers/,
  },
  {
    name: 'an informational response that ends the stream',
    script: respond((s) => [headersFrame(s, responseBlock('100'), true)]),
    expect: /informational response \(100\) with END_STREAM/,
  },
  {
    name: '103 Early Hints, then the response, then trailers: all accepted',
    script: respond((s) => [
      headersFrame(s, responseBlock('103', [['link', '</style.css>; rel=preload']])),
      headersFrame(s, responseBlock('200', [['content-length', String(BODY.length)]])), dataFrame(s, BODY),
      headersFrame(s, hpackLiteral('x-checksum', 'adler32=1'), true),
    ]),
    expect: 'ok',
  },
];

describe('the bulk receive path against a hostile HTTP/2 server', () => {
  const dst = tempDir('h2-hostile');
  before(async () => {
    await engine.reconfigure({ ca: testTls().cert, headersTimeoutMs: 5000, bodyTimeoutMs: 1500, bulkReceive: true });
  });
  after(async () => {
    await engine.close();
  });

  attacks.forEach((a, n) => {
    test(a.name, { timeout: 60_000 }, async (t) => {
      const srv = await startHostileH2Server(a.script, a.settings === undefined ? {} : { settings: a.settings });
      const out = join(dst, `file-${n}`);
      const monitor = monitorAttack();
      let error: (Error & { code?: string }) | undefined;
      try {
        await (a.client ?? ((origin: string) => engine.transfer(
          { source: `${origin}/file`, destination: pathToFileURL(out).href, verify: 'none', overwrite: false, connections: 1, streams: 1 },
          { signal: new AbortController().signal, gate: new PauseGate() },
        )))(srv.origin);
      } catch (e) {
        error = e as Error & { code?: string };
      }
      try {
        // A flood is over only when we have closed the connection it came on.
        if (a.closes) await Promise.all(srv.connections.map((c) => c.closed));
        const report = monitor.stop();
        const facts = `${report.elapsedMs.toFixed(0)} ms, ticks ${report.ticks}, longest gap ${report.maxGapMs.toFixed(0)} ms, RSS +${(report.rssGrowth / 2 ** 20).toFixed(1)} MiB, heap +${(report.heapGrowth / 2 ** 20).toFixed(1)} MiB`;
        t.diagnostic(facts);
        if (a.expect === 'ok') {
          assert.equal(error, undefined, `the transfer failed: ${error?.message}`);
          if (!a.client) assert.deepEqual(readFileSync(out), BODY);
        } else {
          assert.ok(error, 'the transfer must fail');
          assert.match(error.message, a.expect);
          assert.equal(error.code, a.code ?? PEER_PROTOCOL, error.message);
          assert.equal(existsSync(out), false, 'nothing is published');
        }
        if (a.goaway !== undefined) {
          const goaways = srv.connections.flatMap((c) => c.frames.filter((f) => f.type === FrameType.GOAWAY).map((f) => f.payload.readUInt32BE(4)));
          assert.ok(goaways.includes(a.goaway), `our GOAWAY codes: ${JSON.stringify(goaways)}, expected ${a.goaway}`);
        }
        // The event loop kept answering (a blocked loop shows as no ticks and one long gap) and memory stayed bounded.
        assert.ok(loopAnswered(report), facts);
        assert.ok(report.rssGrowth < MEMORY_BOUND && report.heapGrowth < MEMORY_BOUND, facts);
      } finally {
        await engine.close();
        await srv.close();
      }
    });
  });
});

describe('the bulk receive path: what stays confined, what we announce', () => {
  test('a malformed response is an error of its stream only: the other stream on the connection completes, the session stays usable', async () => {
    const srv = await startHostileH2Server(async (c) => {
      const bad = await c.nextRequest();
      const good = await c.nextRequest();
      await c.write(
        headersFrame(good.stream, responseBlock('200', [['content-length', String(BODY.length)]])),
        headersFrame(bad.stream, responseBlock('200', [['X-Upper', 'v']])),
        dataFrame(good.stream, BODY, true),
      );
      await respond(ok)(c);
    });
    const s = session(srv.origin);
    try {
      const bad = s.request('/bad', {}, new AbortController().signal);
      const good = s.request('/good', {}, new AbortController().signal);
      await assert.rejects(bad, (e: Error & { code?: string }) => /"X-Upper" has upper-case/.test(e.message) && e.code === PEER_PROTOCOL);
      assert.deepEqual(await readAll(await good), BODY);
      assert.ok(s.usable, 'the connection goes on');
      assert.deepEqual(await readAll(await s.request('/next', {}, new AbortController().signal)), BODY);
      const resets = srv.connections[0]!.frames.filter((f) => f.type === FrameType.RST_STREAM);
      assert.deepEqual(resets.map((f) => [f.stream, f.payload.readUInt32BE(0)]), [[1, H2Error.PROTOCOL_ERROR]], 'one RST_STREAM PROTOCOL_ERROR, for the bad stream');
    } finally {
      s.close();
      await srv.close();
    }
  });

  test('SETTINGS_MAX_CONCURRENT_STREAMS 0: a waiting request fails after the response-header timeout instead of waiting for ever', async () => {
    const srv = await startHostileH2Server(async (c) => {
      const r = await c.nextRequest();
      await c.write(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 0]]), headersFrame(r.stream, responseBlock('200')));
    });
    const s = session(srv.origin, 500);
    try {
      const first = await s.request('/a', {}, new AbortController().signal);
      assert.equal(first.statusCode, 200);
      await assert.rejects(s.request('/b', {}, new AbortController().signal),
        (e: Error & { code?: string }) => /allowed no new stream for 500 ms \(SETTINGS_MAX_CONCURRENT_STREAMS 0\)/.test(e.message) && e.code === 'CARGO_ERR_TIMEOUT');
      const aborted = new AbortController();
      const waiting = s.request('/c', {}, aborted.signal);
      aborted.abort(new Error('stop waiting'));
      await assert.rejects(waiting, /stop waiting/);
    } finally {
      s.close();
      await srv.close();
    }
  });

  test('our SETTINGS announce no push, our frame size and a header list limit of 64 KiB; credentials go out never indexed', async () => {
    const srv = await startHostileH2Server(respond(ok));
    const s = session(srv.origin);
    try {
      await readAll(await s.request('/a', { authorization: 'Bearer secret', 'x-plain': 'v' }, new AbortController().signal));
      const c = srv.connections[0]!;
      const settings = c.frames.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))!;
      const values = new Map<number, number>();
      for (let p = 0; p < settings.payload.length; p += 6) values.set(settings.payload.readUInt16BE(p), settings.payload.readUInt32BE(p + 2));
      assert.equal(values.get(Setting.ENABLE_PUSH), 0);
      assert.equal(values.get(Setting.MAX_FRAME_SIZE), 65_536);
      assert.equal(values.get(Setting.MAX_HEADER_LIST_SIZE), 65_536);
      const block = c.frames.find((f) => f.type === FrameType.HEADERS)!.payload;
      const at = block.indexOf('authorization');
      assert.equal(block[at - 2], 0x10, 'authorization as a literal never indexed (RFC 7541 §6.2.3)');
      assert.equal(block[block.indexOf('x-plain') - 2], 0x00, 'other fields as literals without indexing');
    } finally {
      s.close();
      await srv.close();
    }
  });
});
