/**
 * The CLI's HTTPS client for the REST API (/api/v1). It trusts Node's roots, the system's CA bundle and the
 * port's configured or generated certificate (`gateway.tlsCert`, `<dataDir>/tls/cert.pem`), or nothing at all
 * with `--insecure`. API errors arrive as RFC 7807 problem+json and become ApiError, printed as `title: detail`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { CargoError } from '../errors/cargo-error.js';
import { isErrorCode } from '../errors/catalogue.js';
import { UsageError } from './usage-error.js';

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  field?: string;
  code?: string;
}

export class ApiError extends CargoError {
  readonly problem: Problem;
  constructor(status: number, problem: Problem) {
    const title = problem.title ?? `HTTP ${status}`;
    const text = problem.detail ? `${title}: ${problem.detail}` : title;
    // A code this CLI does not know (a newer gateway) stays readable in `problem.code`.
    super(isErrorCode(problem.code) ? problem.code : 'CARGO_ERR_API', problem.field && !text.includes(problem.field) ? `${text} (field ${problem.field})` : text, {
      httpStatus: status, field: problem.field, retryable: status >= 500,
    });
    this.name = 'ApiError';
    this.problem = problem;
  }
}

export class ConnectError extends CargoError {
  constructor(message: string, cause: unknown) {
    super('CARGO_ERR_CONNECT', message, { httpStatus: 502, retryable: true, cause });
    this.name = 'ConnectError';
  }
}

export interface ApiClientOptions {
  /** Base URL of the gateway, e.g. https://localhost:8443 */
  url: string;
  /** Extra CA certificate (PEM file) to trust, normally <dataDir>/tls/cert.pem. */
  caFile?: string;
  insecure?: boolean;
  token?: string;
}

export interface ApiClient {
  readonly baseUrl: string;
  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
  delete<T>(path: string): Promise<T>;
  /** POST to a path of the port outside /api/v1 (the storage endpoint's share-link request) with its own body type. */
  postRaw<T>(absolutePath: string, body: string, contentType: string): Promise<T>;
  close(): Promise<void>;
}

const TLS_HINT = 'trust the port\'s certificate (it is read from <dataDir>/tls/cert.pem; pass --config for another dataDir) or use --insecure';

function explainConnectError(base: string, e: unknown): ConnectError {
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code ?? '';
  if (code === 'ECONNREFUSED') return new ConnectError(`cannot reach ${base}: connection refused (is \`cargoport serve\` running? pass --url)`, e);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new ConnectError(`cannot resolve the host of ${base}`, e);
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code) || /certificate/i.test(err.message)) {
    return new ConnectError(`TLS verification of ${base} failed (${code || err.message}): ${TLS_HINT}`, e);
  }
  return new ConnectError(`request to ${base} failed: ${code ? code + ' ' : ''}${err.message}`, e);
}

/** The operating system's CA bundle, as OpenSSL finds it (SSL_CERT_FILE first), where the site adds its own CAs. */
const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/**
 * What the CLI trusts: Node's bundled roots, the system's bundle (a site CA installed with update-ca-certificates
 * is there, and Node 20 does not read it by itself) and the port's configured or generated certificate.
 */
export function trustedCas(caFile?: string): string[] {
  const ca = [...rootCertificates];
  const envFile = process.env['SSL_CERT_FILE'];
  const system = envFile ? [envFile] : SYSTEM_CA_FILES;
  const found = system.find((f) => existsSync(f));
  if (found) ca.push(readFileSync(found, 'utf8'));
  if (caFile && existsSync(caFile)) ca.push(readFileSync(caFile, 'utf8'));
  return ca;
}

export function createApiClient(opts: ApiClientOptions): ApiClient {
  const base = opts.url.replace(/\/+$/, '');
  let baseUrl: URL;
  try {
    baseUrl = new URL(base);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(opts.url)} is not a URL`, 'url');
  }
  if (baseUrl.protocol !== 'https:') {
    throw new UsageError(`--url must be https:// (got ${baseUrl.protocol})`, 'url');
  }
  const ca = opts.insecure ? undefined : trustedCas(opts.caFile);
  // One secure context for every connection: given `ca` instead, tls.connect parses the ~140 system roots into a
  // new native context per connection (~0.5 MB outside the JS heap, so GC is in no hurry), and a `status --watch`
  // reconnecting twice a second to an absent gateway grew by hundreds of MB.
  const agent = new Agent({
    allowH2: true,
    connect: ca ? { secureContext: createSecureContext({ ca }) } : { rejectUnauthorized: false },
  });

  async function call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, query?: Record<string, string | number | undefined>, raw?: { contentType: string }): Promise<T> {
    const url = new URL(base + (raw ? '' : '/api/v1') + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    if (body !== undefined) headers['content-type'] = raw?.contentType ?? 'application/json';
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let res;
    try {
      res = await request(url, { method, headers, body: body === undefined ? undefined : raw ? String(body) : JSON.stringify(body), dispatcher: agent });
    } catch (e) {
      throw explainConnectError(base, e);
    }
    const text = await res.body.text();
    const type = String(res.headers['content-type'] ?? '');
    let parsed: unknown;
    if (text && /json/.test(type)) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (res.statusCode >= 400) {
      const problem = parsed && typeof parsed === 'object' ? (parsed as Problem) : { title: `HTTP ${res.statusCode}`, detail: text.slice(0, 200) || undefined };
      throw new ApiError(res.statusCode, problem);
    }
    return (parsed ?? (text ? text : undefined)) as T;
  }

  return {
    baseUrl: base,
    get: (path, query) => call('GET', path, undefined, query),
    post: (path, body) => call('POST', path, body),
    put: (path, body) => call('PUT', path, body),
    delete: (path) => call('DELETE', path),
    postRaw: (path, body, contentType) => call('POST', path, body, undefined, { contentType }),
    close: () => agent.close(),
  };
}
