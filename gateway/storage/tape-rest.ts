/**
 * WLCG Tape REST API v1 (wlcg.md §4) over the port's storage: staging copies files from permanent (nearline)
 * storage into the buffer. Discovery at `/.well-known/wlcg-tape-rest-api` (host root), API under `/tape/v1`.
 * Status codes are the spec's exactly: 201 + Location + {requestId} for stage, 200 elsewhere; errors are
 * RFC 7807 problem+json. Poll answers carry `state` per file (never `onDisk` as well).
 * Request state lives in memory (services/storage/stage-requests.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseDecodedPath } from '../../services/storage/safe-path.js';
import { StageRequests, type StageRequest } from '../../services/storage/stage-requests.js';
import { CargoError, isCargoError, type ErrorCode } from '../../errors/cargo-error.js';
import { AccessDecision } from './access-decision.js';
import { pathOf, problemFor, replyProblem, writeProblem } from '../problem.js';
import { parseIsoDurationMs } from './iso-duration.js';
import type { AnyFastifyInstance, StorageAction, TapeRestOptions } from './storage-options.js';

export const TAPE_API_PREFIX = '/tape/v1';
const MAX_FILES = 10_000;

/** A body that is not JSON or not the spec's shape; the spec names its problem title "JSON Validation error". */
class JsonValidationError extends CargoError {
  constructor(detail: string, code: ErrorCode = 'CARGO_ERR_VALIDATION') {
    super(code, detail, { httpStatus: 400 });
    this.name = 'JsonValidationError';
  }
}

function validation(detail: string): never {
  throw new JsonValidationError(detail);
}

function pathList(body: unknown, key: 'paths'): string[] {
  const v = (body as Record<string, unknown> | undefined)?.[key];
  if (!Array.isArray(v) || v.some((p) => typeof p !== 'string')) validation(`"${key}" must be an array of strings`);
  return v as string[];
}

