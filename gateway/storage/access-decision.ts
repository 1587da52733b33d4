/**
 * Where every storage request's right to act is decided: anonymous read-only access to public prefixes first,
 * then the configured `authorize` hook (default: deny; the gateway passes gateway/auth.ts's decision).
 */
import type { FastifyRequest } from 'fastify';
import { isWithin } from '../../services/storage/safe-path.js';
import { forbidden } from '../../services/storage/storage-errors.js';
import type { AuthorizeFn, StorageAction } from './storage-options.js';

const READ_ONLY_ACTIONS: ReadonlySet<StorageAction> = new Set(['read', 'stat', 'list', 'poll']);

export const allowAll: AuthorizeFn = () => true;
export const denyAll: AuthorizeFn = () => false;

export class AccessDecision {
  private readonly publicPrefixes: string[];
  constructor(
    publicPrefixes: string[] | undefined,
    private readonly authorize: AuthorizeFn = denyAll,
  ) {
    this.publicPrefixes = (publicPrefixes ?? []).map((p) => '/' + p.split('/').filter(Boolean).join('/'));
  }

  isPublic(path: string): boolean {
    return this.publicPrefixes.some((p) => isWithin(p, path));
  }

  /** Throws 403 (or whatever the hook throws, e.g. 401) unless `action` on `path` is allowed. */
  async check(request: FastifyRequest, action: StorageAction, path: string): Promise<void> {
    if (READ_ONLY_ACTIONS.has(action) && this.isPublic(path)) return;
    const ok = await this.authorize(request, action, path);
    if (!ok) throw forbidden(`${action} not allowed on ${path}`);
  }
}
