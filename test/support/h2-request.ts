/**
 * Minimal HTTP/2 client for storage tests: one session per call site, raw paths (no URL normalisation, so
 * `..` and `%2e%2e` reach the server exactly as written), bodies as Buffers or async chunk sources.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { testTls } from './tls.js';

export interface H2Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function h2Connect(origin: string): ClientHttp2Session {
  const s = connect(origin, { ca: testTls().cert });
  s.on('error', () => undefined);
  return s;
}

export function h2Request(
  session: ClientHttp2Session,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders = {},
  body?: Buffer | string,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let resHeaders: IncomingHttpHeaders = {};
    req.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** Start a PUT, send `firstBytes`, then reset the stream (client gone mid-body). Resolves after the reset. */
export async function h2AbortedPut(session: ClientHttp2Session, path: string, announced: number, firstBytes: Buffer): Promise<void> {
  const req = session.request({ ':method': 'PUT', ':path': path, 'content-length': String(announced) }, { endStream: false });
  req.on('error', () => undefined);
  await new Promise<void>((r) => req.write(firstBytes, () => r()));
  await new Promise((r) => setTimeout(r, 100));
  req.close(constants.NGHTTP2_CANCEL);
  await new Promise((r) => setTimeout(r, 100));
}
