/**
 * A raw HTTP/1.x server on node:net that answers the way naive, broken or hostile servers do, for the tests that
 * prove a peer's framing can fail a transfer but never the process. It serves the files of `root`; the first path
 * segment picks the behaviour: GET /<behaviour>/<file>. Every behaviour writes its whole answer at once and then
 * does what its name says (closes, resets, keeps the connection), so a client that is not reading at that moment
 * (back-pressure) meets the end of the connection with the body still unread.
 *
 *   http10            HTTP/1.0 200, no Content-Length: the body ends when the connection closes
 *   no-length-close   HTTP/1.1 200, neither Content-Length nor chunked, `Connection: close`: close-delimited
 *   close             HTTP/1.1 200 with Content-Length and `Connection: close`, closed after the body
 *   early-close       Content-Length of the whole file, half the body, then FIN
 *   early-reset       Content-Length of the whole file, half the body, then RST
 *   length-short      Content-Length 100 bytes short of the body (the body is longer than announced), keep-alive
 *   length-long       Content-Length 100 bytes more than the body, then FIN
 *   garbage-after     a correct answer followed by bytes that are no HTTP at all, keep-alive
 *   chunked-trailers  chunked body (uneven chunks) with trailer fields, keep-alive
 *   gzip              `Content-Encoding: gzip` (the gzip of the file) although nobody asked for it, keep-alive; byte
 *                     ranges of the gzip bytes (206), with a strong ETag, as for a stored .gz file labelled gzip
 *   gzip-close        the same with `Connection: close` and no Content-Length
 *   stall-half        Content-Length of the whole file, half the body, then silence with the connection open
 *
 * HEAD answers the status line and headers a GET would get (no body). Anything else, or a missing file: 404.
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join, normalize } from 'node:path';
import { gzipSync } from 'node:zlib';

export const NAIVE_BEHAVIOURS = [
  'http10', 'no-length-close', 'close', 'early-close', 'early-reset', 'length-short', 'length-long',
  'garbage-after', 'chunked-trailers', 'gzip', 'gzip-close', 'stall-half',
] as const;
export type NaiveBehaviour = (typeof NAIVE_BEHAVIOURS)[number];

export interface NaiveHttpServer {
  origin: string;
  port: number;
  /** Requests answered, by behaviour (GET and HEAD). */
  served: Map<string, number>;
  close(): Promise<void>;
}

export async function startNaiveHttpServer(root: string): Promise<NaiveHttpServer> {
  const served = new Map<string, number>();
  const sockets = new Set<Socket>();
  // One gzip per file: ranges of it must be pieces of the same bytes.
  const gzipped = new Map<string, Buffer>();
  const gzippedOnce = (path: string, body: Buffer): Buffer => {
    let z = gzipped.get(path);
    if (!z) gzipped.set(path, (z = gzipSync(body)));
    return z;
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        if (!answer(socket, head)) return;
      }
    });
  });

  /** Answers one request; false when the connection is finished (closed or reset). */
  const answer = (socket: Socket, head: string): boolean => {
    const [method = '', target = ''] = head.split('\r\n')[0]!.split(' ');
    const m = /^\/([a-z0-9-]+)\/(.+)$/.exec(target);
    const behaviour = m?.[1] as NaiveBehaviour | undefined;
    const path = m ? normalize(join(root, decodeURIComponent(m[2]!))) : '';
    let body: Buffer | undefined;
    if (behaviour && (NAIVE_BEHAVIOURS as readonly string[]).includes(behaviour) && path.startsWith(root + '/')) {
      try {
        if (statSync(path).isFile()) body = readFileSync(path);
      } catch { /* 404 below */ }
    }
    if ((method !== 'GET' && method !== 'HEAD') || !body || !behaviour) {
      socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    served.set(behaviour, (served.get(behaviour) ?? 0) + 1);
    const get = method === 'GET';
    const send = (headLines: string[], payload?: Buffer): void => {
      socket.write(headLines.join('\r\n') + '\r\n\r\n');
      if (get && payload) socket.write(payload);
    };
    switch (behaviour) {
      case 'http10':
        send(['HTTP/1.0 200 OK', 'Content-Type: application/octet-stream'], body);
        socket.end();
        return false;
      case 'no-length-close':
        send(['HTTP/1.1 200 OK', 'Connection: close'], body);
        socket.end();
        return false;
      case 'close':
        send(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`, 'Connection: close'], body);
        socket.end();
        return false;
      case 'early-close':
        send(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`], body.subarray(0, body.length >> 1));
        socket.end();
        return false;
      case 'early-reset':
        send(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`], body.subarray(0, body.length >> 1));
        // Let the half body leave before the RST, so the client has it unread when the reset arrives.
        setTimeout(() => socket.resetAndDestroy(), 20);
        return false;
      case 'length-short':
        send(['HTTP/1.1 200 OK', `Content-Length: ${Math.max(0, body.length - 100)}`], body);
        return true;
      case 'length-long':
        send(['HTTP/1.1 200 OK', `Content-Length: ${body.length + 100}`], body);
        socket.end();
        return false;
      case 'garbage-after':
        send(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`], Buffer.concat([body, Buffer.from('\x00\x01garbage that is not HTTP\r\n\r\n')]));
        return true;
      case 'chunked-trailers': {
        socket.write(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Trailer: X-Checksum, X-Note'].join('\r\n') + '\r\n\r\n');
        if (!get) return true;
        const parts: Buffer[] = [];
        for (let at = 0, n = 1; at < body.length; at += n, n = n * 3 + 7) {
          const c = body.subarray(at, at + n);
          parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
        }
        parts.push(Buffer.from('0\r\nX-Checksum: none\r\nX-Note: trailers follow the last chunk\r\n\r\n'));
        socket.write(Buffer.concat(parts));
        return true;
      }
      case 'gzip': {
        // Ranges of the encoded representation, as a server storing .gz files labelled gzip answers them.
        const z = gzippedOnce(path, body);
        const range = /^range:\s*bytes=(\d+)-(\d*)\s*$/im.exec(head);
        const coding = ['Content-Encoding: gzip', 'Accept-Ranges: bytes', 'ETag: "gz-1"', 'Content-Type: application/octet-stream'];
        if (range && Number(range[1]) < z.length) {
          const from = Number(range[1]);
          const to = Math.min(z.length - 1, range[2] ? Number(range[2]) : z.length - 1);
          send(['HTTP/1.1 206 Partial Content', `Content-Length: ${to - from + 1}`, `Content-Range: bytes ${from}-${to}/${z.length}`, ...coding], z.subarray(from, to + 1));
        } else {
          send(['HTTP/1.1 200 OK', `Content-Length: ${z.length}`, ...coding], z);
        }
        return true;
      }
      case 'stall-half':
        send(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`], body.subarray(0, body.length >> 1));
        return false;
      case 'gzip-close':
        send(['HTTP/1.1 200 OK', 'Content-Encoding: gzip', 'Connection: close'], gzippedOnce(path, body));
        socket.end();
        return false;
    }
  };

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    served,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
