/**
 * Per-endpoint transfer settings from an operator's file (`transfer.endpointsFile`, YAML or JSON): connections and
 * streams, HTTP/1.1 only, ranged uploads to cargoport peers, windows, timeouts, and the default `copyMode` for
 * remote → remote files touching the endpoint (third-party-copy.ts) — keyed by origin:
 *
 *   https://dcache.example.org:2880: { connections: 4, streams: 8 }
 *   https://old-webdav.example.org:  { http1Only: true }
 *   https://peer-port.example.org:8443: { rangedUpload: true, copyMode: auto }
 *
 * Everything is validated at start-up; a bad entry stops the process with the origin and field named.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { CargoError } from '../../../errors/cargo-error.js';
import type { OriginOptions } from './client-pool.js';
import type { CopyMode } from '../tpc/third-party-copy.js';

/** Connection settings for the client pool, plus the endpoint's default copy mode. */
export type EndpointSettings = OriginOptions & { copyMode?: CopyMode };

type Check = (v: unknown) => boolean;
const intIn = (min: number, max: number): Check => (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const isBool: Check = (v) => typeof v === 'boolean';

const COPY_MODES: readonly string[] = ['auto', 'pull', 'push', 'streamed'];

const FIELDS: Record<keyof EndpointSettings, { check: Check; form: string }> = {
  connections: { check: intIn(1, 64), form: 'an integer from 1 to 64' },
  streams: { check: intIn(1, 256), form: 'an integer from 1 to 256' },
  maxStreamsPerConnection: { check: intIn(1, 1000), form: 'an integer from 1 to 1000' },
  maxHttp1ConnectionsPerOrigin: { check: intIn(1, 1024), form: 'an integer from 1 to 1024' },
  initialWindowSize: { check: intIn(65_535, 2 ** 31 - 1), form: 'bytes, 65535 to 2147483647' },
  connectionWindowSize: { check: intIn(65_535, 2 ** 31 - 1), form: 'bytes, 65535 to 2147483647' },
  connectTimeoutMs: { check: intIn(100, 600_000), form: 'milliseconds, 100 to 600000' },
  headersTimeoutMs: { check: intIn(100, 3_600_000), form: 'milliseconds, 100 to 3600000' },
  bodyTimeoutMs: { check: intIn(100, 3_600_000), form: 'milliseconds, 100 to 3600000' },
  http1Only: { check: isBool, form: 'true or false' },
  rangedUpload: { check: isBool, form: 'true or false (only for cargoport peers)' },
  bulkReceive: { check: isBool, form: 'true or false' },
  ciphers: { check: (v) => typeof v === 'string' && v.length > 0 && v.length < 2000, form: 'an OpenSSL cipher list' },
  copyMode: { check: (v) => typeof v === 'string' && COPY_MODES.includes(v), form: COPY_MODES.join(' | ') },
};

export class EndpointSettingsError extends CargoError {
  constructor(message: string, field: string) {
    super('CARGO_ERR_CONFIG', message, { httpStatus: 400, field });
    this.name = 'EndpointSettingsError';
  }
}

/** Parses and validates the file; origins are normalised (`https://Host:443/` → `https://host`). */
export function loadEndpointSettings(path: string): Map<string, EndpointSettings> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new EndpointSettingsError(`transfer.endpointsFile ${path}: ${(e as Error).message}`, 'transfer.endpointsFile');
  }
  let doc: unknown;
  try {
    doc = parseYaml(text); // JSON is YAML
  } catch (e) {
    throw new EndpointSettingsError(`transfer.endpointsFile ${path} is not valid YAML/JSON: ${(e as Error).message}`, 'transfer.endpointsFile');
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new EndpointSettingsError(`transfer.endpointsFile ${path} must map origins (https://host[:port]) to settings`, 'transfer.endpointsFile');
  }
  const out = new Map<string, EndpointSettings>();
  for (const [rawOrigin, settings] of Object.entries(doc as Record<string, unknown>)) {
    const u = URL.canParse(rawOrigin) ? new URL(rawOrigin) : undefined;
    const isOrigin = u !== undefined && (u.protocol === 'https:' || u.protocol === 'http:') &&
      (u.pathname === '/' || u.pathname === '') && !u.search && !u.username;
    if (!isOrigin) throw new EndpointSettingsError(`${path}: "${rawOrigin}" is not an origin such as https://host:port`, rawOrigin);
    const origin = u.origin;
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw new EndpointSettingsError(`${path}: ${origin} must map to settings (e.g. { connections: 4 })`, origin);
    }
    const opts: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(settings)) {
      const spec = FIELDS[field as keyof EndpointSettings];
      if (!spec) throw new EndpointSettingsError(`${path}: ${origin}: unknown setting "${field}" (known: ${Object.keys(FIELDS).join(', ')})`, `${origin}.${field}`);
      if (!spec.check(value)) throw new EndpointSettingsError(`${path}: ${origin}: ${field} must be ${spec.form} (got ${JSON.stringify(value)})`, `${origin}.${field}`);
      opts[field] = value;
    }
    out.set(origin, opts as EndpointSettings);
  }
  return out;
}
