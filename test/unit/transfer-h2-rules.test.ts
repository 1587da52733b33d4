/**
 * The rules the bulk receive path applies to a server's HTTP/2 frames and responses, as pure functions: frame
 * lengths by type and stream-0 rules (RFC 9113 §6), SETTINGS ranges (§6.5.2), response and trailer fields (§8.1–§8.3),
 * and the flood budget (a token bucket like nghttp2's). The hostile-server integration suite drives the same rules
 * over real TLS; here every branch is walked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameFlag, FrameType, H2ErrorCode, MAX_SETTINGS_ENTRIES, SettingId, frameHeaderViolation, frameName, settingViolation,
} from '../../services/transfer/h2-bulk/frame-rules.js';
import { MalformedResponse, checkTrailers, hasNoContent, responseHead } from '../../services/transfer/h2-bulk/response-fields.js';
import { FloodGuard } from '../../services/transfer/h2-bulk/flood-guard.js';

const { DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION } = FrameType;

test('frame lengths by type: fixed sizes, SETTINGS in multiples of 6, GOAWAY at least 8, room for padding and priority', () => {
  const cases: Array<[number, number, number, number, number | undefined, RegExp?]> = [
    // type, flags, length, stream, expected code (undefined: accepted), reason
    [GOAWAY, 0, 0, 0, H2ErrorCode.FRAME_SIZE_ERROR, /0-byte GOAWAY frame \(at least 8 bytes required\)/],
    [GOAWAY, 0, 8, 0, undefined],
    [GOAWAY, 0, 1000, 0, undefined],
    [RST_STREAM, 0, 0, 1, H2ErrorCode.FRAME_SIZE_ERROR, /0-byte RST_STREAM frame/],
    [RST_STREAM, 0, 5, 1, H2ErrorCode.FRAME_SIZE_ERROR],
    [RST_STREAM, 0, 4, 1, undefined],
    [PING, 0, 7, 0, H2ErrorCode.FRAME_SIZE_ERROR, /7-byte PING frame/],
    [PING, FrameFlag.ACK, 9, 0, H2ErrorCode.FRAME_SIZE_ERROR],
    [PING, 0, 8, 0, undefined],
    [SETTINGS, 0, 5, 0, H2ErrorCode.FRAME_SIZE_ERROR, /5-byte SETTINGS frame \(a multiple of 6/],
    [SETTINGS, FrameFlag.ACK, 6, 0, H2ErrorCode.FRAME_SIZE_ERROR, /SETTINGS ACK with a payload/],
    [SETTINGS, FrameFlag.ACK, 0, 0, undefined],
    [SETTINGS, 0, 6 * MAX_SETTINGS_ENTRIES, 0, undefined],
    [SETTINGS, 0, 6 * (MAX_SETTINGS_ENTRIES + 1), 0, H2ErrorCode.ENHANCE_YOUR_CALM, /with 33 entries/],
    [WINDOW_UPDATE, 0, 3, 0, H2ErrorCode.FRAME_SIZE_ERROR],
    [WINDOW_UPDATE, 0, 4, 7, undefined],
    [DATA, FrameFlag.PADDED, 0, 1, H2ErrorCode.FRAME_SIZE_ERROR, /PADDED/],
    [DATA, FrameFlag.PADDED, 1, 1, undefined],
    [DATA, 0, 0, 1, undefined],
    [HEADERS, FrameFlag.PADDED | FrameFlag.PRIORITY, 5, 1, H2ErrorCode.FRAME_SIZE_ERROR, /6 bytes of pad length and priority/],
    [HEADERS, FrameFlag.PRIORITY, 5, 1, undefined],
    [HEADERS, 0, 0, 1, undefined],
    [PUSH_PROMISE, FrameFlag.END_HEADERS, 10, 1, H2ErrorCode.PROTOCOL_ERROR, /PUSH_PROMISE although we disabled push/],
    [0xfa, 0, 100, 3, undefined],
  ];
  for (const [type, flags, length, stream, code, reason] of cases) {
    const v = frameHeaderViolation(type, flags, length, stream);
    const what = `${frameName(type)} flags ${flags} length ${length} stream ${stream}`;
    assert.equal(v?.code, code, what);
    if (reason) assert.match(v!.reason, reason, what);
  }
  const priority = frameHeaderViolation(PRIORITY, 0, 4, 1);
  assert.equal(priority?.code, H2ErrorCode.FRAME_SIZE_ERROR);
  assert.equal(priority?.streamOnly, true, 'a PRIORITY of the wrong size is an error of its stream only (§6.3)');
  assert.equal(frameHeaderViolation(PRIORITY, 0, 5, 1), undefined);
});

test('stream 0 rules: connection frames only on 0, stream frames never on 0', () => {
  for (const type of [DATA, HEADERS, PRIORITY, RST_STREAM, CONTINUATION]) {
    assert.match(frameHeaderViolation(type, 0, type === PRIORITY ? 5 : type === RST_STREAM ? 4 : 0, 0)?.reason ?? '', /on stream 0$/, frameName(type));
  }
  for (const [type, len] of [[SETTINGS, 0], [PING, 8], [GOAWAY, 8]] as const) {
    const v = frameHeaderViolation(type, 0, len, 3);
    assert.equal(v?.code, H2ErrorCode.PROTOCOL_ERROR, frameName(type));
    assert.match(v!.reason, /on stream 3 \(it belongs on stream 0\)/);
  }
  assert.equal(frameHeaderViolation(WINDOW_UPDATE, 0, 4, 0), undefined, 'WINDOW_UPDATE goes on either');
});

test('SETTINGS values: MAX_FRAME_SIZE in [2^14, 2^24-1], INITIAL_WINDOW_SIZE up to 2^31-1, ENABLE_PUSH only 0 from a server', () => {
  const bad: Array<[number, number, number, RegExp]> = [
    [SettingId.MAX_FRAME_SIZE, 0, H2ErrorCode.PROTOCOL_ERROR, /SETTINGS_MAX_FRAME_SIZE 0 outside \[16384, 16777215\]/],
    [SettingId.MAX_FRAME_SIZE, 16_383, H2ErrorCode.PROTOCOL_ERROR, /16383/],
    [SettingId.MAX_FRAME_SIZE, 2 ** 24, H2ErrorCode.PROTOCOL_ERROR, /16777216/],
    [SettingId.INITIAL_WINDOW_SIZE, 2 ** 31, H2ErrorCode.FLOW_CONTROL_ERROR, /above 2\^31-1/],
    [SettingId.ENABLE_PUSH, 1, H2ErrorCode.PROTOCOL_ERROR, /SETTINGS_ENABLE_PUSH 1/],
    [SettingId.ENABLE_PUSH, 2, H2ErrorCode.PROTOCOL_ERROR, /SETTINGS_ENABLE_PUSH 2/],
  ];
  for (const [id, value, code, reason] of bad) {
    const v = settingViolation(id, value);
    assert.equal(v?.code, code, `${id}=${value}`);
    assert.match(v!.reason, reason);
  }
  for (const [id, value] of [[SettingId.MAX_FRAME_SIZE, 16_384], [SettingId.MAX_FRAME_SIZE, 2 ** 24 - 1], [SettingId.INITIAL_WINDOW_SIZE, 0],
    [SettingId.INITIAL_WINDOW_SIZE, 2 ** 31 - 1], [SettingId.ENABLE_PUSH, 0], [SettingId.MAX_CONCURRENT_STREAMS, 0],
    [SettingId.HEADER_TABLE_SIZE, 2 ** 32 - 1], [0x99, 12345]]) {
    assert.equal(settingViolation(id!, value!), undefined, `${id}=${value}`);
  }
});

test('a response head: one :status of three digits, first; lower-case token names; no CR LF NUL; no connection fields', () => {
  const head = responseHead([[':status', '206'], ['content-length', '10'], ['set-cookie', 'a'], ['set-cookie', 'b'], ['set-cookie', 'c'], ['te', 'trailers']]);
  assert.deepEqual(head, { status: 206, contentLength: 10, headers: { 'content-length': '10', 'set-cookie': ['a', 'b', 'c'], te: 'trailers' } });
  const refused: Array<[Array<[string, string]>, RegExp]> = [
    [[[':status', '200'], [':status', '500']], /more than one :status/],
    [[['server', 'x'], [':status', '200']], /pseudo-header ":status" after a regular field/],
    [[[':status', '200'], [':method', 'GET']], /pseudo-header ":method" in a response/],
    [[['server', 'x']], /response without :status/],
    [[[':status', ' 2e2 ']], /:status " 2e2 " is not three digits/],
    [[[':status', '2000']], /is not three digits/],
    [[[':status', '099']], /not a status code/],
    [[[':status', '600']], /not a status code/],
    [[[':status', '101']], /Switching Protocols/],
    [[[':status', '200'], ['Content-Length', '1']], /"Content-Length" has upper-case letters/],
    [[[':status', '200'], ['', 'v']], /invalid field name ""/],
    [[[':status', '200'], ['a b', 'v']], /invalid field name "a b"/],
    [[[':status', '200'], ['a:b', 'v']], /invalid field name "a:b"/],
    [[[':status', '200'], ['caf\u00e9', 'v']], /invalid field name/],
    [[[':status', '200'], ['x', 'a\nb']], /CR, LF or NUL in the value of "x"/],
    [[[':status', '200'], ['x', 'a\rb']], /CR, LF or NUL/],
    [[[':status', '200'], ['x', 'a\0b']], /CR, LF or NUL/],
    [[[':status', '200'], ['x', 'v ']], /white space in the value of "x"/],
    [[[':status', '200'], ['x', '\tv']], /white space/],
    [[[':status', '200'], ['connection', 'close']], /connection-specific field "connection"/],
    [[[':status', '200'], ['keep-alive', '5']], /connection-specific/],
    [[[':status', '200'], ['upgrade', 'h2c']], /connection-specific/],
    [[[':status', '200'], ['proxy-connection', 'x']], /connection-specific/],
    [[[':status', '200'], ['te', 'gzip']], /connection-specific field "te"/],
    [[[':status', '200'], ['content-length', '1'], ['content-length', '1']], /more than one content-length/],
    [[[':status', '200'], ['content-length', '1, 1']], /invalid content-length "1, 1"/],
    [[[':status', '200'], ['content-length', '-1']], /invalid content-length/],
    [[[':status', '200'], ['content-length', '99999999999999999999']], /invalid content-length/],
  ];
  for (const [fields, reason] of refused) {
    assert.throws(() => responseHead(fields), (e: Error) => e instanceof MalformedResponse && reason.test(e.message), JSON.stringify(fields));
  }
});

test('repeated fields are gathered in linear time (no array copied per repetition)', () => {
  const fields: Array<[string, string]> = [[':status', '200']];
  for (let i = 0; i < 200_000; i++) fields.push(['x-many', String(i)]);
  const head = responseHead(fields);
  const many = head.headers['x-many'] as string[];
  assert.equal(many.length, 200_000);
  assert.equal(many[199_999], '199999');
});

test('trailers: regular fields only, same field rules; statuses without content', () => {
  checkTrailers([['x-checksum', 'adler32=1'], ['grpc-status', '0']]);
  assert.throws(() => checkTrailers([[':status', '200']]), /pseudo-header ":status" in trailers/);
  assert.throws(() => checkTrailers([['X-Sum', '1']]), /upper-case/);
  assert.throws(() => checkTrailers([['x', 'a\r\nb: c']]), /CR, LF or NUL/);
  assert.deepEqual([204, 304, 100, 103, 200, 206, 404].map(hasNoContent), [true, true, true, true, false, false, false]);
});

test('flood budget: a burst at once, then the refill rate; spent → false', () => {
  let now = 0;
  const g = new FloodGuard(10, 100, () => now);
  for (let i = 0; i < 10; i++) assert.equal(g.take(), true, `burst ${i}`);
  assert.equal(g.take(), false, 'the 11th at once');
  now += 50; // 5 tokens back at 100/s
  for (let i = 0; i < 5; i++) assert.equal(g.take(), true, `refill ${i}`);
  assert.equal(g.take(), false);
  now += 60_000;
  for (let i = 0; i < 10; i++) assert.equal(g.take(), true, 'never more than the burst after a long pause');
  assert.equal(g.take(), false);
  assert.match(g.describe('PING frames'), /^flood of PING frames \(more than 10 at once or 100\/s sustained; ENHANCE_YOUR_CALM\)$/);
});
