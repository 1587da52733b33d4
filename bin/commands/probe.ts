/**
 * `cargoport probe PEER`: link diagnostics against another cargoport's /probe endpoint (services/probe/link-probe.ts):
 * TLS handshake times, HTTP/2 request round trip, memory-to-memory throughput both ways with N connections × M
 * streams, printed as a table or (--json) as the report object. The transfer engine is built from this port's
 * configuration (windows, timeouts, pacing: what its transfers would use), trusting what the other CLI commands
 * trust plus `transfer.caFile` and `--ca`.
 */
import { readFileSync } from 'node:fs';
import { trustedCas } from '../api-client.js';
import { discoverBearerToken } from '../bearer-token.js';
import { expectPositionals, loadConfigFor, printJson, type Command, type CommandContext } from '../command.js';
import { formatBytes, formatRate } from '../progress-view.js';
import { generatedCertPath } from '../self-signed-cert.js';
import { UsageError } from '../usage-error.js';
import { createTransferEngine, engineSettingsFromConfig } from '../../services/transfer/engine.js';
import { LinkProbe, sharedSecureContext, withSecureContext, type LinkProbeReport } from '../../services/probe/link-probe.js';
import type { Distribution } from '../../services/probe/probe-stats.js';

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, ti: 1024 ** 4 };

/** `2G`, `512MiB`, `1000000` → bytes (decimal units; KiB/MiB/GiB binary). */
export function parseSize(v: string, option: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]i?)?b?$/i.exec(v.trim());
  const mult = m ? SIZE_UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || mult === undefined) throw new UsageError(`--${option} ${JSON.stringify(v)} is not a size such as 2G, 512MiB or 1000000`, option);
  return Math.round(Number(m[1]) * mult);
}

