/**
 * The storage endpoint as a Fastify plugin: WebDAV subset + HTTP-TPC over the port's namespace.
 * Register with `app.register(storagePlugin, { prefix: '/data', storage, ... })`.
 *
 * - Request bodies are never parsed by Fastify here: a catch-all content-type parser leaves the raw stream
 *   to the handlers (PUT streams it to disk, PROPFIND/MKCOL drain it).
 * - WebDAV methods are added with `addHttpMethod` only when the instance does not know them yet, so
 *   registering the plugin twice (or after someone else added them) is fine.
 * - Every method not implemented answers 405 with `Allow`, never 404 or 500; every error is problem+json.
 */
import { METHODS } from 'node:http';
import { constants } from 'node:http2';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { FileChecksums } from '../../services/storage/file-checksums.js';
import { RangedUploads } from '../../services/storage/ranged-upload.js';
import { AccessDecision } from './access-decision.js';
import { DAV_METHODS, handleDelete, handleMkcol, handleMove, handleOptions } from './dav-handlers.js';
import { handleGet } from './get-handler.js';
import { handlePropfind } from './propfind.js';
import { handlePut } from './put-handler.js';
import { handlePackedPut, isPackedUpload } from './packed-put.js';
import { handleCopy } from './tpc-copy.js';
import { handlePost } from './share-request.js';
import type { StorageContext } from './storage-context.js';
import { pathOf, problemFor, replyProblem, writeProblem } from '../problem.js';
import type { StorageEndpointOptions } from './storage-options.js';
import { markAcceptedFlow } from './flow-marking.js';

export type { StorageEndpointOptions, StorageAction, AuthorizeFn, TapeRestOptions, TpcOptions } from './storage-options.js';
export { registerTapeRest } from './tape-rest.js';

/**
 * Stand-in for methods Node's HTTP/2 layer lets through but Fastify cannot route (anything outside
 * http.METHODS, e.g. `FOO`): Fastify would send them to its "this is likely a fastify bug" 404 fallback.
 */
const UNROUTABLE_STAND_IN = 'UNLINK';
const kGuard = Symbol.for('cargoport.storage.unknown-method-guard');
const kOriginalMethod = Symbol.for('cargoport.storage.original-method');

/**
 * Rewrite unroutable methods to a stand-in before Fastify routes them, so the storage endpoint can answer
 * 405 (and other prefixes get an ordinary 404). Installed once per server; HTTP/1.1 never needs it because
 * Node's parser already rejects unknown methods with 400.
 */
function guardUnknownMethods(app: FastifyInstance): void {
  const server = app.server as unknown as { [kGuard]?: boolean; prependListener(ev: string, fn: (req: unknown) => void): void };
  if (server[kGuard]) return;
  server[kGuard] = true;
  const known = new Set(METHODS);
  server.prependListener('request', (req: unknown) => {
    const r = req as { method: string; [kOriginalMethod]?: string };
    if (!known.has(r.method)) {
      r[kOriginalMethod] = r.method;
      r.method = UNROUTABLE_STAND_IN;
    }
  });
}

/** Methods we answer 405 to explicitly (known to Node, not part of our subset). */
const REFUSED_METHODS = [UNROUTABLE_STAND_IN, 'PATCH', 'PROPPATCH', 'LOCK', 'UNLOCK', 'TRACE', 'SEARCH', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE'];

/** Add HTTP methods Fastify does not route by default, once per instance tree. */
export function ensureHttpMethods(app: FastifyInstance, methods: readonly string[]): void {
  const known = new Set(app.supportedMethods);
  for (const m of methods) {
    if (known.has(m)) continue;
    app.addHttpMethod(m, { hasBody: true });
  }
}

type Handler = (ctx: StorageContext, req: FastifyRequest, reply: FastifyReply) => Promise<void>;

export async function storagePlugin(app: FastifyInstance, opts: StorageEndpointOptions): Promise<void> {
  ensureHttpMethods(app, [...DAV_METHODS, 'POST', ...REFUSED_METHODS]);
  guardUnknownMethods(app);
  const prefix = app.prefix.endsWith('/') ? app.prefix.slice(0, -1) : app.prefix;
  const ranged = new RangedUploads(opts.storage, opts.rangedUploadIdleMs);
  const ctx: StorageContext = {
    storage: opts.storage,
    access: new AccessDecision(opts.publicPrefixes, opts.authorize),
    checksums: new FileChecksums(),
    ranged,
    prefix,
    opts,
  };
  app.addHook('onClose', async () => ranged.closeAll());

  // Leave every body unread: handlers consume request.raw themselves.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  app.setErrorHandler((err, request, reply) => {
    const p = problemFor(err);
    if (p.status >= 500) request.log.error({ err }, 'storage endpoint error');
    if (p.status === 405) reply.header('allow', DAV_METHODS.join(', '));
    // An error answered before the request body was read whole (a refused or stalled upload): the client may still
    // owe the body, and a stalled one never sends it. Over HTTP/2 the stream is closed after the answer
    // (RST_STREAM NO_ERROR, RFC 9113 §8.1) — Http2ServerRequest.destroy() leaves it half-open once its body was
    // read —; over HTTP/1.1 Node drains or closes the connection itself, except a stalled body: its socket goes.
    if (!request.raw.complete) {
      const stream = (request.raw as unknown as { stream?: { close(code?: number): void; destroyed: boolean } }).stream;
      const stalled = p.code === 'CARGO_ERR_UPLOAD_STALLED';
      const drop = () => {
        if (stream) {
          if (!stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
        } else if (stalled) {
          request.raw.socket?.destroy();
        }
      };
      reply.raw.once('finish', drop);
      setTimeout(drop, 1000).unref();
    }
    return writeProblem(reply, p, err);
  });

  const handlers: Record<string, Handler> = {
    GET: handleGet,
    HEAD: handleGet,
    // A PUT carrying X-Cargoport-Unpack is a packed upload (a tar unpacked into a collection).
    PUT: (ctx, req, reply) => (isPackedUpload(req) ? handlePackedPut(ctx, req, reply) : handlePut(ctx, req, reply)),
    DELETE: handleDelete,
    MKCOL: handleMkcol,
    MOVE: handleMove,
    COPY: handleCopy,
    PROPFIND: handlePropfind,
    OPTIONS: handleOptions,
    POST: handlePost,
  };
  const methodNotAllowed = async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('allow', DAV_METHODS.join(', '));
    return replyProblem(reply, { code: 'CARGO_ERR_METHOD_NOT_ALLOWED', detail: `the storage endpoint does not support ${req.method.slice(0, 32)}` });
  };
  const dispatch = async (request: FastifyRequest, reply: FastifyReply) => {
    const h = handlers[request.method];
    if (!h) return methodNotAllowed(request, reply);
    markAcceptedFlow(ctx, request);
    await h(ctx, request, reply);
    return reply;
  };
  const methods = [...DAV_METHODS, 'POST', ...REFUSED_METHODS] as HTTPMethods[];
  for (const url of ['/', '/*']) {
    app.route({ method: methods, url, handler: dispatch, exposeHeadRoute: false });
  }
  // Methods Node knows but nobody registered with Fastify end up in the not-found handler: 405 here too.
  app.setNotFoundHandler(async (request, reply) => {
    if (!DAV_METHODS.includes(request.method as (typeof DAV_METHODS)[number])) return methodNotAllowed(request, reply);
    return replyProblem(reply, { code: 'CARGO_ERR_NOT_FOUND', detail: `no such file or collection: ${pathOf(request.url, 200)}` });
  });
}
