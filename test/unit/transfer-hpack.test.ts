/**
 * HPACK for the bulk receive path: the Huffman code rebuilt from Appendix B's lengths equals the codes the RFC
 * prints, the RFC's own example blocks (Appendix C.4, C.6: Huffman, dynamic table, eviction) decode to the
 * printed headers, our GET encoder round-trips (credentials never indexed), malformed blocks are refused with
 * HpackError, and a decoded header list stops at its limit (decompression bombs, blocks of thousands of fields).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EOS, HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode } from '../../services/transfer/h2-bulk/hpack-huffman.js';
import { HpackDecoder, HpackError, encodeGetRequest } from '../../services/transfer/h2-bulk/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('canonical Huffman codes equal the ones RFC 7541 Appendix B prints', () => {
  const printed: Array<[number, number, number]> = [
    [0, 0x1ff8, 13], [9, 0xffffea, 24], [32, 0x14, 6], [48, 0x0, 5], [92, 0x7fff0, 19], [97, 0x3, 5],
    [116, 0x9, 5], [127, 0xffffffc, 28], [128, 0xfffe6, 20], [200, 0x3ffffe2, 26], [255, 0x3ffffee, 26], [EOS, 0x3fffffff, 30],
  ];
  for (const [sym, code, len] of printed) {
    assert.equal(HUFFMAN_LENGTHS[sym], len, `length of ${sym}`);
    assert.equal(HUFFMAN_CODES[sym], code, `code of ${sym}`);
  }
  assert.equal(HUFFMAN_CODES.length, 257);
});

test('RFC 7541 C.4.1: a request with Huffman-coded strings', () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex('828684418cf1e3c2e5f23a6ba0ab90f4ff')), [
    [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'],
  ]);
  // C.4.2: the authority now comes from the dynamic table (index 62).
  assert.deepEqual(d.decode(hex('828684be5886a8eb10649cbf')), [
    [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache'],
  ]);
});

test('RFC 7541 C.6.1–C.6.2: responses with a 256-octet table, evicting as they go', () => {
  const d = new HpackDecoder(256);
  assert.deepEqual(d.decode(hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
    2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`)), [
    [':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com'],
  ]);
  assert.deepEqual(d.decode(hex('4883 640e ff c1 c0 bf')), [
    [':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com'],
  ]);
});

test('our GET request block round-trips through the decoder', () => {
  const block = encodeGetRequest('storage.example:8443', '/data/' + 'x'.repeat(300), { range: 'bytes=5-', 'want-digest': 'adler32', 'X-Long': 'v'.repeat(1000) });
  assert.deepEqual(new HpackDecoder().decode(block), [
    [':method', 'GET'], [':scheme', 'https'], [':path', '/data/' + 'x'.repeat(300)], [':authority', 'storage.example:8443'],
    ['range', 'bytes=5-'], ['want-digest', 'adler32'], ['x-long', 'v'.repeat(1000)],
  ]);
});

test('malformed blocks are refused with HpackError', () => {
  const d = new HpackDecoder();
  assert.throws(() => d.decode(hex('be')), HpackError, 'dynamic index not in the table');
  assert.throws(() => d.decode(hex('410a6162')), HpackError, 'string longer than the block');
  assert.throws(() => d.decode(hex('3fe21f')), HpackError, 'table size above what we announced');
  assert.throws(() => d.decode(hex('82 20')), HpackError, 'size update after a field');
  assert.throws(() => d.decode(hex('ff')), HpackError, 'block ends inside an integer');
  // 'a' (00011) padded with zeros instead of EOS's ones.
  assert.throws(() => huffmanDecode(Buffer.from([0b00011000]), 0, 1), /padding/);
});

test('a decoded header list is bounded as SETTINGS_MAX_HEADER_LIST_SIZE counts it (name + value + 32 per field)', () => {
  // :status 200 (indexed, 7 + 3 + 32 = 42 bytes) then 'accept-charset' '' (static 15: 14 + 0 + 32 = 46 bytes) × n.
  const block = (n: number): Buffer => Buffer.concat([hex('88'), Buffer.alloc(n, 0x8f)]);
  assert.equal(new HpackDecoder().decode(block(10), 42 + 10 * 46).length, 11, 'exactly at the limit');
  assert.throws(() => new HpackDecoder().decode(block(11), 42 + 10 * 46), (e: HpackError) => e.limit && /header list larger than 502 bytes/.test(e.message));
  // A 4,000-byte value inserted once, referenced 1,000 times: a decompression bomb stops at the limit.
  const bomb = Buffer.concat([Buffer.from([0x40, 0x01, 0x78, 0x7f, 0xa1, 0x1e]), Buffer.alloc(4000, 0x62), Buffer.alloc(1000, 0xbe)]);
  assert.throws(() => new HpackDecoder().decode(bomb, 65_536), (e: HpackError) => e.limit);
  // 256 KiB of one-byte fields (the block that once froze the event loop for minutes): refused at the limit.
  assert.throws(() => new HpackDecoder().decode(block(256 * 1024), 65_536), (e: HpackError) => e.limit);
});

test('at most two table size updates at the start of a block (the smallest and the final size)', () => {
  assert.deepEqual(new HpackDecoder().decode(hex('20 3f e1 1f 88')), [[':status', '200']]);
  assert.throws(() => new HpackDecoder().decode(hex('20 20 20 88')), /more than 2 table size updates/);
});

test('credentials in our requests are literals never indexed (RFC 7541 §6.2.3), other fields literals without indexing', () => {
  const block = encodeGetRequest('h', '/p', { Authorization: 'Bearer t', cookie: 'c=1', 'x-a': 'v' });
  const at = (name: string): number => block[block.indexOf(name) - 2]!;
  assert.equal(at('authorization'), 0x10);
  assert.equal(at('cookie'), 0x10);
  assert.equal(at('x-a'), 0x00);
  assert.deepEqual(new HpackDecoder().decode(block).slice(4), [['authorization', 'Bearer t'], ['cookie', 'c=1'], ['x-a', 'v']]);
});
