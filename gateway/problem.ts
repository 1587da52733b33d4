/**
 * RFC 7807 problem+json for every error the gateway answers: domain errors keep their stable code and
 * field; Fastify's own errors (validation, JSON syntax, body size, content type) are translated so the
 * client learns which field or what about the request is wrong. Never a bare 500 for bad input.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isCargoError } from '../errors/cargo-error.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  field?: string;
  instance?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 412: 'Precondition Failed', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** Fastify's own request errors, renamed into our stable code space. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'CARGO_ERR_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'CARGO_ERR_BAD_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'CARGO_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'CARGO_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'CARGO_ERR_BAD_CONTENT_LENGTH',
};

/** `/files/3/source` → `files[3].source` */
export function fieldFromPointer(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

export function problemFor(err: unknown): Problem {
  if (isCargoError(err)) {
    return { type: `urn:cargoport:error:${err.code}`, title: TITLES[err.httpStatus] ?? 'Error', status: err.httpStatus, detail: err.message, code: err.code, ...(err.field ? { field: err.field } : {}) };
  }
  const fe = err as FastifyError & { validation?: Array<{ instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }>; validationContext?: string };
  if (fe.validation && fe.validation.length > 0) {
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
    return { type: 'urn:cargoport:error:CARGO_ERR_VALIDATION', title: 'Bad Request', status: 400, detail: `${where}${detail}`, code: 'CARGO_ERR_VALIDATION', ...(field ? { field } : {}) };
  }
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500;
  const code = status === 500 ? 'CARGO_ERR_INTERNAL' : (FASTIFY_CODES[fe.code ?? ''] ?? `CARGO_ERR_HTTP_${status}`);
  const detail = status === 500 ? 'internal error (logged on the server)' : fe.message;
  return { type: `urn:cargoport:error:${code}`, title: TITLES[status] ?? 'Error', status, detail, code };
}

export function sendProblem(reply: FastifyReply, req: FastifyRequest, err: unknown): FastifyReply {
  const p = problemFor(err);
  if (p.status >= 500) req.log.error({ err }, 'request failed');
  return reply.code(p.status).type('application/problem+json').send({ ...p, instance: req.url.slice(0, 512) });
}