function count(ctx: CommandContext, option: string, fallback: number, min: number, max: number): number {
  const v = ctx.values[option];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${option} must be an integer from ${min} to ${max}`, option);
  return n;
}

/** `https://host:port`, or `host[:port]` meaning https (port 8443 by default, as a port listens). */
export function peerUrl(v: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `https://${v}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`PEER ${JSON.stringify(v)} is not a URL or host[:port]`, 'peer');
  }
  if (u.protocol !== 'https:') throw new UsageError(`PEER must be https:// (got ${u.protocol})`, 'peer');
  if (!u.port && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) u.port = '8443';
  return u.origin;
}

const ms = (d: Distribution | undefined): string =>
  d ? `${d.min.toFixed(2)} / ${d.median.toFixed(2)} / ${d.p90.toFixed(2)} / ${d.max.toFixed(2)}` : '-';

/** The report as an aligned text table. */
export function probeTable(r: LinkProbeReport): string {
  const rows: Array<[string, string]> = [];
  const h = r.handshakes;
  if (h) {
    rows.push([`TCP connect, ms (min / median / p90 / max, ${h.count} fresh)`, ms(h.tcpConnectMs)]);
    rows.push([`TLS done, full handshake, ms (${h.tlsVersion}, ${h.cipher})`, ms(h.tlsDoneMs)]);
    if (h.resumedTlsDoneMs) rows.push([`TLS done, resumption offered, ms (${h.resumed}/${h.count} resumed)`, ms(h.resumedTlsDoneMs)]);
    rows.push(['ALPN protocol', h.protocol]);
  }
  if (r.roundTrip) rows.push([`HTTP/2 request round trip, ms (${r.roundTrip.requests} on one connection)`, ms(r.roundTrip.rttMs)]);
  for (const t of r.throughput) {
    rows.push([
      `${t.direction === 'download' ? 'download from' : 'upload to'} peer (${t.connections} conn × ${t.streamsPerConnection} streams, ${formatBytes(t.bytes)})`,
      `${formatRate(t.bytesPerSec)}  (${(t.bytesPerSec * 8 / 1e9).toFixed(2)} Gbit/s, ${t.seconds.toFixed(2)} s${t.retries ? `, ${t.retries} request(s) asked again after a reset` : ''})`,
    ]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const ip = h?.remoteIp ? ` (${h.remoteIp})` : '';
  return [`probe of ${r.peer}${ip}, ${r.startedAt}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}

export const probeCommand: Command = {
  name: 'probe',
  args: 'PEER',
  summary: 'link diagnostics against another cargoport: TLS handshakes, HTTP/2 round trip, memory-to-memory throughput',
  options: {
    connections: { type: 'string' },
    streams: { type: 'string' },
    bytes: { type: 'string' },
    'request-bytes': { type: 'string' },
    handshakes: { type: 'string' },
    requests: { type: 'string' },
    direction: { type: 'string' },
    ca: { type: 'string' },
    insecure: { type: 'boolean' },
    token: { type: 'string' },
    json: { type: 'boolean' },
  },
  optionHelp: [
    'PEER               the other port: https://host:port, or host[:port] (https, port 8443)',
    '--connections N    TCP connections for the throughput measurement (default transfer.connections)',
    '--streams M        concurrent HTTP/2 streams per connection (default transfer.streams); uploads use',
    '                   N × M connections of one stream each, as the port\'s ranged push does',
    '--bytes SIZE       bytes moved per direction, e.g. 2G, 512MiB (default 1G; 0: no throughput)',
    '--request-bytes SIZE  bytes per request (default 256MiB; at most the peer\'s probe.maxBytes)',
    '--handshakes N     fresh TLS connections timed (default 20; 0: none)',
    '--requests N       small requests timed one after another on one connection (default 100; 0: none)',
    '--direction D      download, upload or both (default both)',
    '--ca FILE          also trust this CA (PEM); the port\'s own certificate and the system CAs are trusted',
    '--insecure         do not verify the peer\'s TLS certificate',
    '--token TOKEN      bearer token for the peer (default: WLCG discovery: $BEARER_TOKEN, $BEARER_TOKEN_FILE, bt_u<uid>);',
    '                   the peer requires an administrator, or any identity when its probe.access is authenticated',
    '--json             print the report as JSON',
  ],
  async run(ctx) {
    expectPositionals(ctx, 1, 1, 'PEER (https://host:port)');
    const url = peerUrl(ctx.positionals[0]!);
    const cfg = loadConfigFor(ctx);
    const direction = (ctx.values.direction as string | undefined) ?? 'both';
    if (!['download', 'upload', 'both'].includes(direction)) throw new UsageError('--direction must be download, upload or both', 'direction');
    const connections = count(ctx, 'connections', cfg.transfer.connections, 1, 64);
    const streams = count(ctx, 'streams', cfg.transfer.streams, 1, 256);
    const bytes = ctx.values.bytes !== undefined ? parseSize(ctx.values.bytes as string, 'bytes') : 1e9;
    const requestBytes = ctx.values['request-bytes'] !== undefined ? parseSize(ctx.values['request-bytes'] as string, 'request-bytes') : 256 * 1024 * 1024;
    if (requestBytes < 1) throw new UsageError('--request-bytes must be at least 1', 'request-bytes');
    const insecure = ctx.values.insecure === true;
    let ca: string[] | undefined;
    if (!insecure) {
      ca = trustedCas(cfg.gateway.tlsCert || generatedCertPath(cfg.dataDir));
      for (const [file, option] of [[ctx.values.ca as string | undefined, '--ca'], [cfg.transfer.caFile, 'transfer.caFile']] as const) {
        if (!file) continue;
        try {
          ca.push(readFileSync(file, 'utf8'));
        } catch (e) {
          throw new UsageError(`${option} ${file}: ${(e as Error).message}`, 'ca');
        }
      }
    }
    // The workers' settings (windows, timeouts, pacing, endpoint overrides), without the outbound address policy:
    // the operator names the peer here, as with curl.
    const { lookup: _policy, ...settings } = engineSettingsFromConfig(cfg);
    const engine = createTransferEngine({ ...settings, connections, streams, rejectUnauthorized: !insecure, ...(ca ? { ca } : {}) });
    // The trust list parsed once, not per connection (hundreds of system CAs).
    engine.setCreateSocket(withSecureContext(sharedSecureContext(ca)));
    const interrupted = new AbortController();
    const onSigint = (): void => interrupted.abort();
    process.once('SIGINT', onSigint);
    try {
      const o = engine.pool.optionsFor(url);
      const probe = new LinkProbe(engine.pool, {
        url, token: discoverBearerToken(ctx.values.token as string | undefined),
        handshakes: count(ctx, 'handshakes', 20, 0, 10000), requests: count(ctx, 'requests', 100, 0, 1000000),
        connections, streams, bytes, requestBytes, signal: interrupted.signal,
        directions: direction === 'both' ? ['download', 'upload'] : [direction as 'download' | 'upload'],
      }, { ...(ca ? { ca } : {}), rejectUnauthorized: !insecure, connectTimeoutMs: o.connectTimeoutMs });
      const report = await probe.run();
      if (ctx.values.json) printJson(ctx, report);
      else ctx.out.write(probeTable(report) + '\n');
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
      await engine.close();
    }
  },
};
