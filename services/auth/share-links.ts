/**
 * Share links (issue 13): an identified user who may read a file or folder gets a time-limited, read-only,
 * revocable link for anyone. The link is a token minted and signed by the port's share issuer
 * (share-issuer.ts) with the one scope `storage.read:<path>`; its state (owner, downloads allowed and used,
 * byte-rate cap, revoked) is in the share store (share-store.ts), checked on every use.
 *
 * Requests come as dCache and XRootD answer them: `POST <path>` with `Content-Type: application/macaroon-request`
 * and `{"caveats": ["activity:DOWNLOAD,LIST"], "validity": "PT1H"}`; two extensions of ours, `downloads` and
 * `rateBytesPerSec`. Only read activities are given (DOWNLOAD, LIST, READ_METADATA); a validity above
 * `auth.shareMaxValiditySec` is refused, not shortened, so the caller knows what it got.
 */
import { BadShareRequestError, ForbiddenError, InvalidTokenError, ShareExhaustedError, ShareNotFoundError } from './auth-errors.js';
import { describe, type Principal, type ShareGrant } from './principal.js';
import { signShareToken, type ShareIssuerKey } from './share-issuer.js';
import { ShareStore, type ShareRecord } from './share-store.js';
import { TokenBucket } from '../throttle/token-bucket.js';
import type { RateLimiter } from '../throttle/rate-limiter.js';

const READ_ACTIVITIES = new Set(['DOWNLOAD', 'LIST', 'READ_METADATA']);
const ALL_ACTIVITIES = new Set([...READ_ACTIVITIES, 'UPLOAD', 'DELETE', 'MANAGE', 'UPDATE_METADATA', 'STAGE']);
const REQUEST_KEYS = new Set(['caveats', 'validity', 'downloads', 'rateBytesPerSec']);
const DEFAULT_VALIDITY_SEC = 3600;

export interface ShareRequest {
  download: boolean;
  validitySec: number;
  downloads?: number;
  rateBytesPerSec?: number;
}

function isoDurationSec(text: string): number | undefined {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return undefined;
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
}

/** Parses a macaroon-request body (dCache/XRootD form plus our two extensions). */
export function parseShareRequest(body: unknown, maxValiditySec: number): ShareRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadShareRequestError('the request body must be a JSON object such as {"caveats":["activity:DOWNLOAD,LIST"],"validity":"PT1H"}');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!REQUEST_KEYS.has(k)) throw new BadShareRequestError(`unknown field "${k.slice(0, 40)}" (caveats, validity, downloads, rateBytesPerSec)`, k);
  let activities: Set<string> | undefined;
  if (b['caveats'] !== undefined) {
    if (!Array.isArray(b['caveats']) || b['caveats'].some((c) => typeof c !== 'string')) throw new BadShareRequestError('caveats must be a list of strings', 'caveats');
    for (const c of b['caveats'] as string[]) {
      const colon = c.indexOf(':');
      const name = colon === -1 ? c : c.slice(0, colon);
      if (name !== 'activity') throw new BadShareRequestError(`caveat "${c.slice(0, 60)}" is not understood here (only activity:…)`, 'caveats');
      const asked = c.slice(colon + 1).split(',').map((a) => a.trim()).filter(Boolean);
      if (asked.length === 0) throw new BadShareRequestError('an activity caveat names no activity', 'caveats');
      for (const a of asked) {
        if (!ALL_ACTIVITIES.has(a)) throw new BadShareRequestError(`unknown activity "${a.slice(0, 40)}"`, 'caveats');
        if (!READ_ACTIVITIES.has(a)) throw new BadShareRequestError(`activity ${a} refused: share links are read-only (DOWNLOAD, LIST, READ_METADATA)`, 'caveats');
      }
      // Several activity caveats narrow each other (macaroon semantics: every caveat must hold).
      const these = new Set(asked);
      activities = activities ? new Set([...activities].filter((a) => these.has(a))) : these;
    }
  }
  let validitySec = Math.min(DEFAULT_VALIDITY_SEC, maxValiditySec);
  if (b['validity'] !== undefined) {
    const v = typeof b['validity'] === 'string' ? isoDurationSec(b['validity']) : undefined;
    if (v === undefined || v <= 0) throw new BadShareRequestError('validity must be an ISO 8601 duration such as PT1H or P1DT12H', 'validity');
    if (v > maxValiditySec) throw new BadShareRequestError(`validity ${b['validity'] as string} is longer than the ${maxValiditySec} s allowed here (auth.shareMaxValiditySec)`, 'validity');
    validitySec = v;
  }
  const posInt = (k: string): number | undefined => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new BadShareRequestError(`${k} must be a positive integer`, k);
    return v;
  };
  const downloads = posInt('downloads');
  const rate = posInt('rateBytesPerSec');
  return { download: activities === undefined || activities.has('DOWNLOAD'), validitySec, ...(downloads !== undefined ? { downloads } : {}), ...(rate !== undefined ? { rateBytesPerSec: rate } : {}) };
}

