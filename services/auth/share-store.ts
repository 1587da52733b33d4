/**
 * Share links' state in Redis: one hash per link (`<prefix>:share:<id>`: owner, path, download, created, expires,
 * downloads allowed, downloads used, byte-rate cap, revoked) and a sorted set of ids by expiry
 * (`<prefix>:shares`) for listing. The token itself is never stored: only its id (jti), which is useless without
 * the signature. A hash outlives its link by a day so a revoked link's id stays known; after that the token has
 * expired anyway.
 *
 * `admit` is the per-use check (one round trip, atomic in a script): the link must exist and not be revoked;
 * a counted use (a download) takes one of the allowed downloads or is refused once they are used up.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface ShareRecord {
  id: string;
  owner: string;
  path: string;
  download: boolean;
  createdAt: string;
  expiresAt: string;
  /** Downloads allowed (undefined: unlimited). */
  downloads?: number;
  /** Downloads used so far. */
  used: number;
  /** Byte-rate cap of the link's downloads in bytes/s (all its downloads together, per gateway process). */
  rateBytesPerSec?: number;
  revoked: boolean;
}

export type AdmitResult = { ok: true; rateBytesPerSec?: number } | { ok: false; why: 'unknown' | 'revoked' | 'exhausted' };

const KEEP_AFTER_EXPIRY_SEC = 86400;

// KEYS[1] hash; ARGV[1] '1' to count a download. Returns {status, rate}: status -1 unknown, -2 revoked,
// -3 exhausted, else the downloads used.
const ADMIT = `
local r = redis.call('HMGET', KEYS[1], 'revoked', 'downloads', 'rate', 'owner')
if not r[4] then return {-1, ''} end
if r[1] == '1' then return {-2, ''} end
local rate = r[3] or ''
if ARGV[1] == '1' and r[2] and r[2] ~= '' then
  local n = redis.call('HINCRBY', KEYS[1], 'used', 1)
  if n > tonumber(r[2]) then
    redis.call('HINCRBY', KEYS[1], 'used', -1)
    return {-3, ''}
  end
  return {n, rate}
end
return {0, rate}
`;

export class ShareStore {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(id: string): string {
    return `${this.prefix}:share:${id}`;
  }

  private get index(): string {
    return `${this.prefix}:shares`;
  }

  static newId(): string {
    return randomBytes(12).toString('base64url');
  }

  async create(r: Omit<ShareRecord, 'used' | 'revoked'>): Promise<void> {
    const expSec = Math.ceil(Date.parse(r.expiresAt) / 1000);
    const fields: Record<string, string> = {
      owner: r.owner, path: r.path, download: r.download ? '1' : '0', createdAt: r.createdAt, expiresAt: r.expiresAt, used: '0', revoked: '0',
      ...(r.downloads !== undefined ? { downloads: String(r.downloads) } : {}),
      ...(r.rateBytesPerSec !== undefined ? { rate: String(r.rateBytesPerSec) } : {}),
    };
    await this.redis.multi()
      .hset(this.key(r.id), fields)
      .expireat(this.key(r.id), expSec + KEEP_AFTER_EXPIRY_SEC)
      .zadd(this.index, expSec, r.id)
      .exec();
  }

  async get(id: string): Promise<ShareRecord | undefined> {
    const h = await this.redis.hgetall(this.key(id));
    if (!h['owner']) return undefined;
    return {
      id, owner: h['owner'], path: h['path'] ?? '/', download: h['download'] === '1', createdAt: h['createdAt'] ?? '', expiresAt: h['expiresAt'] ?? '',
      ...(h['downloads'] ? { downloads: Number(h['downloads']) } : {}),
      used: Number(h['used'] ?? 0),
      ...(h['rate'] ? { rateBytesPerSec: Number(h['rate']) } : {}),
      revoked: h['revoked'] === '1',
    };
  }

  /** Links not yet expired, of `owner` (undefined: everyone's), soonest expiry first. */
  async list(owner: string | undefined, nowMs = Date.now()): Promise<ShareRecord[]> {
    const nowSec = Math.floor(nowMs / 1000);
    await this.redis.zremrangebyscore(this.index, '-inf', nowSec - KEEP_AFTER_EXPIRY_SEC);
    const ids = await this.redis.zrangebyscore(this.index, nowSec, '+inf');
    const out: ShareRecord[] = [];
    for (const id of ids) {
      const r = await this.get(id);
      if (r && (owner === undefined || r.owner === owner)) out.push(r);
    }
    return out;
  }

  /** Marks the link revoked (kept until its hash expires, so its token is refused). */
  async revoke(id: string): Promise<void> {
    await this.redis.hset(this.key(id), 'revoked', '1');
  }

  async admit(id: string, countDownload: boolean): Promise<AdmitResult> {
    const [status, rate] = (await this.redis.eval(ADMIT, 1, this.key(id), countDownload ? '1' : '0')) as [number, string];
    if (status === -1) return { ok: false, why: 'unknown' };
    if (status === -2) return { ok: false, why: 'revoked' };
    if (status === -3) return { ok: false, why: 'exhausted' };
    return rate ? { ok: true, rateBytesPerSec: Number(rate) } : { ok: true };
  }
}
