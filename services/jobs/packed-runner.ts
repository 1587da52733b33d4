/**
 * Packed small-file transfers (`params.processing.pack`): a run-queue bundle of a packed job's files goes as tar
 * archives instead of one transfer per file. Each file is still claimed (START) and closed (END) on its own through
 * the job store, so per-file states, attempts, retries and checksums stay what the API shows for unpacked jobs:
 *
 * - the bundle's files are claimed; those that can be packed (a local source; a cargoport storage endpoint or a
 *   local destination) are grouped by destination (origin and their deepest common collection) and split by the
 *   job's pack options (pack-plan.ts); any other file runs on its own as usual (transfer-runner.ts's runClaimed);
 * - each archive is packed from the sources with every member's checksums (the job's algorithm and the pack's),
 *   a file whose bytes miss its submitted checksum is left out and failed alone;
 * - to a cargoport destination the archive is one PUT to the collection (`X-Cargoport-Unpack: 1`,
 *   gateway/storage/packed-put.ts), which answers a result per member; to a local destination this worker unpacks it
 *   (TarUnpacker: checked, written to part files, summed, fsynced, published by link one by one);
 * - every member is then closed with its own outcome: published → FINISHED; failed at the receiver → its error
 *   (retryable as its code is); not reported (the request failed, the archive was refused) → retried, so a retry
 *   packs only what did not arrive. A member the destination already holds under `existing: skip-identical` runs
 *   through the per-file path, which compares it.
 */
import { lstat } from 'node:fs/promises';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { errorSpec, type ErrorCode } from '../../errors/catalogue.js';
import { isCargoError } from '../../errors/cargo-error.js';
import { planArchives } from '../processing/pack-plan.js';
import type { PackOptions } from '../processing/processing-spec.js';
import { createTarPack, type PackMember } from '../processing/tar-pack.js';
import { TarUnpacker, type MemberReport } from '../processing/tar-unpack.js';
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import type { ActiveTransfer, AbortReason } from './active-transfers.js';
import type { EndReport, StartResult } from './job-store.js';
import type { JobParams } from './model.js';
import { parseMember } from './file-record.js';
import { chainOf, planOf } from './file-processing.js';
import { existingPolicy, retryDelayMs, runClaimed, type RunnerDeps } from './transfer-runner.js';

/** What a packed run needs beyond the per-file runner. */
export interface PackedDeps {
  /** One PUT of an archive to a cargoport collection URL (ends with `/`); resolves with the status and the body. */
  putPacked(req: { url: string; body: Readable; headers: Record<string, string>; signal: AbortSignal }): Promise<{ status: number; body: string; remoteIp?: string; protocol?: string }>;
  /** Bounds of an archive unpacked by this worker (processing.tar*). */
  unpackLimits: { maxMemberBytes: number; maxNameBytes: number; maxMembers: number };
  /**
   * One GET of a small remote source into memory (at most `maxBytes`; more is an error), on the engine's pooled
   * HTTP/2 connections. Without it, files with remote sources run one by one.
   */
  fetchSource?(req: { url: string; headers: Record<string, string>; signal: AbortSignal; maxBytes: number }): Promise<{ status: number; body: Buffer; lastModified?: string }>;
}

/** Remote sources up to this size are fetched into memory and packed; larger ones travel alone. */
export const PACKED_REMOTE_MAX_BYTES = 1024 * 1024;
/** Remote members fetched at once (HTTP/2 streams in flight) while an archive is packed. */
const FETCH_AHEAD = 32;

const DEFAULT_PACK: PackOptions = { maxMembers: 1000, maxBytes: 256 * 1024 * 1024, zstdLevel: 0, checksums: ['adler32'] };

/** The job's pack options, when it asked for packing (`params.processing.pack`). */
export function packOf(params: Pick<JobParams, 'processing'>): PackOptions | undefined {
  const p = params.processing as unknown;
  // (zstdLevel is not applied: archives travel as plain tar; README "Packed small-file transfers".)
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return undefined;
  const pack = (p as { pack?: Partial<PackOptions> }).pack;
  if (pack === undefined || pack === null || typeof pack !== 'object') return undefined;
  return { ...DEFAULT_PACK, ...pack };
}

