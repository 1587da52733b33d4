/**
 * What a submission may ask for (issue 13): every file is checked before the job exists.
 * - `file://` only inside a configured local area (`auth.localAreas`), whose directory stands for a namespace path;
 *   the rights are those of that path (read for a source; create, or modify when the job overwrites, for a
 *   destination), so one set of scopes governs the storage endpoint and local files alike. The deepest existing
 *   ancestor is resolved through symlinks and must stay inside the area's real directory.
 * - `http(s)://` hosts must pass the outbound address policy (every address they resolve to); each host is
 *   resolved once per submission.
 * The `open` principal (auth.insecureOpen) skips the file rules, never the address policy.
 */
import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkHost } from '../services/auth/address-policy.js';
import { ForbiddenError } from '../services/auth/auth-errors.js';
import { describe, mayAccess, type Principal } from '../services/auth/principal.js';
import type { StorageAction } from '../services/auth/scopes.js';
import type { NewJob } from '../services/jobs/model.js';
import type { GatewayAuth, LocalArea } from './auth.js';

const within = (parent: string, child: string) => parent === '/' || child === parent || child.startsWith(parent + '/');

/** Real path of the deepest existing ancestor of `p` (p itself if it exists), cached per directory. */
async function realAncestor(p: string, cache: Map<string, string>): Promise<{ real: string; rest: string }> {
  let cur = p;
  let rest = '';
  for (;;) {
    const hit = cache.get(cur);
    if (hit !== undefined) return { real: hit, rest };
    try {
      const r = await realpath(cur);
      cache.set(cur, r);
      return { real: r, rest };
    } catch {
      const parent = dirname(cur);
      if (parent === cur) return { real: cur, rest };
      rest = cur.slice(parent.length === 1 ? 1 : parent.length + 1) + (rest ? '/' + rest : '');
      cur = parent;
    }
  }
}

export class SubmissionAuthoriser {
  private readonly realAreas = new Map<string, string>();
  constructor(private readonly auth: GatewayAuth) {}

  private async areaReal(a: LocalArea): Promise<string> {
    let r = this.realAreas.get(a.dir);
    if (r === undefined) {
      r = await realpath(a.dir).catch(() => a.dir);
      this.realAreas.set(a.dir, r);
    }
    return r;
  }

  /** Throws ForbiddenError / AddressRefusedError naming the field of the first file that is not allowed. */
  async check(principal: Principal, job: NewJob): Promise<void> {
    const hosts = new Map<string, Promise<void>>();
    const dirs = new Map<string, string>();
    const open = principal.kind === 'open';
    const existing = job.params.existing ?? (job.params.overwrite ? 'overwrite' : 'skip-identical');
    for (let i = 0; i < job.files.length; i++) {
      const f = job.files[i]!;
      for (const [url, field, action] of [
        [f.source, `files[${i}].source`, 'read'],
        [f.destination, `files[${i}].destination`, existing === 'overwrite' ? 'modify' : 'create'],
      ] as Array<[string, string, StorageAction]>) {
        if (url.startsWith('file:')) {
          if (!open) await this.checkLocal(principal, url, field, action, dirs);
          continue;
        }
        const host = new URL(url).hostname;
        let pending = hosts.get(host);
        if (!pending) {
          pending = checkHost(this.auth.addressPolicy, host, field);
          hosts.set(host, pending);
        }
        await pending;
      }
    }
  }

  private async checkLocal(principal: Principal, url: string, field: string, action: StorageAction, dirs: Map<string, string>): Promise<void> {
    const path = fileURLToPath(url);
    const area = this.auth.localAreas.find((a) => within(a.dir, path));
    if (!area) throw new ForbiddenError(`${field}: ${path} is outside every local area (auth.localAreas); file:// reaches nothing else on this host`, field);
    const areaReal = await this.areaReal(area);
    const { real, rest } = await realAncestor(path, dirs);
    const resolved = rest ? (real === '/' ? '/' + rest : `${real}/${rest}`) : real;
    if (!within(areaReal, resolved)) throw new ForbiddenError(`${field}: ${path} leads outside its local area through a symbolic link`, field);
    const rel = resolved.slice(areaReal === '/' ? 0 : areaReal.length);
    const ns = area.path === '/' ? rel || '/' : `${area.path}${rel}`;
    if (!mayAccess(principal, action, ns, this.auth.publicPrefixes)) {
      throw new ForbiddenError(`${field}: ${describe(principal)} may not ${action} ${ns} (the namespace path of ${path})`, field);
    }
  }
}
