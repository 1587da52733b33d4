/**
 * A response's decoded header list checked as RFC 9113 §8.1–§8.3 require, and turned into the shape callers use
 * (status, lower-case names with repeated fields as arrays, the announced content length). Anything malformed is
 * refused with the reason — the RFC makes a malformed response a stream error, and the port must never publish the
 * body of an answer it could not read unambiguously: a second `:status` (an error page stored as the file), an
 * upper-case `Content-Length` a lenient reader ignores (a truncated body passing), `:status " 2e2 "` read as 200.
 *
 * Linear in the number of fields: repeated names are appended to one array, never copied.
 */

export class MalformedResponse extends Error {}

export interface ResponseHead {
  status: number;
  /** Lower-case names; repeated fields as arrays (undici's shape). */
  headers: Record<string, string | string[]>;
  /** The one valid content-length, if the response has one. */
  contentLength?: number;
}

/** A token (RFC 9110 §5.6.2) in lower case: what an HTTP/2 field name may be (§8.2.1). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/** NUL, CR and LF are never allowed in a value; white space never at either end (§8.2.1). */
const BAD_VALUE_CHAR = /[\0\r\n]/;
const EDGE_WHITESPACE = /^[ \t]|[ \t]$/;
/** Fields HTTP/2 forbids (§8.2.2): they describe an HTTP/1.1 connection, and smuggle when passed on. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const STATUS = /^[0-9]{3}$/;
const DIGITS = /^[0-9]+$/;

function checkRegularField(name: string, value: string): void {
  if (!FIELD_NAME.test(name)) {
    if (/[A-Z]/.test(name)) throw new MalformedResponse(`field name ${JSON.stringify(name)} has upper-case letters (HTTP/2 field names are lower-case)`);
    throw new MalformedResponse(`invalid field name ${JSON.stringify(name)}`);
  }
  if (BAD_VALUE_CHAR.test(value)) throw new MalformedResponse(`CR, LF or NUL in the value of ${JSON.stringify(name)}`);
  if (EDGE_WHITESPACE.test(value)) throw new MalformedResponse(`leading or trailing white space in the value of ${JSON.stringify(name)}`);
  if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && value !== 'trailers')) {
    throw new MalformedResponse(`connection-specific field ${JSON.stringify(name)} in an HTTP/2 response`);
  }
}

/** The response head of a HEADERS block that opens a response (informational or final). */
export function responseHead(fields: ReadonlyArray<readonly [string, string]>): ResponseHead {
  const headers: Record<string, string | string[]> = {};
  let status: string | undefined;
  let regularSeen = false;
  let contentLength: string | undefined;
  for (const [name, value] of fields) {
    if (name.startsWith(':')) {
      if (regularSeen) throw new MalformedResponse(`pseudo-header ${JSON.stringify(name)} after a regular field`);
      if (name !== ':status') throw new MalformedResponse(`pseudo-header ${JSON.stringify(name)} in a response`);
      if (status !== undefined) throw new MalformedResponse('more than one :status');
      status = value;
      continue;
    }
    regularSeen = true;
    checkRegularField(name, value);
    if (name === 'content-length') {
      if (contentLength !== undefined) throw new MalformedResponse('more than one content-length field');
      contentLength = value;
    }
    const prev = headers[name];
    if (prev === undefined) headers[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[name] = [prev, value];
  }
  if (status === undefined) throw new MalformedResponse('response without :status');
  if (!STATUS.test(status)) throw new MalformedResponse(`:status ${JSON.stringify(status)} is not three digits`);
  const code = Number(status);
  if (code < 100 || code > 599) throw new MalformedResponse(`:status ${status} is not a status code (100–599)`);
  if (code === 101) throw new MalformedResponse(':status 101 (Switching Protocols) is not used in HTTP/2');
  const head: ResponseHead = { status: code, headers };
  if (contentLength !== undefined) {
    const n = DIGITS.test(contentLength) ? Number(contentLength) : NaN;
    if (!Number.isSafeInteger(n)) throw new MalformedResponse(`invalid content-length ${JSON.stringify(contentLength.slice(0, 40))}`);
    head.contentLength = n;
  }
  return head;
}

/** A trailers block (a HEADERS block after the response's): regular fields only (§8.1). */
export function checkTrailers(fields: ReadonlyArray<readonly [string, string]>): void {
  for (const [name, value] of fields) {
    if (name.startsWith(':')) throw new MalformedResponse(`pseudo-header ${JSON.stringify(name)} in trailers`);
    checkRegularField(name, value);
  }
}

/** Statuses whose response has no content whatever its content-length says (RFC 9110 §6.4.1, RFC 9113 §8.1.1). */
export function hasNoContent(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200);
}
