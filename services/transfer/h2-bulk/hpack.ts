/**
 * HPACK (RFC 7541) for the bulk receive path: a complete decoder (static and dynamic table, table size
 * updates, Huffman strings) for the response headers servers send, and the smallest correct encoder for our
 * own requests (literals without indexing, no Huffman: a GET's few headers, so the dynamic table never
 * needs to be kept in step with the server's).
 */
import { huffmanDecode, HuffmanError } from './hpack-huffman.js';

/** Appendix A: index 1..61. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/**
 * A header block the decoder cannot accept: a COMPRESSION_ERROR for the whole connection (RFC 9113 §4.3), or, with
 * `limit`, a header list larger than we accept (decoding stopped there, so the table is out of step with the
 * server's and the connection cannot go on either).
 */
export class HpackError extends Error {
  constructor(message: string, readonly limit = false) {
    super(message);
  }
}

/** Per-entry overhead counted against the table size (§4.1), and per field against a header list's size (RFC 9113 §6.5.2). */
export const ENTRY_OVERHEAD = 32;
/** Size updates allowed at the start of one block: the smallest size and the final one (§4.2). */
const MAX_SIZE_UPDATES = 2;

export class HpackDecoder {
  /** Newest first: dynamic index 62 is entries[0]. */
  private readonly entries: Array<readonly [string, string]> = [];
  private size = 0;
  private maxSize: number;

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE we announced (4096 unless we said otherwise). */
  constructor(private readonly maxTableSize = 4096) {
    this.maxSize = maxTableSize;
  }

  /**
   * Decodes one complete header block into (name, value) pairs in order. Stops with a `limit` HpackError once the
   * decoded list passes `maxListSize` (name + value + 32 bytes per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts):
   * a block of a few KiB that indexes one large table entry thousands of times decodes to megabytes.
   */
  decode(block: Uint8Array, maxListSize = Infinity): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    let listSize = 0;
    const emit = (name: string, value: string): void => {
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) throw new HpackError(`response header list larger than ${maxListSize} bytes (decoded, ${ENTRY_OVERHEAD} bytes counted per field)`, true);
      out.push([name, value]);
    };
    let pos = 0;
    const int = (prefixBits: number): number => {
      const r = decodeInteger(block, pos, prefixBits);
      pos = r.next;
      return r.value;
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError('header block ends inside a string');
      const huffman = (block[pos]! & 0x80) !== 0;
      const len = int(7);
      if (pos + len > block.length) throw new HpackError('string longer than the header block');
      let s: string;
      try {
        s = huffman ? huffmanDecode(block, pos, pos + len) : Buffer.from(block.buffer, block.byteOffset + pos, len).toString('latin1');
      } catch (e) {
        throw new HpackError(e instanceof HuffmanError ? e.message : String(e));
      }
      pos += len;
      return s;
    };
    let fieldSeen = false;
    let sizeUpdates = 0;
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const [name, value] = this.entry(int(7));
        emit(name, value);
        fieldSeen = true;
      } else if ((b & 0xc0) === 0x40) {
        const idx = int(6);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        const value = str();
        this.insert(name, value);
        emit(name, value);
        fieldSeen = true;
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only at the start of a block (§4.2), never above what we announced.
        if (fieldSeen) throw new HpackError('table size update after a header field');
        if (++sizeUpdates > MAX_SIZE_UPDATES) throw new HpackError(`more than ${MAX_SIZE_UPDATES} table size updates at the start of a block`);
        const newMax = int(5);
        if (newMax > this.maxTableSize) throw new HpackError(`table size update to ${newMax} above the announced ${this.maxTableSize}`);
        this.maxSize = newMax;
        this.evict(0);
      } else {
        // 0000xxxx without indexing, 0001xxxx never indexed: same shape, nothing stored.
        const idx = int(4);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        emit(name, str());
        fieldSeen = true;
      }
    }
    return out;
  }

  private entry(index: number): readonly [string, string] {
    if (index >= 1 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const e = this.entries[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`header index ${index} is not in the table`);
    return e;
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.maxSize) {
      // An entry larger than the table empties it and is not stored (§4.4).
      this.entries.length = 0;
      this.size = 0;
      return;
    }
    this.evict(size);
    this.entries.unshift([name, value]);
    this.size += size;
  }

  /** Evicts oldest entries until `incoming` more octets fit. */
  private evict(incoming: number): void {
    while (this.size + incoming > this.maxSize && this.entries.length > 0) {
      const [n, v] = this.entries.pop()!;
      this.size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

/** §5.1 integer with an N-bit prefix starting at `pos`. */
export function decodeInteger(buf: Uint8Array, pos: number, prefixBits: number): { value: number; next: number } {
  if (pos >= buf.length) throw new HpackError('header block ends inside an integer');
  const max = (1 << prefixBits) - 1;
  let value = buf[pos]! & max;
  pos++;
  if (value < max) return { value, next: pos };
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new HpackError('header block ends inside an integer');
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
    if (shift > 28) throw new HpackError('integer too large');
  }
  return { value, next: pos };
}

/** §5.1 integer into `out` with the first byte's high bits set to `flags`. */
function encodeInteger(out: number[], value: number, prefixBits: number, flags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/**
 * Credentials go out as literals never indexed (RFC 7541 §7.1.3): an intermediary re-encoding the request may not
 * put them in a compression table where a guessing attack (RFC 9113 §10.6) could probe them.
 */
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie']);

function encodeString(out: number[], s: string): void {
  const bytes = Buffer.from(s, 'latin1');
  encodeInteger(out, bytes.length, 7, 0x00);
  for (const b of bytes) out.push(b);
}

/**
 * A GET request's header block: `:method GET` and `:scheme https` indexed, `:path` / `:authority` with indexed
 * names, the rest as literals without indexing — credentials never indexed (lower-case names, as HTTP/2 requires).
 */
export function encodeGetRequest(authority: string, path: string, headers: Record<string, string>): Buffer {
  const out: number[] = [0x82, 0x87];
  encodeInteger(out, 4, 4, 0x00); // :path, indexed name, without indexing
  encodeString(out, path);
  encodeInteger(out, 1, 4, 0x00); // :authority
  encodeString(out, authority);
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    out.push(SENSITIVE.has(lower) ? 0x10 : 0x00);
    encodeString(out, lower);
    encodeString(out, value);
  }
  return Buffer.from(out);
}
