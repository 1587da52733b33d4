/**
 * `cargoport admin OP [--scope S] [--target NAME]`: the port's admin operations (ARCHITECTURE.md), and its live
 * byte-rate caps: `admin limit --scope S [--target NAME] --bytes-per-sec N|off`, `admin limits`.
 */
import { clientOptionHelp, clientOptions, expectPositionals, printJson, withApi, type Command } from '../command.js';
import { UsageError } from '../usage-error.js';
import type { MarkingStatus } from '../../services/marking/marking-service.js';

export const ADMIN_OPS = ['start', 'stop', 'drain', 'pause', 'resume', 'restart', 'status', 'limit', 'limits'] as const;
export const LIMIT_SCOPES = ['port', 'link', 'owner', 'job'] as const;

interface RateLimit {
  scope: string;
  target?: string;
  bytesPerSec: number;
}

function limitLine(l: RateLimit): string {
  return `${l.scope.padEnd(9)} ${(l.target || '-').padEnd(32)} ${l.bytesPerSec} B/s`;
}
export const ADMIN_SCOPES = ['port', 'pool', 'link', 'endpoint'] as const;

export interface ScopeState {
  scope: string;
  target: string;
  state: string;
  /** What the state amounts to now: a draining scope with nothing in flight is `drained` (status only). */
  effectiveState?: string;
}
export interface UnavailableEndpoint {
  endpoint: string;
  state: string;
  retryAt: string;
  failuresInARow: number;
  /** `full`: a destination that took no more bytes (ENOSPC, EDQUOT, EROFS, HTTP 507); else unreachable. */
  cause?: string;
  detail?: string;
}
export interface PortStatus {
  /** Scitags marking of the gateway process (services/marking). */
  marking?: MarkingStatus;
  scopes: ScopeState[];
  workers: Array<{ alive?: boolean }>;
  queues: Record<string, unknown>;
  transfers: { active: number; rateBytesPerSec: number };
  unavailableEndpoints?: UnavailableEndpoint[];
}

export function scopeLine(s: ScopeState): string {
  return `${s.scope.padEnd(9)} ${(s.target || '-').padEnd(32)} ${s.effectiveState ?? s.state}`;
}

/** A tripped circuit breaker, in the scope lines' columns: `endpoint  host:port  unavailable (…)`. */
export function breakerLine(e: UnavailableEndpoint): string {
  const when = e.state === 'open' ? `, next probe ${e.retryAt}` : '';
  const why = e.cause === 'full' ? `destination full: ${(e.detail ?? '').slice(0, 120)}` : `${e.failuresInARow} failed connects in a row`;
  return `${'endpoint'.padEnd(9)} ${e.endpoint.padEnd(32)} unavailable (breaker ${e.state}${when}, ${why})`;
}

export const adminCommand: Command = {
  name: 'admin',
  args: `OP  (${ADMIN_OPS.join(' | ')})`,
  summary: 'run an admin operation on a scope of the port',
  options: { ...clientOptions, scope: { type: 'string' }, target: { type: 'string' }, 'bytes-per-sec': { type: 'string' } },
  optionHelp: [
    `--scope SCOPE    ${ADMIN_SCOPES.join(' | ')} (default port)`,
    '--target NAME    pool name, link "src-host:port>dst-host:port" or endpoint "host:port"',
    `limit: --scope ${LIMIT_SCOPES.join(' | ')}, --target NAME (link, owner or job id), --bytes-per-sec N | off`,
    'limits: list the live byte-rate caps',
    ...clientOptionHelp,
  ],
  async run(ctx) {
    expectPositionals(ctx, 1, 1, `OP (${ADMIN_OPS.join(', ')})`);
    const op = ctx.positionals[0]!;
    if (!(ADMIN_OPS as readonly string[]).includes(op)) throw new UsageError(`unknown operation "${op}" (expected ${ADMIN_OPS.join(', ')})`, 'op');
    const scope = ctx.values.scope as string | undefined;
    if (op === 'limit' || op === 'limits') return rateLimits(ctx, op, scope, ctx.values.target as string | undefined);
    if (scope !== undefined && !(ADMIN_SCOPES as readonly string[]).includes(scope)) {
      throw new UsageError(`--scope must be one of ${ADMIN_SCOPES.join(', ')} (got ${scope})`, 'scope');
    }
    const target = ctx.values.target as string | undefined;
    if ((scope === 'link' || scope === 'endpoint') && !target) throw new UsageError(`--scope ${scope} needs --target`, 'target');
    return withApi(ctx, async (api) => {
      if (op === 'status') {
        const status = await api.get<PortStatus>('/status');
        if (ctx.values.json) printJson(ctx, status);
        else {
          const shown = status.scopes.filter((s) => !scope || (s.scope === scope && (!target || s.target === target)));
          for (const s of shown) ctx.out.write(scopeLine(s) + '\n');
          for (const e of status.unavailableEndpoints ?? []) {
            if (!scope || (scope === 'endpoint' && (!target || e.endpoint === target))) ctx.out.write(breakerLine(e) + '\n');
          }
          ctx.out.write(`transfers active ${status.transfers.active}, workers ${status.workers.length}\n`);
          if (status.marking) {
            const m = status.marking;
            ctx.out.write(`marking ${m.enabled ? 'on' : 'off'}: ${m.activeFlows} flows, ${m.firefliesSent} fireflies sent, ${m.flowsLabelled} labelled\n`);
            for (const b of m.backends) ctx.out.write(`  ${b.name.padEnd(10)} ${b.on ? 'on ' : 'off'}${b.reason ? `  ${b.reason}` : ''}\n`);
          }
        }
        return 0;
      }
      const body: Record<string, string> = {};
      if (scope) body.scope = scope;
      if (target) body.target = target;
      const result = await api.post<ScopeState>(`/admin/${op}`, body);
      if (ctx.values.json) printJson(ctx, result);
      else ctx.out.write(scopeLine(result) + '\n');
      return 0;
    });
  },
};

async function rateLimits(ctx: Parameters<Command['run']>[0], op: 'limit' | 'limits', scope: string | undefined, target: string | undefined): Promise<number> {
  let body: Record<string, unknown> | undefined;
  if (op === 'limit') {
    if (!scope || !(LIMIT_SCOPES as readonly string[]).includes(scope)) throw new UsageError(`limit needs --scope ${LIMIT_SCOPES.join(', ')}`, 'scope');
    if (scope !== 'port' && !target) throw new UsageError(`--scope ${scope} needs --target`, 'target');
    const raw = ctx.values['bytes-per-sec'] as string | undefined;
    if (raw === undefined) throw new UsageError('limit needs --bytes-per-sec N (bytes per second) or off', 'bytes-per-sec');
    const n = raw === 'off' ? null : Number(raw);
    if (n !== null && !(Number.isSafeInteger(n) && n > 0)) throw new UsageError(`--bytes-per-sec must be a positive integer or off (got ${raw})`, 'bytes-per-sec');
    body = { scope, ...(target ? { target } : {}), bytesPerSec: n };
  }
  return withApi(ctx, async (api) => {
    const list = body ? await api.put<RateLimit[]>('/admin/limits', body) : await api.get<RateLimit[]>('/admin/limits');
    if (ctx.values.json) printJson(ctx, list);
    else if (list.length === 0) ctx.out.write('no rate limits\n');
    else for (const l of list) ctx.out.write(limitLine(l) + '\n');
    return 0;
  });
}
