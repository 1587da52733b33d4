/**
 * `cargoport share PATH --for 1h [--downloads N] [--rate 10M]`: asks the port for a share link to PATH (a path of
 * the storage namespace, e.g. /data/results/run1.root or /results/run1.root) with the same request dCache and XRootD
 * answer (POST with Content-Type application/macaroon-request) and prints the URL anyone can open.
 * `cargoport shares list` lists the caller's links (an administrator: everyone's); `cargoport shares revoke ID`.
 */
import { clientOptionHelp, clientOptions, expectPositionals, loadConfigFor, printJson, withApi, type Command } from '../command.js';
import { UsageError } from '../usage-error.js';

interface ShareAnswer {
  macaroon: string;
  uri: { targetWithMacaroon: string; baseUri: string; target: string };
  id: string;
  expiresAt: string;
}

interface ShareRecord {
  id: string;
  owner: string;
  path: string;
  expiresAt: string;
  downloads?: number;
  used: number;
  rateBytesPerSec?: number;
  revoked: boolean;
}

/** `1h`, `90m`, `2d`, `3600` → seconds. */
export function durationSec(v: string, what: string): number {
  const m = /^([0-9]+)\s*([smhd]?)$/.exec(v.trim());
  if (!m || Number(m[1]) === 0) throw new UsageError(`${what} ${JSON.stringify(v)} is not a duration such as 3600, 90m, 1h, 7d`, what.replace(/^--/, ''));
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]!]!;
}

/** `10M`, `500k`, `1G`, `2Mi`, `1048576` → bytes per second (k/M/G decimal, Ki/Mi/Gi binary). */
export function byteRate(v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(|k|K|M|G|Ki|Mi|Gi)(?:B)?(?:\/s)?$/.exec(v.trim());
  if (!m) throw new UsageError(`--rate ${JSON.stringify(v)} is not a byte rate such as 500k, 10M, 2Mi`, 'rate');
  const mult = ({ '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 } as Record<string, number>)[m[2]!]!;
  const n = Math.round(Number(m[1]) * mult);
  if (n < 1) throw new UsageError('--rate must be at least 1 byte/s', 'rate');
  return n;
}

/** The storage URL path of a namespace PATH, given with or without the endpoint's prefix. */
function storageUrlPath(path: string, urlPrefix: string): string {
  if (!path.startsWith('/')) throw new UsageError(`PATH must be absolute (got ${JSON.stringify(path)})`, 'path');
  const ns = path === urlPrefix || path.startsWith(urlPrefix + '/') ? path.slice(urlPrefix.length) || '/' : path;
  return urlPrefix + ns.split('/').map(encodeURIComponent).join('/');
}

export const shareCommand: Command = {
  name: 'share',
  args: 'PATH --for DURATION',
  summary: 'print a time-limited, read-only link to a file or folder that anyone can open',
  options: { ...clientOptions, for: { type: 'string' }, downloads: { type: 'string' }, rate: { type: 'string' }, 'list-only': { type: 'boolean' } },
  optionHelp: [
    '--for DURATION   how long the link works: 3600, 90m, 1h, 7d (default 1h; at most auth.shareMaxValiditySec)',
    '--downloads N    the link downloads files at most N times in all',
    '--rate RATE      cap the link\'s downloads together at RATE bytes/s (500k, 10M, 2Mi)',
    '--list-only      a folder link that lists and stats but downloads nothing',
    ...clientOptionHelp,
  ],
  async run(ctx) {
    expectPositionals(ctx, 1, 1, 'PATH');
    const cfg = loadConfigFor(ctx);
    const sec = durationSec((ctx.values.for as string | undefined) ?? '1h', '--for');
    const downloads = ctx.values.downloads as string | undefined;
    if (downloads !== undefined && !/^[1-9][0-9]{0,8}$/.test(downloads)) throw new UsageError('--downloads must be a positive integer', 'downloads');
    const body = {
      caveats: [ctx.values['list-only'] ? 'activity:LIST,READ_METADATA' : 'activity:DOWNLOAD,LIST'],
      validity: `PT${sec}S`,
      ...(downloads !== undefined ? { downloads: Number(downloads) } : {}),
      ...(ctx.values.rate !== undefined ? { rateBytesPerSec: byteRate(ctx.values.rate as string) } : {}),
    };
    const path = storageUrlPath(ctx.positionals[0]!, cfg.storage.urlPrefix);
    const answer = await withApi(ctx, (api) => api.postRaw<ShareAnswer>(path, JSON.stringify(body), 'application/macaroon-request'));
    if (ctx.values.json) printJson(ctx, answer);
    else ctx.out.write(`${answer.uri.targetWithMacaroon}\n`);
    return 0;
  },
};

function shareLine(s: ShareRecord): string {
  const uses = s.downloads !== undefined ? `${s.used}/${s.downloads}` : `${s.used}/-`;
  const rate = s.rateBytesPerSec !== undefined ? `${s.rateBytesPerSec} B/s` : '-';
  return `${s.id}  ${s.revoked ? 'revoked' : 'active '}  until ${s.expiresAt}  downloads ${uses}  rate ${rate}  ${s.owner}  ${s.path}`;
}

export const sharesCommand: Command = {
  name: 'shares',
  args: 'list | revoke ID',
  summary: 'list your share links, or revoke one',
  options: { ...clientOptions },
  optionHelp: clientOptionHelp,
  async run(ctx) {
    expectPositionals(ctx, 1, 2, 'list | revoke ID');
    const [op, id] = ctx.positionals as [string, string | undefined];
    if (op === 'list') {
      expectPositionals(ctx, 1, 1, 'list');
      const list = await withApi(ctx, (api) => api.get<ShareRecord[]>('/shares'));
      if (ctx.values.json) printJson(ctx, list);
      else if (list.length === 0) ctx.out.write('no share links\n');
      else for (const s of list) ctx.out.write(shareLine(s) + '\n');
      return 0;
    }
    if (op === 'revoke') {
      if (id === undefined) throw new UsageError('shares revoke needs the link\'s ID (see `cargoport shares list`)', 'id');
      const r = await withApi(ctx, (api) => api.delete<ShareRecord>(`/shares/${encodeURIComponent(id)}`));
      if (ctx.values.json) printJson(ctx, r);
      else ctx.out.write(`revoked ${r.id}\n`);
      return 0;
    }
    throw new UsageError(`unknown shares operation ${JSON.stringify(op)} (list, revoke)`, 'op');
  },
};