type Claimed = Extract<StartResult, { kind: 'run' }>;

interface Item {
  member: string;
  claim: Claimed;
  jobId: string;
  idx: number;
  /** Name in the archive: the destination's path below the group's collection. */
  name: string;
  size: number;
  t: ActiveTransfer;
}

interface Outcome {
  kind: 'ok' | 'error' | 'cancel' | 'requeue' | 'per-file';
  code?: ErrorCode;
  message?: string;
  retryable?: boolean;
  checksums?: Partial<Record<ChecksumAlg, string>>;
}

/**
 * Whether a claimed file can travel packed: a local source, or a remote one of declared size up to
 * PACKED_REMOTE_MAX_BYTES when the worker can fetch; to a cargoport (http/https) or local destination.
 */
function packable(c: Claimed, packed: PackedDeps, deps: RunnerDeps): boolean {
  if (!withoutStages(c, deps)) return false;
  const remote = /^https?:/.test(c.spec.source);
  if (!c.spec.source.startsWith('file:') && !(remote && packed.fetchSource && c.spec.size !== undefined && c.spec.size <= PACKED_REMOTE_MAX_BYTES)) return false;
  return /^(https?|file):/.test(c.spec.destination);
}

/**
 * A packed file runs no stages: its job's emission/reception and the operator's rules for its endpoints must give
 * none (an archive would bypass them), and it has no processing of its own. Otherwise it runs on its own.
 */
function withoutStages(c: Claimed, deps: RunnerDeps): boolean {
  if (c.spec.processing !== undefined) return false;
  const raw = c.params.processing;
  if (raw !== undefined && !Array.isArray(raw) && ((raw.emission?.length ?? 0) > 0 || (raw.reception?.length ?? 0) > 0)) return false;
  if (!deps.processing) return true;
  try {
    return chainOf(deps.processing, planOf(deps.processing, c.params, c.spec), c.spec.source, c.spec.destination).empty;
  } catch {
    return false; // the per-file path reports what is wrong with the file's processing
  }
}

/** Decoded path segments of a destination URL. */
function destSegments(url: string): string[] {
  if (url.startsWith('file:')) return fileURLToPath(url).split('/').filter(Boolean);
  return new URL(url).pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
}

function destGroupKey(url: string): string {
  return url.startsWith('file:') ? 'file:' : new URL(url).origin;
}