export interface MintedShare {
  id: string;
  token: string;
  record: ShareRecord;
}

/** Per-link byte-rate buckets of this process, dropped when the link is past its expiry. */
class LinkBuckets {
  private readonly buckets = new Map<string, { bucket: TokenBucket; until: number }>();
  get(id: string, rate: number, untilMs: number): RateLimiter {
    const now = Date.now();
    let b = this.buckets.get(id);
    if (!b || b.bucket.bytesPerSec !== rate) {
      if (this.buckets.size > 1024) for (const [k, v] of this.buckets) if (v.until < now) this.buckets.delete(k);
      b = { bucket: new TokenBucket({ bytesPerSec: rate }), until: untilMs };
      this.buckets.set(id, b);
    }
    return b.bucket;
  }
}

export class ShareLinks {
  private readonly buckets = new LinkBuckets();

  constructor(readonly store: ShareStore, private readonly key: ShareIssuerKey, readonly maxValiditySec: number) {}

  /** Who may make a link: an identified caller (not a share link itself). */
  static requireMaker(p: Principal): string {
    if (p.kind === 'anonymous') throw new InvalidTokenError('making a share link needs a bearer token');
    if (p.kind === 'token' && p.share) throw new ForbiddenError('a share link cannot make further links');
    return p.owner;
  }

  async mint(owner: string, path: string, r: ShareRequest, nowMs = Date.now()): Promise<MintedShare> {
    const id = ShareStore.newId();
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + r.validitySec;
    const record: ShareRecord = {
      id, owner, path, download: r.download, createdAt: new Date(iat * 1000).toISOString(), expiresAt: new Date(exp * 1000).toISOString(),
      used: 0, revoked: false,
      ...(r.downloads !== undefined ? { downloads: r.downloads } : {}),
      ...(r.rateBytesPerSec !== undefined ? { rateBytesPerSec: r.rateBytesPerSec } : {}),
    };
    await this.store.create(record);
    const token = signShareToken(this.key, { id, owner, path, download: r.download, issuedAtSec: iat, expiresAtSec: exp });
    return { id, token, record };
  }

  list(p: Principal): Promise<ShareRecord[]> {
    return this.store.list(p.admin ? undefined : p.owner);
  }

  /** Revokes link `id`: its maker or an administrator. Someone else's link is "not found" (ids are not revealed). */
  async revoke(p: Principal, id: string): Promise<ShareRecord> {
    const r = await this.store.get(id);
    if (!r || (!p.admin && r.owner !== p.owner)) throw new ShareNotFoundError(`no share link ${id.slice(0, 40)} of ${describe(p)}`);
    await this.store.revoke(id);
    return { ...r, revoked: true };
  }

  /**
   * The per-use check of a share principal, after its scope allowed the action: the link must be known and not
   * revoked; a counted download takes one of its downloads. Returns the link's rate limiter, if it has a cap.
   */
  async admit(share: ShareGrant, expiresAtSec: number, countDownload: boolean): Promise<RateLimiter | undefined> {
    const a = await this.store.admit(share.id, countDownload);
    if (!a.ok) {
      if (a.why === 'exhausted') throw new ShareExhaustedError(`share link ${share.id}: its downloads are used up`);
      throw new InvalidTokenError(a.why === 'revoked' ? 'the share link was revoked' : 'the share link is not known here');
    }
    return a.rateBytesPerSec ? this.buckets.get(share.id, a.rateBytesPerSec, expiresAtSec * 1000) : undefined;
  }
}
