/**
 * The rules of RFC 9113 a client checks on a server's frame before reading its payload (§4–§6): the length each
 * type must have, which frames belong on stream 0 and which never do, and the ranges of SETTINGS values. Pure
 * functions over numbers, so the receive path can refuse a 0-byte GOAWAY or a MAX_FRAME_SIZE of 0 before it
 * touches a byte of it, and a unit test can walk every rule.
 *
 * A violation names its HTTP/2 error code, a reason a person can act on ("server sent a 0-byte GOAWAY frame"), and
 * whether the RFC makes it an error of the stream only (the connection goes on) or of the whole connection.
 */

export const FrameType = {
  DATA: 0x0, HEADERS: 0x1, PRIORITY: 0x2, RST_STREAM: 0x3, SETTINGS: 0x4, PUSH_PROMISE: 0x5, PING: 0x6,
  GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9,
} as const;

export const FrameFlag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const SettingId = {
  HEADER_TABLE_SIZE: 0x1, ENABLE_PUSH: 0x2, MAX_CONCURRENT_STREAMS: 0x3, INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5, MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** HTTP/2 error codes (RFC 9113 §7). */
export const H2ErrorCode = {
  NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, INTERNAL_ERROR: 0x2, FLOW_CONTROL_ERROR: 0x3, STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6, REFUSED_STREAM: 0x7, CANCEL: 0x8, COMPRESSION_ERROR: 0x9, ENHANCE_YOUR_CALM: 0xb,
} as const;

const FRAME_NAMES = ['DATA', 'HEADERS', 'PRIORITY', 'RST_STREAM', 'SETTINGS', 'PUSH_PROMISE', 'PING', 'GOAWAY', 'WINDOW_UPDATE', 'CONTINUATION'];

/** `DATA`, `GOAWAY` …, or `type 0xfa` for a type RFC 9113 does not define. */
export function frameName(type: number): string {
  return FRAME_NAMES[type] ?? `type 0x${type.toString(16)}`;
}

/** The largest flow-control window and the largest stream id (RFC 9113 §6.9.1, §5.1.1). */
export const MAX_WINDOW = 2 ** 31 - 1;
/** SETTINGS_MAX_FRAME_SIZE must lie in [2^14, 2^24 - 1] (§6.5.2). */
export const MIN_MAX_FRAME_SIZE = 2 ** 14;
export const MAX_MAX_FRAME_SIZE = 2 ** 24 - 1;
/**
 * Entries accepted in one SETTINGS frame: six settings are defined, a server sends a handful; nghttp2 refuses more
 * than 32 since CVE-2020-11080 (a SETTINGS frame of thousands of entries as a CPU sink).
 */
export const MAX_SETTINGS_ENTRIES = 32;

export interface Violation {
  /** HTTP/2 error code for the RST_STREAM or GOAWAY we send. */
  code: number;
  reason: string;
  /** A stream error (RFC 9113 §5.4.2): only that stream ends. Otherwise the connection does. */
  streamOnly?: boolean;
}

const connection = (code: number, reason: string): Violation => ({ code, reason });

/**
 * The checks that need only the frame header: length against type (§6.1–§6.10), stream 0 or not, PUSH_PROMISE
 * (we announced SETTINGS_ENABLE_PUSH 0). Unknown types pass (§4.1: ignored). Undefined when the header is sound.
 */
export function frameHeaderViolation(type: number, flags: number, length: number, stream: number): Violation | undefined {
  const name = frameName(type);
  const onStream0 = (): Violation => connection(H2ErrorCode.PROTOCOL_ERROR, `server sent a ${name} frame on stream 0`);
  const notOnStream = (): Violation => connection(H2ErrorCode.PROTOCOL_ERROR, `server sent a ${name} frame on stream ${stream} (it belongs on stream 0)`);
  const size = (need: string, code: number = H2ErrorCode.FRAME_SIZE_ERROR): Violation =>
    connection(code, `server sent a ${length}-byte ${name} frame (${need})`);
  switch (type) {
    case FrameType.DATA:
      if (stream === 0) return onStream0();
      if (flags & FrameFlag.PADDED && length < 1) {
        return connection(H2ErrorCode.FRAME_SIZE_ERROR, `server sent a 0-byte DATA frame with PADDED set (no room for its pad length)`);
      }
      return undefined;
    case FrameType.HEADERS: {
      if (stream === 0) return onStream0();
      const fixed = (flags & FrameFlag.PADDED ? 1 : 0) + (flags & FrameFlag.PRIORITY ? 5 : 0);
      if (length < fixed) return size(`${fixed} bytes of pad length and priority fields required`);
      return undefined;
    }
    case FrameType.PRIORITY:
      if (stream === 0) return onStream0();
      if (length !== 5) return { ...size('5 bytes required'), streamOnly: true };
      return undefined;
    case FrameType.RST_STREAM:
      if (stream === 0) return onStream0();
      if (length !== 4) return size('4 bytes required');
      return undefined;
    case FrameType.SETTINGS:
      if (stream !== 0) return notOnStream();
      if (flags & FrameFlag.ACK) {
        return length === 0 ? undefined : connection(H2ErrorCode.FRAME_SIZE_ERROR, `server sent a SETTINGS ACK with a payload (${length} bytes)`);
      }
      if (length % 6 !== 0) return size('a multiple of 6 bytes required');
      if (length / 6 > MAX_SETTINGS_ENTRIES) {
        return connection(H2ErrorCode.ENHANCE_YOUR_CALM, `server sent a SETTINGS frame with ${length / 6} entries (at most ${MAX_SETTINGS_ENTRIES} accepted)`);
      }
      return undefined;
    case FrameType.PUSH_PROMISE:
      return connection(H2ErrorCode.PROTOCOL_ERROR, 'server sent PUSH_PROMISE although we disabled push (SETTINGS_ENABLE_PUSH 0)');
    case FrameType.PING:
      if (stream !== 0) return notOnStream();
      if (length !== 8) return size('8 bytes required');
      return undefined;
    case FrameType.GOAWAY:
      if (stream !== 0) return notOnStream();
      if (length < 8) return size('at least 8 bytes required');
      return undefined;
    case FrameType.WINDOW_UPDATE:
      if (length !== 4) return size('4 bytes required');
      return undefined;
    case FrameType.CONTINUATION:
      if (stream === 0) return onStream0();
      return undefined;
    default:
      return undefined;
  }
}

/** One SETTINGS entry's value against its range (§6.5.2); unknown settings are ignored (§6.5.2). */
export function settingViolation(id: number, value: number): Violation | undefined {
  switch (id) {
    case SettingId.ENABLE_PUSH:
      // A server may only repeat 0 (§8.4): any other value is a PROTOCOL_ERROR for a client.
      return value === 0 ? undefined : connection(H2ErrorCode.PROTOCOL_ERROR, `server sent SETTINGS_ENABLE_PUSH ${value} (a server may only send 0)`);
    case SettingId.INITIAL_WINDOW_SIZE:
      return value <= MAX_WINDOW ? undefined : connection(H2ErrorCode.FLOW_CONTROL_ERROR, `server sent SETTINGS_INITIAL_WINDOW_SIZE ${value} above 2^31-1`);
    case SettingId.MAX_FRAME_SIZE:
      return value >= MIN_MAX_FRAME_SIZE && value <= MAX_MAX_FRAME_SIZE ? undefined
        : connection(H2ErrorCode.PROTOCOL_ERROR, `server sent SETTINGS_MAX_FRAME_SIZE ${value} outside [${MIN_MAX_FRAME_SIZE}, ${MAX_MAX_FRAME_SIZE}]`);
    default:
      return undefined;
  }
}
