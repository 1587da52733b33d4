/**
 * Parser for RFC 8941 Structured Field *dictionaries* — what RFC 9530's Repr-Digest and
 * Want-Repr-Digest are. Parsing is strict as the RFC requires (any syntax error fails the whole
 * field; callers then ignore or reject it). Only dictionaries are needed here, but members may hold
 * any bare item or an inner list, so those are parsed fully to be skipped correctly.
 */

export type SfBareItem =
  | { type: 'integer'; value: number }
  | { type: 'decimal'; value: number }
  | { type: 'string'; value: string }
  | { type: 'token'; value: string }
  | { type: 'bytes'; value: Buffer }
  | { type: 'boolean'; value: boolean };

export type SfParams = Map<string, SfBareItem>;
export interface SfItem {
  kind: 'item';
  value: SfBareItem;
  params: SfParams;
}
export interface SfInnerList {
  kind: 'inner-list';
  items: SfItem[];
  params: SfParams;
}
export type SfDictionary = Map<string, SfItem | SfInnerList>;

export class SfParseError extends Error {
  constructor(message: string, readonly position: number) {
    super(`${message} at offset ${position}`);
    this.name = 'SfParseError';
  }
}

/** Parse header value(s) as an SF dictionary. Several field lines are joined with ", " (RFC 8941 §4.2). */
export function parseSfDictionary(field: string | readonly string[]): SfDictionary {
  const text = typeof field === 'string' ? field : field.join(', ');
  const p = new Parser(text);
  p.skipSpaces();
  const dict = p.dictionary();
  p.skipSpaces();
  if (!p.atEnd()) p.fail('unexpected trailing characters');
  return dict;
}

const KEY_FIRST = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;
const TOKEN_FIRST = /[A-Za-z*]/;
// tchar (RFC 9110) plus ":" and "/".
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;
const BASE64_CHAR = /[A-Za-z0-9+/=]/;

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  atEnd(): boolean {
    return this.pos >= this.s.length;
  }
  fail(message: string): never {
    throw new SfParseError(message, this.pos);
  }
  private peek(): string {
    return this.s[this.pos] ?? '';
  }
  skipSpaces(): void {
    while (this.peek() === ' ') this.pos++;
  }
  private skipOws(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  dictionary(): SfDictionary {
    const dict: SfDictionary = new Map();
    while (!this.atEnd()) {
      const key = this.key();
      if (this.peek() === '=') {
        this.pos++;
        dict.set(key, this.itemOrInnerList());
      } else {
        dict.set(key, { kind: 'item', value: { type: 'boolean', value: true }, params: this.params() });
      }
      this.skipOws();
      if (this.atEnd()) return dict;
      if (this.peek() !== ',') this.fail('expected "," between dictionary members');
      this.pos++;
      this.skipOws();
      if (this.atEnd()) this.fail('trailing comma');
    }
    return dict;
  }

  private key(): string {
    if (!KEY_FIRST.test(this.peek())) this.fail('expected a key (lowercase letter or "*")');
    const start = this.pos++;
    while (KEY_CHAR.test(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }

  private itemOrInnerList(): SfItem | SfInnerList {
    if (this.peek() === '(') return this.innerList();
    return { kind: 'item', value: this.bareItem(), params: this.params() };
  }

  private innerList(): SfInnerList {
    this.pos++; // "("
    const items: SfItem[] = [];
    for (;;) {
      this.skipSpaces();
      if (this.peek() === ')') {
        this.pos++;
        return { kind: 'inner-list', items, params: this.params() };
      }
      if (this.atEnd()) this.fail('unterminated inner list');
      items.push({ kind: 'item', value: this.bareItem(), params: this.params() });
      const c = this.peek();
      if (c !== ' ' && c !== ')') this.fail('expected " " or ")" in inner list');
    }
  }

  private params(): SfParams {
    const params: SfParams = new Map();
    while (this.peek() === ';') {
      this.pos++;
      this.skipSpaces();
      const key = this.key();
      let value: SfBareItem = { type: 'boolean', value: true };
      if (this.peek() === '=') {
        this.pos++;
        value = this.bareItem();
      }
      params.set(key, value);
    }
    return params;
  }

  private bareItem(): SfBareItem {
    const c = this.peek();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (c === '"') return this.string();
    if (TOKEN_FIRST.test(c)) return this.token();
    if (c === ':') return this.bytes();
    if (c === '?') return this.boolean();
    return this.fail('expected an item');
  }

  private number(): SfBareItem {
    const start = this.pos;
    if (this.peek() === '-') this.pos++;
    const digitsStart = this.pos;
    while (this.peek() >= '0' && this.peek() <= '9') this.pos++;
    const intDigits = this.pos - digitsStart;
    if (intDigits === 0) this.fail('expected a digit');
    if (this.peek() !== '.') {
      if (intDigits > 15) this.fail('integer too long');
      return { type: 'integer', value: Number(this.s.slice(start, this.pos)) };
    }
    if (intDigits > 12) this.fail('decimal integer part too long');
    this.pos++;
    const fracStart = this.pos;
    while (this.peek() >= '0' && this.peek() <= '9') this.pos++;
    const fracDigits = this.pos - fracStart;
    if (fracDigits < 1 || fracDigits > 3) this.fail('decimal needs 1–3 fraction digits');
    return { type: 'decimal', value: Number(this.s.slice(start, this.pos)) };
  }

  private string(): SfBareItem {
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      if (this.atEnd()) this.fail('unterminated string');
      const c = this.s[this.pos++]!;
      if (c === '"') return { type: 'string', value: out };
      if (c === '\\') {
        const next = this.s[this.pos++];
        if (next !== '"' && next !== '\\') this.fail('bad escape in string');
        out += next;
        continue;
      }
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) this.fail('non-printable character in string');
      out += c;
    }
  }

  private token(): SfBareItem {
    const start = this.pos++;
    while (TOKEN_CHAR.test(this.peek())) this.pos++;
    return { type: 'token', value: this.s.slice(start, this.pos) };
  }

  private bytes(): SfBareItem {
    this.pos++; // opening colon
    const start = this.pos;
    while (BASE64_CHAR.test(this.peek())) this.pos++;
    if (this.peek() !== ':') this.fail('unterminated or invalid byte sequence');
    const b64 = this.s.slice(start, this.pos);
    this.pos++;
    const value = decodeBase64Strict(b64);
    if (!value) this.fail('invalid base64 in byte sequence');
    return { type: 'bytes', value };
  }

  private boolean(): SfBareItem {
    this.pos++; // "?"
    const c = this.peek();
    if (c !== '0' && c !== '1') this.fail('boolean must be ?0 or ?1');
    this.pos++;
    return { type: 'boolean', value: c === '1' };
  }
}

/**
 * Decode base64 only if it is well formed: valid alphabet, "=" only as final padding, and the
 * decoded bytes re-encode to the same text (padding optional). Node's decoder alone silently skips
 * garbage, which would let a corrupted digest through as a different value.
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const unpadded = text.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  if (text.length !== unpadded.length && text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(unpadded, 'base64');
  if (bytes.toString('base64').replace(/=+$/, '') !== unpadded) return undefined;
  return bytes;
}
