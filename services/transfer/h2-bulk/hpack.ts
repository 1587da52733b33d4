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

/** A header block the decoder cannot accept: a COMPRESSION_ERROR for the whole connection (RFC 7540 §4.3). */
export class HpackError extends Error {}

/** Per-entry overhead counted against the table size (§4.1). */
const ENTRY_OVERHEAD = 32;

export class HpackDecoder {
  /** Newest first: dynamic index 62 is entries[0]. */
  private readonly entries: Array<readonly [string, string]> = [];
  private size = 0;
  private maxSize: number;

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE we announced (4096 unless we said otherwise). */
  constructor(private readonly maxTableSize = 4096) {
    this.maxSize = maxTableSize;
  }

  /** Decodes one complete header block into (name, value) pairs in order. */
  decode(block: Uint8Array): Array<[string, string]> {
    const out: Array<[string, string]> = [];
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
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        out.push([...this.entry(int(7))] as [string, string]);
        fieldSeen = true;
      } else if ((b & 0xc0) === 0x40) {
        const idx = int(6);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        const value = str();
        this.insert(name, value);
        out.push([name, value]);
        fieldSeen = true;
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only at the start of a block (§4.2), never above what we announced.
        if (fieldSeen) throw new HpackError('table size update after a header field');
        const newMax = int(5);
        if (newMax > this.maxTableSize) throw new HpackError(`table size update to ${newMax} above the announced ${this.maxTableSize}`);
        this.maxSize = newMax;
        this.evict(0);
      } else {
        // 0000xxxx without indexing, 0001xxxx never indexed: same shape, nothing stored.
        const idx = int(4);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        out.push([name, str()]);
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

function encodeString(out: number[], s: string): void {
  const bytes = Buffer.from(s, 'latin1');
  encodeInteger(out, bytes.length, 7, 0x00);
  for (const b of bytes) out.push(b);
}

/**
 * A GET request's header block: `:method GET` and `:scheme https` indexed, `:path` / `:authority` with indexed
 * names, the rest as literals without indexing (lower-case names, as HTTP/2 requires).
 */
export function encodeGetRequest(authority: string, path: string, headers: Record<string, string>): Buffer {
  const out: number[] = [0x82, 0x87];
  encodeInteger(out, 4, 4, 0x00); // :path, indexed name, without indexing
  encodeString(out, path);
  encodeInteger(out, 1, 4, 0x00); // :authority
  encodeString(out, authority);
  for (const [name, value] of Object.entries(headers)) {
    out.push(0x00);
    encodeString(out, name.toLowerCase());
    encodeString(out, value);
  }
  return Buffer.from(out);
}
