/**
 * Parses a transfer source/destination URL into what the engine can act on: a local path or an HTTP(S)
 * origin + request path. Anything else is a fatal CARGO_ERR_UNSUPPORTED_SCHEME naming the field.
 */
import { fileURLToPath } from 'node:url';
import { TransferError, TransferErrorCode, redactUrl } from './transfer-errors.js';

export type Endpoint =
  | { kind: 'file'; path: string; url: string }
  | { kind: 'http'; origin: string; path: string; url: string };

export function parseEndpoint(raw: string, field: 'source' | 'destination'): Endpoint {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TransferError(TransferErrorCode.unsupportedScheme, `${field} is not a URL: ${redactUrl(raw)}`, {
      httpStatus: 400, field, retryable: false,
    });
  }
  if (u.protocol === 'file:') {
    return { kind: 'file', path: fileURLToPath(u), url: raw };
  }
  if (u.protocol === 'https:' || u.protocol === 'http:') {
    return { kind: 'http', origin: u.origin, path: `${u.pathname}${u.search}`, url: raw };
  }
  // davs:// / dav:// are WebDAV spellings of https:// / http:// (wlcg.md §3.1); accept them as such.
  if (u.protocol === 'davs:' || u.protocol === 'dav:') {
    const scheme = u.protocol === 'davs:' ? 'https:' : 'http:';
    const port = u.port ? `:${u.port}` : '';
    return { kind: 'http', origin: `${scheme}//${u.hostname}${port}`, path: `${u.pathname}${u.search}`, url: raw };
  }
  throw new TransferError(TransferErrorCode.unsupportedScheme, `${field} scheme ${u.protocol} is not supported`, {
    httpStatus: 400, field, retryable: false,
  });
}
