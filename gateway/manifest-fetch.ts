/**
 * Fetches an export's manifest: http(s) only, the host checked against the outbound address policy first (as job
 * endpoints are), the CAs of transfers trusted, at most 64 MiB, 60 s.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import type { Config } from '../config/schema.js';
import { CargoError } from '../errors/cargo-error.js';
import { checkHost, type AddressPolicy } from '../services/auth/address-policy.js';

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

export function manifestFetcher(cfg: Config, policy: AddressPolicy): (url: string) => Promise<string> {
  let agent: Agent | undefined;
  return async (url) => {
    const u = new URL(url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new CargoError('CARGO_ERR_UNSUPPORTED_SCHEME', `manifest ${url}: only http(s) manifests are fetched`);
    await checkHost(policy, u.hostname, 'selection.manifestUrl');
    agent ??= new Agent({
      allowH2: true,
      connect: {
        ca: cfg.transfer.caFile ? [...rootCertificates, readFileSync(cfg.transfer.caFile, 'utf8')] : [...rootCertificates],
        rejectUnauthorized: !cfg.transfer.insecureTls,
      },
    });
    const res = await request(url, { dispatcher: agent, headersTimeout: 60_000, bodyTimeout: 60_000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new CargoError(res.statusCode >= 500 ? 'CARGO_ERR_HTTP_5XX' : 'CARGO_ERR_HTTP_4XX', `manifest ${url}: HTTP ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new CargoError('CARGO_ERR_BODY_TOO_LARGE', `manifest ${url} is larger than ${MAX_MANIFEST_BYTES} bytes`);
      }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  };
}
