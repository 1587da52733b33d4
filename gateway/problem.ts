/**
 * The one RFC 7807 problem+json writer of the port: the REST API, the admin API, the health routes, the storage
 * endpoint (WebDAV, HTTP-TPC) and Tape REST all answer errors through it, in one shape:
 *
 *     { type: "urn:cargoport:error:<code>", title, status, detail, code, field?, instance }
 *
 * `code` is always a catalogue code (errors/catalogue.ts), `title` the status text unless a protocol fixes it (WLCG
 * Tape REST names its titles), `detail` names the cause, `field` the offending field or header. Domain errors keep
 * their code and field; Fastify's own errors (validation, JSON syntax, body size, content type) are translated so the
 * client learns which field or what about the request is wrong. Never a bare 500 for bad input.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isCargoError } from '../errors/cargo-error.js';
import { errorCatalogue, type ErrorCode } from '../errors/catalogue.js';
import { addChallenge } from './auth.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  field?: string;
  instance?: string;
  /** The setting a request ran into and its value (413, 429). */
  limit?: string;
  max?: number;
}

/** What a handler that answers an error itself (without throwing) says; the rest is filled in by `problemOf`. */
export interface ProblemInit {
  code: ErrorCode;
  detail: string;
  /** Defaults to the catalogue's status of `code`. */
  status?: number;
  /** Defaults to the status text (404 → "Not Found"). */
  title?: string;
  field?: string;
  limit?: string;
  max?: number;
}

/** Fastify's own request errors, renamed into our stable code space. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'CARGO_ERR_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'CARGO_ERR_BAD_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'CARGO_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'CARGO_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'CARGO_ERR_BAD_CONTENT_LENGTH',
};

/** For an error that is not ours and has no known code: the catalogue code its status means. */
const STATUS_CODES_FALLBACK: Record<number, ErrorCode> = {
  404: 'CARGO_ERR_NO_ROUTE',
  405: 'CARGO_ERR_METHOD_NOT_ALLOWED',
  413: 'CARGO_ERR_BODY_TOO_LARGE',
  415: 'CARGO_ERR_UNSUPPORTED_MEDIA_TYPE',
  416: 'CARGO_ERR_BAD_RANGE',
};

/** `/files/3/source` → `files[3].source` */
export function fieldFromPointer(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

export function problemOf(init: ProblemInit): Problem {
  const status = init.status ?? errorCatalogue[init.code].status;
  return {
    type: `urn:cargoport:error:${init.code}`,
    title: init.title ?? STATUS_CODES[status] ?? 'Error',
    status,
    detail: init.detail,
    code: init.code,
    ...(init.field ? { field: init.field } : {}),
    ...(init.limit ? { limit: init.limit, max: init.max } : {}),
  };
}

/** The problem a thrown error becomes. */
export function problemFor(err: unknown): Problem {
  if (isCargoError(err)) {
    return problemOf({ code: err.code, status: err.httpStatus, detail: err.message, field: err.field, ...(err.limit ? { limit: err.limit.key, max: err.limit.max } : {}) });
  }
  const fe = err as FastifyError & { validation?: Array<{ instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }>; validationContext?: string };
  if (fe?.validation && fe.validation.length > 0) {
    const v = fe.validation[0]!;
    let field = fieldFromPointer(v.instancePath);
    let detail = `${field || fe.validationContext || 'request'} ${v.message ?? 'is invalid'}`;
    if (v.keyword === 'additionalProperties') {
      const extra = String(v.params['additionalProperty']);
      field = field ? `${field}.${extra}` : extra;
      detail = `unknown field "${field}"`;
    } else if (v.keyword === 'required') {
      const missing = String(v.params['missingProperty']);
      field = field ? `${field}.${missing}` : missing;
      detail = `missing required field "${field}"`;
    }
    const where = fe.validationContext && fe.validationContext !== 'body' ? `${fe.validationContext} ` : '';
    return problemOf({ code: 'CARGO_ERR_VALIDATION', status: 400, detail: `${where}${detail}`, field });
  }
  // Only a client error keeps its status: a 5xx that is not a CargoError is a fault of the port, never the input.
  const status = typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
  if (status === 500) return problemOf({ code: 'CARGO_ERR_INTERNAL', status, detail: 'internal error (logged on the server)' });
  const code = FASTIFY_CODES[fe.code ?? ''] ?? STATUS_CODES_FALLBACK[status] ?? 'CARGO_ERR_BAD_REQUEST';
  return problemOf({ code, status, detail: fe.message || (STATUS_CODES[status] ?? 'bad request') });
}

/** A request URL without its query (which may carry a token: `?authz=` on storage URLs), at most `max` characters. */
export function pathOf(url: string, max = 512): string {
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)).slice(0, max);
}

/**
 * Writes `problem` as the answer, with the request's path (`pathOf`) as `instance`; a 401 gets its RFC 6750
 * challenge (`WWW-Authenticate`, naming an invalid token when `err` is one) here, so no error handler can forget it. A reply already sent is left alone; a HEAD
 * answer gets the status and headers without a body (RFC 9110 §9.3.2: over HTTP/2 Node ends the stream with the
 * headers, and a body written after that is a stream error on the server).
 */
export function writeProblem(reply: FastifyReply, problem: Problem, err?: unknown): FastifyReply {
  if (reply.sent || reply.raw.headersSent) return reply;
  addChallenge(reply, err, problem.status);
  const r = reply.code(problem.status).header('content-type', 'application/problem+json');
  if (reply.request.method === 'HEAD') return r.send();
  return r.send(JSON.stringify({ ...problem, instance: pathOf(reply.request.url) }));
}

/** Answers a problem a handler states itself (no error thrown). */
export function replyProblem(reply: FastifyReply, init: ProblemInit): FastifyReply {
  return writeProblem(reply, problemOf(init));
}

/** Answers a thrown error; server faults (5xx) are logged with the error, whose message the client may not see. */
export function sendProblem(reply: FastifyReply, req: FastifyRequest, err: unknown): FastifyReply {
  const p = problemFor(err);
  if (p.status >= 500) req.log.error({ err }, 'request failed');
  return writeProblem(reply, p, err);
}
