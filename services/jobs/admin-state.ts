/**
 * Admin state per scope, persisted in Redis (survives restarts) and announced on the control channel so
 * every worker process applies it at once. Scopes: port, pool:<name>, link:<srcHost:port>dstHost:port>,
 * endpoint:<host:port> (the forms used by the scheduler, see model.ts `linkOf` / `hostKey`).
 *
 *   op       → stored state   meaning
 *   pause    → paused         start nothing new, hold bytes in flight
 *   resume   → running        continue from the same offsets
 *   drain    → draining       start nothing new, let in-flight finish (status reports `drained` when none is left)
 *   stop     → stopped        abort in-flight, requeue with resume offsets, stop the workers of the scope
 *   start    → running        (re)start the workers of the scope
 *   restart  → running        stop + start, as one announced action
 */
import type { Redis } from 'ioredis';
import { InvalidAdminRequestError } from './job-errors.js';
import { RedisKeys } from './redis-keys.js';

export const ADMIN_OPS = ['start', 'stop', 'drain', 'pause', 'resume', 'restart'] as const;
export type AdminOp = (typeof ADMIN_OPS)[number];
export const ADMIN_SCOPES = ['port', 'pool', 'link', 'endpoint'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];
export type AdminState = 'running' | 'paused' | 'draining' | 'stopped';

const STATE_OF: Record<AdminOp, AdminState> = {
  start: 'running', resume: 'running', restart: 'running', pause: 'paused', drain: 'draining', stop: 'stopped',
};

export interface AdminEvent {
  op: 'admin';
  action: AdminOp;
  scope: AdminScope;
  target: string;
  state: AdminState;
  at: number;
}

export interface ScopeRecord {
  scope: AdminScope;
  target: string;
  state: AdminState;
  since?: number;
  lastOp?: AdminOp;
}

const LINK_TARGET = /^[^\s>]+>[^\s>]+$/;
const ENDPOINT_TARGET = /^[^\s>]+$/;

export function scopeKey(scope: AdminScope, target: string): string {
  return `${scope}:${scope === 'port' ? '' : target}`;
}

export function validateScope(scope: AdminScope, target: string | undefined): string {
  if (scope === 'port') return '';
  if (!target) throw new InvalidAdminRequestError(`scope "${scope}" needs a target`, 'target');
  if (scope === 'link' && !LINK_TARGET.test(target)) {
    throw new InvalidAdminRequestError('a link target is "srcHost:port>dstHost:port" (file endpoints are "local")', 'target');
  }
  if (scope !== 'link' && !ENDPOINT_TARGET.test(target)) throw new InvalidAdminRequestError(`bad ${scope} target`, 'target');
  if (target.length > 300) throw new InvalidAdminRequestError('target too long', 'target');
  return target;
}

export class AdminStateStore {
  private readonly keys: RedisKeys;

  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new RedisKeys(prefix);
  }

  get channel(): string {
    return this.keys.port('control');
  }

  async apply(op: AdminOp, scope: AdminScope, rawTarget?: string): Promise<ScopeRecord> {
    const target = validateScope(scope, rawTarget);
    const state = STATE_OF[op];
    const key = scopeKey(scope, target);
    const at = Date.now();
    const event: AdminEvent = { op: 'admin', action: op, scope, target, state, at };
    await this.redis
      .multi()
      .hset(this.keys.port('admin'), key, state)
      .hset(this.keys.port('adminMeta'), key, JSON.stringify({ since: at, lastOp: op }))
      .publish(this.channel, JSON.stringify(event))
      .exec();
    return { scope, target, state, since: at, lastOp: op };
  }

  async all(): Promise<ScopeRecord[]> {
    const [states, metas] = await Promise.all([
      this.redis.hgetall(this.keys.port('admin')),
      this.redis.hgetall(this.keys.port('adminMeta')),
    ]);
    if (!states['port:']) states['port:'] = 'running';
    return Object.entries(states).map(([key, state]) => {
      const i = key.indexOf(':');
      const meta = metas[key] ? (JSON.parse(metas[key]!) as { since: number; lastOp: AdminOp }) : undefined;
      return { scope: key.slice(0, i) as AdminScope, target: key.slice(i + 1), state: state as AdminState, ...meta };
    });
  }

  async get(scope: AdminScope, target: string): Promise<AdminState> {
    return ((await this.redis.hget(this.keys.port('admin'), scopeKey(scope, target))) as AdminState | null) ?? 'running';
  }
}