export async function registerTapeRest(app: AnyFastifyInstance, opts: TapeRestOptions): Promise<void> {
  const requests = await StageRequests.open(opts.storage, opts.requestTtlMs);
  app.addHook('onClose', async () => {
    await requests.close();
    await opts.storage.buffer.close();
  });
  const access = new AccessDecision([], opts.authorize);
  const prefix = (opts.storagePrefix ?? '').replace(/\/$/, '');

  /** Client path (URL path in the storage endpoint's namespace) → logical path; duplicate slashes collapse. */
  const toLogical = (p: string): string => {
    const collapsed = p.replace(/\/{2,}/g, '/');
    const inPrefix = prefix && (collapsed === prefix || collapsed.startsWith(prefix + '/'));
    return parseDecodedPath(inPrefix ? collapsed.slice(prefix.length) || '/' : collapsed).path;
  };
  const checkAll = async (req: FastifyRequest, action: StorageAction, paths: string[]) => {
    for (const p of paths) await access.check(req, action, toLogical(p));
  };
  const baseUrl = (req: FastifyRequest) => {
    if (opts.publicBaseUrl) return opts.publicBaseUrl.replace(/\/$/, '');
    const host = req.headers[':authority'] ?? req.headers['host'];
    return `https://${host}${TAPE_API_PREFIX}`;
  };

  app.get('/.well-known/wlcg-tape-rest-api', async (req, reply) => {
    return reply.header('content-type', 'application/json').send(
      JSON.stringify({
        sitename: opts.sitename,
        description: 'cargoport buffer staging (WLCG Tape REST API v1)',
        endpoints: [{ uri: baseUrl(req), version: 'v1', metadata: {} }],
      }),
    );
  });

  await app.register(
    async (api: AnyFastifyInstance) => {
      api.removeAllContentTypeParsers();
      api.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 16 * 1024 * 1024 }, (_req, body, done) => {
        const text = String(body);
        if (text.trim() === '') return done(null, undefined);
        try {
          done(null, JSON.parse(text));
        } catch {
          done(new JsonValidationError('request body is not valid JSON', 'CARGO_ERR_BAD_JSON'), undefined);
        }
      });
      api.setErrorHandler((err, request, reply) => {
        const p = problemFor(err);
        if (err instanceof JsonValidationError) p.title = 'JSON Validation error';
        if (p.status >= 500) request.log.error({ err }, 'tape rest error');
        return writeProblem(reply, p, err);
      });
      api.setNotFoundHandler((req, reply) => replyProblem(reply, { code: 'CARGO_ERR_NO_ROUTE', detail: `no Tape REST route for ${req.method} ${pathOf(req.url, 200)}` }));

      // gfal2 calls `{uri}/stage/` and friends with a trailing slash: serve both spellings.
      const both = (method: 'GET' | 'POST' | 'DELETE', url: string, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) => {
        api.route({ method, url, handler });
        api.route({ method, url: url + '/', handler });
      };

      const found = (id: string, reply: FastifyReply): StageRequest | undefined => {
        const r = requests.get(id);
        if (!r) replyProblem(reply, { code: 'CARGO_ERR_STAGE_REQUEST_NOT_FOUND', title: 'stage request not found', detail: `no stage request with id ${id}`, field: 'id' });
        return r;
      };

      both('POST', '/stage', async (req, reply) => {
        const body = req.body as { files?: unknown } | undefined;
        if (!body || !Array.isArray(body.files) || body.files.length === 0) validation('"files" must be a non-empty array');
        if (body.files.length > MAX_FILES) return replyProblem(reply, { code: 'CARGO_ERR_TOO_MANY_FILES', title: 'too many files', detail: `at most ${MAX_FILES} files per request`, field: 'files' });
        const files: Array<{ path: string; logical: string; error?: string; pinMs?: number }> = [];
        let pinMs = opts.storage.defaultPinMs;
        for (const f of body.files as unknown[]) {
          const o = f as { path?: unknown; diskLifetime?: unknown };
          if (!o || typeof o.path !== 'string') validation('every file needs a string "path"');
          if (o.diskLifetime !== undefined) {
            const ms = typeof o.diskLifetime === 'string' ? parseIsoDurationMs(o.diskLifetime) : undefined;
            if (ms === undefined) validation('"diskLifetime" must be an ISO 8601 duration such as PT1H');
            pinMs = Math.max(pinMs, ms);
          }
          try {
            files.push({ path: o.path, logical: toLogical(o.path) });
          } catch (e) {
            // A bad path is a per-file error visible when polling, not a rejection of the whole request.
            files.push({ path: o.path, logical: '/', error: isCargoError(e) ? e.message : 'invalid path' });
          }
        }
        for (const f of files) if (!f.error) await access.check(req, 'stage', f.logical);
        const created = await requests.create(files, pinMs);
        return reply
          .code(201)
          .header('location', `${baseUrl(req)}/stage/${created.id}`)
          .header('content-type', 'application/json')
          .send(JSON.stringify({ requestId: created.id }));
      });

      both('GET', '/stage/:id', async (req, reply) => {
        const r = found((req.params as { id: string }).id, reply);
        if (!r) return reply;
        await checkAll(req, 'poll', r.files.filter((f) => f.logical !== '/').map((f) => f.path));
        return reply.header('content-type', 'application/json').send(
          JSON.stringify({
            id: r.id,
            createdAt: r.createdAt,
            startedAt: r.startedAt,
            ...(r.completedAt !== undefined ? { completedAt: r.completedAt } : {}),
            files: r.files.map((f) => ({
              path: f.path,
              state: f.state,
              ...(f.error !== undefined ? { error: f.error } : {}),
              ...(f.startedAt !== undefined ? { startedAt: f.startedAt } : {}),
              ...(f.finishedAt !== undefined ? { finishedAt: f.finishedAt } : {}),
            })),
          }),
        );
      });

      both('POST', '/stage/:id/cancel', async (req, reply) => {
        const r = found((req.params as { id: string }).id, reply);
        if (!r) return reply;
        const paths = pathList(req.body, 'paths');
        await checkAll(req, 'stage', paths);
        const missing = await requests.cancel(r, paths);
        if (missing.length > 0) {
          return replyProblem(reply, { code: 'CARGO_ERR_VALIDATION', status: 400, title: 'File missing from stage request', detail: missing.join(', '), field: 'paths' });
        }
        return reply.code(200).send();
      });

      both('DELETE', '/stage/:id', async (req, reply) => {
        const r = found((req.params as { id: string }).id, reply);
        if (!r) return reply;
        await checkAll(req, 'stage', r.files.filter((f) => f.logical !== '/').map((f) => f.path));
        await requests.delete(r);
        return reply.code(200).send();
      });

      // gfal2 releases with the id "gfal2-placeholder-id" when it has none: release by path regardless of id.
      both('POST', '/release/:id', async (req, reply) => {
        const paths = pathList(req.body, 'paths');
        const logical = paths.map(toLogical);
        for (const p of logical) await access.check(req, 'stage', p);
        for (const p of logical) opts.storage.release(p);
        return reply.code(200).send();
      });

      both('POST', '/archiveinfo', async (req, reply) => {
        const paths = pathList(req.body, 'paths').slice(0, MAX_FILES);
        const out: Array<{ path: string; locality?: string; error?: string }> = [];
        for (const p of paths) {
          try {
            const logical = toLogical(p);
            await access.check(req, 'poll', logical);
            const st = await opts.storage.stat(logical);
            if (st.type !== 'file') out.push({ path: p, error: 'not a file' });
            else out.push({ path: p, locality: st.locality });
          } catch (e) {
            out.push({ path: p, error: isCargoError(e) ? e.message : 'cannot determine locality' });
          }
        }
        return reply.code(200).header('content-type', 'application/json').send(JSON.stringify(out));
      });
    },
    { prefix: TAPE_API_PREFIX },
  );
}
