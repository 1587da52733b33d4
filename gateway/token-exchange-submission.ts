/**
 * Token exchange at submission (services/auth/token-exchange.ts explains the choice): for each `auth.outbound`
 * entry with `source: token-exchange` that a job's files reach, the gateway exchanges the submitter's bearer token
 * at the entry's issuer for a grant covering exactly those files' narrow scopes, and stores it sealed under the job
 * before the job exists (so no worker can claim a file before its grant is there). The submitter's token itself is
 * used for the exchange request only, never stored.
 */
import type { FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { ForbiddenError } from '../services/auth/auth-errors.js';
import { narrowScope, outboundTokensFromConfig, type OutboundTokens } from '../services/auth/outbound-tokens.js';
import { GrantStore, TokenExchangeSource, type ExchangedGrant } from '../services/auth/token-exchange.js';
import { TokenSealer } from '../services/auth/token-seal.js';
import type { NewJob } from '../services/jobs/model.js';

export type StoreGrants = (jobId: string, ttlSec: number) => Promise<void>;

export class SubmissionExchanges {
  private constructor(private readonly outbound: OutboundTokens, private readonly grants: GrantStore) {}

  /** Undefined when no outbound entry is a token exchange. */
  static fromConfig(cfg: Config, redis: Redis): SubmissionExchanges | undefined {
    const outbound = outboundTokensFromConfig(cfg.auth);
    if (!outbound || outbound.exchangeEntries.length === 0) {
      void outbound?.close();
      return undefined;
    }
    return new SubmissionExchanges(outbound, new GrantStore(redis, cfg.redis.prefix, TokenSealer.fromConfig(cfg.auth, cfg.dataDir)));
  }

  /**
   * Exchanges the submitter's token for every token-exchange entry `job` reaches; returns what stores the sealed
   * grants under the job's id (undefined: the job needs none). Throws before anything is stored.
   */
  async prepare(request: FastifyRequest, job: NewJob): Promise<StoreGrants | undefined> {
    const wanted = new Map<TokenExchangeSource, string[]>();
    const overwrite = (job.params.existing ?? (job.params.overwrite ? 'overwrite' : 'fail')) === 'overwrite';
    for (const f of job.files) {
      for (const [url, role] of [[f.source, 'source'], [f.destination, 'destination']] as const) {
        const e = this.outbound.match(url);
        if (!e || !(e.source instanceof TokenExchangeSource)) continue;
        const scope = e.scopes === 'narrow' ? narrowScope({ url, role, method: role === 'source' ? 'GET' : 'PUT' }, e.basePath, overwrite) : e.scopes.join(' ');
        if (scope === undefined) continue;
        let list = wanted.get(e.source);
        if (!list) wanted.set(e.source, (list = []));
        list.push(...scope.split(' '));
      }
    }
    if (wanted.size === 0) return undefined;
    const h = request.headers.authorization;
    const subject = typeof h === 'string' && /^bearer /i.test(h) ? h.slice(7).trim() : '';
    if (subject === '') throw new ForbiddenError('this job reaches an endpoint whose token is a token exchange of the submitter\'s: submit with a bearer token', 'files');
    const grants: Array<[TokenExchangeSource, ExchangedGrant]> = [];
    for (const [source, scopes] of wanted) grants.push([source, await source.exchange(subject, scopes)]);
    return async (jobId, ttlSec) => {
      for (const [source, g] of grants) await this.grants.put(jobId, source.id, g, ttlSec);
    };
  }

  close(): Promise<void> {
    return this.outbound.close();
  }
}