export async function runPackedBundle(members: string[], deps: RunnerDeps, packed: PackedDeps): Promise<void> {
  const claims = await Promise.all(members.map(async (member) => ({ member, claim: await deps.store.start(member, deps.workerId) })));
  const alone: Array<{ member: string; claim: Claimed }> = [];
  const groups = new Map<string, Array<{ member: string; claim: Claimed }>>();
  for (const { member, claim } of claims) {
    if (claim.kind !== 'run') continue;
    if (!packOf(claim.params) || !packable(claim, packed, deps)) {
      alone.push({ member, claim });
      continue;
    }
    const key = `${member.slice(0, member.indexOf('_'))}|${destGroupKey(claim.spec.destination)}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push({ member, claim });
  }
  await Promise.all([...groups.values()].map((g) => runGroup(g, deps, packed)));
  for (const { member, claim } of alone) await runClaimed(member, claim, deps);
}

async function runGroup(group: Array<{ member: string; claim: Claimed }>, deps: RunnerDeps, packed: PackedDeps): Promise<void> {
  const first = group[0]!.claim;
  const pack = packOf(first.params)!;
  // The deepest collection holding every destination of the group; members are named below it.
  const segs = group.map((g) => destSegments(g.claim.spec.destination));
  let common = segs[0]!.slice(0, -1);
  for (const s of segs) {
    let i = 0;
    while (i < common.length && i < s.length - 1 && common[i] === s[i]) i++;
    common = common.slice(0, i);
  }
  const controller = new AbortController();
  const items: Item[] = [];
  const outcomes = new Map<Item, Outcome>();
  // Sizes as declared (the CLI declares them; a bundle only holds files of declared size), else asked here.
  const sizes = await Promise.all(group.map((g) => g.claim.spec.size ?? lstat(fileURLToPath(g.claim.spec.source)).then((st) => st, (e: NodeJS.ErrnoException) => e)));
  for (let i = 0; i < group.length; i++) {
    const { member, claim } = group[i]!;
    const { jobId, idx } = parseMember(member);
    const t: ActiveTransfer = { jobId, idx, run: claim.run, link: claim.spec.link, controller, bytes: 0, reportedBytes: 0, startedAt: Date.now() };
    deps.active.add(t);
    const st = sizes[i]!;
    const item: Item = { member, claim, jobId, idx, name: segs[i]!.slice(common.length).join('/'), size: 0, t };
    items.push(item);
    if (typeof st === 'number') item.size = st;
    else if (st instanceof Error) {
      outcomes.set(item, { kind: 'error', code: st.code === 'ENOENT' ? 'CARGO_ERR_SOURCE_NOT_FOUND' : 'CARGO_ERR_INTERNAL', message: `source ${claim.spec.source}: ${st.message}`, retryable: st.code !== 'ENOENT' });
    } else if (!st.isFile()) {
      outcomes.set(item, { kind: 'error', code: 'CARGO_ERR_SOURCE_NOT_FOUND', message: `source ${claim.spec.source} is not a regular file`, retryable: false });
    } else {
      item.size = st.size;
    }
  }
  const started = Date.now();
  let remote: { ip?: string; protocol?: string } = {};
  try {
    const toSend = items.filter((it) => !outcomes.has(it));
    const plan = planArchives(toSend.map((it) => ({ id: it.name, size: it.size, it })), pack);
    // Files too large to pack travel on their own.
    const aloneItems = new Set(plan.alone.map((a) => a.it));
    for (const it of aloneItems) outcomes.set(it, { kind: 'per-file' });
    const destBase = first.spec.destination.startsWith('file:') ? undefined : new URL(first.spec.destination).origin;
    for (const archive of plan.archives) {
      if (controller.signal.aborted) break;
      const byName = new Map(archive.map((a) => [a.it.name, a.it]));
      const packMembers = membersOf(archive.map((a) => a.it), deps, packed, controller.signal, (it, o) => outcomes.set(it, o));
      const algs = new Set<ChecksumAlg>(pack.checksums);
      for (const { it } of archive) if (it.claim.spec.checksum) algs.add(it.claim.spec.checksum.alg);
      const body = createTarPack(packMembers, {
        checksums: [...algs], maxMembers: pack.maxMembers, signal: controller.signal,
        onSkipped: (name, reason, why) => outcomes.set(byName.get(name)!, {
          kind: 'error', code: why === 'missing' ? 'CARGO_ERR_SOURCE_NOT_FOUND' : 'CARGO_ERR_CHECKSUM_MISMATCH', message: reason, retryable: false,
        }),
      });
      const overwrite = existingPolicy(first.params) === 'overwrite';
      try {
        if (destBase === undefined) {
          const target = '/' + common.join('/');
          await unpackLocally(body, target, overwrite, packed, (r) => {
            const it = byName.get(r.name);
            if (it) outcomes.set(it, reportOutcome(r.state === 'published', r.code, r.reason, r.checksums, first.params));
          });
        } else {
          const url = destBase + '/' + common.map(encodeURIComponent).join('/') + (common.length ? '/' : '');
          const creds = deps.outbound?.forTransfer({ source: first.spec.source, destination: url, overwrite });
          const auth = creds ? await creds.provider({ url, role: 'destination', method: 'PUT' }) : {};
          const res = await packed.putPacked({
            url, body, signal: controller.signal,
            headers: { 'content-type': 'application/x-tar', 'x-cargoport-unpack': '1', overwrite: overwrite ? 'T' : 'F', ...auth },
          });
          remote = { ...(res.remoteIp ? { ip: res.remoteIp } : {}), ...(res.protocol ? { protocol: res.protocol } : {}) };
          let parsed: { members?: Array<{ name: string; state: string; code?: ErrorCode; reason?: string; checksums?: Partial<Record<ChecksumAlg, string>> }>; code?: ErrorCode; detail?: string } = {};
          try {
            parsed = JSON.parse(res.body) as typeof parsed;
          } catch { /* not JSON: every member unreported below */ }
          for (const m of parsed.members ?? []) {
            const it = byName.get(m.name);
            if (it) outcomes.set(it, reportOutcome(m.state === 'published', m.code, m.reason, m.checksums, first.params));
          }
          if (res.status !== 200) {
            const code: ErrorCode = parsed.code ?? (res.status === 401 || res.status === 403 ? 'CARGO_ERR_FORBIDDEN' : res.status >= 500 ? 'CARGO_ERR_HTTP_5XX' : 'CARGO_ERR_HTTP_4XX');
            const message = `packed upload to ${url} answered HTTP ${res.status}${parsed.detail ? `: ${parsed.detail}` : ''}`;
            const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
            for (const { it } of archive) if (!outcomes.has(it)) outcomes.set(it, { kind: 'error', code, message, retryable });
          }
        }
      } catch (e) {
        const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
        for (const { it } of archive) {
          if (outcomes.has(it)) continue;
          if (reason === 'cancel') outcomes.set(it, { kind: 'cancel' });
          else if (reason) outcomes.set(it, { kind: 'requeue' });
          else outcomes.set(it, { kind: 'error', code: isCargoError(e) ? e.code : 'CARGO_ERR_INTERNAL', message: `packed transfer: ${(e as Error).message}`, retryable: true });
        }
      }
    }
  } finally {
    for (const it of items) deps.active.remove(it.t);
  }
  const secs = Math.max(0.001, (Date.now() - started) / 1000);
  const perFile: Item[] = [];
  const queued: Array<{ member: string; delayMs: number }> = [];
  await Promise.all(items.map(async (it) => {
    const o = outcomes.get(it) ?? { kind: 'error', code: 'CARGO_ERR_INTERNAL' as ErrorCode, message: 'the packed transfer did not report this member', retryable: true };
    if (o.kind === 'per-file') {
      perFile.push(it);
      return;
    }
    const { spec, params, state } = it.claim;
    let report: EndReport;
    let outcome: 'ok' | 'error' | 'cancel' | 'requeue' = o.kind;
    if (o.kind === 'ok') {
      const alg = spec.checksum?.alg ?? pack.checksums[0];
      report = {
        bytes: it.size, rateBytesPerSec: Math.round(it.size / secs), resumedBytes: 0, protocol: remote.protocol ?? 'packed',
        ...(remote.ip ? { remoteIp: remote.ip } : {}), ...(alg && o.checksums?.[alg] ? { checksumValue: o.checksums[alg] } : {}),
        note: 'sent packed (tar)',
      };
    } else if (o.kind === 'cancel' || o.kind === 'requeue') {
      report = { bytes: 0, errorCode: 'CARGO_ERR_ABORTED', errorMessage: o.kind === 'cancel' ? 'canceled' : 'stopped; requeued' };
    } else {
      report = { bytes: 0, errorCode: o.code ?? 'CARGO_ERR_INTERNAL', errorMessage: o.message ?? 'failed' };
      outcome = 'error';
    }
    const end = await deps.store.end({
      jobId: it.jobId, idx: it.idx, run: it.claim.run, link: spec.link, outcome, report, retryable: o.retryable ?? false,
      retryDelayMs: retryDelayMs(params.retryDelaySec, state.t + 1), unreportedBytes: o.kind === 'ok' ? it.size : 0,
    });
    if (end.kind === 'queued') queued.push({ member: end.member, delayMs: end.delayMs });
  }));
  if (queued.length) await deps.enqueue(queued);
  for (const it of perFile) await runClaimed(it.member, it.claim, deps);
}

/**
 * The archive's members in order: local files by path; remote ones fetched FETCH_AHEAD at a time (HTTP/2 streams in
 * flight on the engine's connections) and given as bytes, with the source's Last-Modified as mtime. A source that
 * cannot be fetched fails alone (404: not found, not retried; anything else retried) and is left out.
 */
async function* membersOf(items: Item[], deps: RunnerDeps, packed: PackedDeps, signal: AbortSignal, fail: (it: Item, o: Outcome) => void): AsyncGenerator<PackMember> {
  const expected = (it: Item) => (it.claim.spec.checksum?.value ? { expected: { alg: it.claim.spec.checksum.alg, value: it.claim.spec.checksum.value } } : {});
  const fetchOne = async (it: Item): Promise<PackMember | undefined> => {
    const { source, destination } = it.claim.spec;
    try {
      const creds = deps.outbound?.forTransfer({ source, destination, overwrite: false });
      const auth = creds ? await creds.provider({ url: source, role: 'source', method: 'GET' }) : {};
      const r = await packed.fetchSource!({ url: source, headers: auth, signal, maxBytes: PACKED_REMOTE_MAX_BYTES });
      if (r.status !== 200) {
        fail(it, {
          kind: 'error', code: r.status === 404 ? 'CARGO_ERR_SOURCE_NOT_FOUND' : r.status === 401 || r.status === 403 ? 'CARGO_ERR_FORBIDDEN' : r.status >= 500 ? 'CARGO_ERR_HTTP_5XX' : 'CARGO_ERR_HTTP_4XX',
          message: `source ${source} answered HTTP ${r.status}`, retryable: r.status >= 500 || r.status === 429 || r.status === 408,
        });
        return undefined;
      }
      it.size = r.body.length;
      const modified = r.lastModified ? Date.parse(r.lastModified) : NaN;
      return { source, name: it.name, type: 'file', data: r.body, ...(Number.isFinite(modified) ? { mtimeMs: modified } : {}), ...expected(it) };
    } catch (e) {
      if (!signal.aborted) fail(it, { kind: 'error', code: isCargoError(e) ? e.code : 'CARGO_ERR_INTERNAL', message: `fetching ${source}: ${(e as Error).message}`, retryable: true });
      return undefined;
    }
  };
  const ahead: Array<Promise<PackMember | undefined>> = [];
  let next = 0;
  const fill = () => {
    while (ahead.length < FETCH_AHEAD && next < items.length) {
      const it = items[next++]!;
      if (it.claim.spec.source.startsWith('file:')) ahead.push(Promise.resolve({ source: fileURLToPath(it.claim.spec.source), name: it.name, type: 'file', ...expected(it) }));
      else ahead.push(fetchOne(it));
    }
  };
  fill();
  while (ahead.length > 0) {
    const m = await ahead.shift()!;
    fill();
    if (m) yield m;
  }
}

/** A member's result at the receiver as its file's outcome. An existing file under skip-identical is compared per file. */
function reportOutcome(ok: boolean, code: ErrorCode | undefined, reason: string | undefined, checksums: Partial<Record<ChecksumAlg, string>> | undefined, params: JobParams): Outcome {
  if (ok) return { kind: 'ok', ...(checksums ? { checksums } : {}) };
  if ((code === 'CARGO_ERR_EXISTS' || code === 'CARGO_ERR_DEST_EXISTS') && existingPolicy(params) === 'skip-identical') return { kind: 'per-file' };
  const c: ErrorCode = code ?? 'CARGO_ERR_INTERNAL';
  return { kind: 'error', code: c, message: reason ?? 'failed at the destination', retryable: errorSpec(c)?.retryable ?? false };
}

/** A local destination: this worker unpacks the archive into `target` (each member durable, published by link). */
async function unpackLocally(body: Readable, target: string, overwrite: boolean, packed: PackedDeps, onMember: (r: MemberReport) => void): Promise<void> {
  const unpacker = new TarUnpacker({
    target, ...packed.unpackLimits, requireChecksums: true, overwrite, durable: true, publish: 'each', failOnMemberError: false, onMember,
  });
  await pipeline(body, unpacker, new Writable({ write: (_c, _e, cb) => cb() }));
}

