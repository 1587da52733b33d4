/**
 * Export state in Redis, under the port's prefix P:
 *   P:exp:defs (hash name → ExportRecord JSON)   P:exp:runs:<name> (list of run ids, newest first)
 *   P:exp:run:<runId> (RunReport JSON)   P:exp:last:<name> (the last successful run: id and selection start)
 *   P:exp:sent:<name>:<destination hash> (hash relative path → what was exported intact: size, mtime, checksum)
 *   P:exp:lock:<name> (the run holding the export; expires unless renewed, so a dead process frees it)
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisKeys } from '../jobs/redis-keys.js';
import type { Principal } from '../auth/principal.js';
import type { ExportDefinition } from './export-definition.js';
import { ExportExistsError, ExportNotFoundError } from './export-errors.js';

export interface ExportRecord {
  definition: ExportDefinition;
  owner: string;
  /** The rights runs submit with: the creator's principal as the gateway verified it when the definition was stored. */
  principal: Principal;
  createdAt: string;
  updatedAt: string;
  paused: boolean;
}

export type RunState = 'running' | 'succeeded' | 'failed' | 'skipped';
export type RunTrigger = 'schedule' | 'catch-up' | 'manual';

export interface RunFailure {
  destination: string;
  path?: string;
  code: string;
  message: string;
}

export interface RunReport {
  runId: string;
  export: string;
  owner: string;
  trigger: RunTrigger;
  state: RunState;
  /** When the run was due (ISO), and how many ticks had passed unrun before it (catch-up). */
  scheduledFor: string;
  missedTicks?: number;
  startedAt: string;
  /** Wall-clock ms the selection began (files modified from then on are the next run's window). */
  selectionAt?: number;
  finishedAt?: string;
  reason?: string;
  note?: string;
  files: { selected: number; alreadyExported: number; submitted: number; finished: number; failed: number; canceled: number };
  bytes: number;
  jobs: Array<{ destination: string; jobId: string; files: number; state?: string }>;
  failures: RunFailure[];
  /** Failures beyond the ones listed (the report keeps at most 100). */
  moreFailures?: number;
  durationSec?: number;
  rateBytesPerSec?: number;
  deadline?: string;
  deadlineMissed?: boolean;
}

export interface SentRecord {
  size?: number;
  mtimeMs?: number;
  checksum?: string;
}

const RUN_TTL_SEC = 90 * 86400;

export class ExportStore {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  key(...parts: Array<string | number>): string {
    return [this.prefix, 'exp', ...parts].join(':');
  }

  async create(rec: ExportRecord): Promise<void> {
    const ok = await this.redis.hsetnx(this.key('defs'), rec.definition.name, JSON.stringify(rec));
    if (!ok) throw new ExportExistsError(rec.definition.name);
  }

  async put(rec: ExportRecord): Promise<void> {
    await this.redis.hset(this.key('defs'), rec.definition.name, JSON.stringify(rec));
  }

  async get(name: string): Promise<ExportRecord> {
    const raw = await this.redis.hget(this.key('defs'), name);
    if (raw === null) throw new ExportNotFoundError(name);
    return JSON.parse(raw) as ExportRecord;
  }

  async list(): Promise<ExportRecord[]> {
    const all = await this.redis.hvals(this.key('defs'));
    return all.map((r) => JSON.parse(r) as ExportRecord).sort((a, b) => (a.definition.name < b.definition.name ? -1 : 1));
  }

  /** Removes the definition and its history; the sent-files ledger goes too (a re-created export starts afresh). */
  async delete(name: string): Promise<void> {
    const runs = await this.redis.lrange(this.key('runs', name), 0, -1);
    const ledgers: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', this.key('sent', name, '*'), 'COUNT', 1000);
      cursor = next;
      ledgers.push(...keys);
    } while (cursor !== '0');
    await this.redis.multi()
      .hdel(this.key('defs'), name)
      .unlink(this.key('runs', name), this.key('last', name), ...runs.map((r) => this.key('run', r)), ...ledgers)
      .exec();
  }

  async saveRun(r: RunReport, history: number, isNew: boolean): Promise<void> {
    const m = this.redis.multi().set(this.key('run', r.runId), JSON.stringify(r), 'EX', RUN_TTL_SEC);
    if (isNew) m.lpush(this.key('runs', r.export), r.runId).ltrim(this.key('runs', r.export), 0, history - 1);
    await m.exec();
  }

  async getRun(runId: string): Promise<RunReport | undefined> {
    const raw = await this.redis.get(this.key('run', runId));
    return raw === null ? undefined : (JSON.parse(raw) as RunReport);
  }

  async history(name: string, limit: number): Promise<RunReport[]> {
    const ids = await this.redis.lrange(this.key('runs', name), 0, limit - 1);
    if (ids.length === 0) return [];
    const raw = await this.redis.mget(...ids.map((id) => this.key('run', id)));
    return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as RunReport);
  }

  async lastSuccess(name: string): Promise<{ runId: string; selectionAt: number } | undefined> {
    const raw = await this.redis.get(this.key('last', name));
    return raw === null ? undefined : (JSON.parse(raw) as { runId: string; selectionAt: number });
  }

  async setLastSuccess(name: string, v: { runId: string; selectionAt: number }): Promise<void> {
    await this.redis.set(this.key('last', name), JSON.stringify(v));
  }

  /** Takes the export's lock for `runId` unless another run holds it; returns the holder when refused. */
  async lock(name: string, runId: string, ttlMs: number): Promise<string | undefined> {
    const ok = await this.redis.set(this.key('lock', name), runId, 'PX', ttlMs, 'NX');
    if (ok === 'OK') return undefined;
    const holder = await this.redis.get(this.key('lock', name));
    if (holder === runId) return undefined;
    return holder ?? 'another run';
  }

  /** Renews the lock if `runId` still holds it; false when it was lost. */
  async renewLock(name: string, runId: string, ttlMs: number): Promise<boolean> {
    const r = await this.redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
      1, this.key('lock', name), runId, ttlMs,
    );
    return r === 1;
  }

  async unlock(name: string, runId: string): Promise<void> {
    await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end", 1, this.key('lock', name), runId);
  }

  private ledgerKey(name: string, destinationTemplate: string): string {
    return this.key('sent', name, createHash('sha256').update(destinationTemplate).digest('hex').slice(0, 16));
  }

  /** What the ledger holds for these relative paths (undefined where nothing was exported yet). */
  async sent(name: string, destinationTemplate: string, paths: string[]): Promise<Array<SentRecord | undefined>> {
    const out: Array<SentRecord | undefined> = [];
    const key = this.ledgerKey(name, destinationTemplate);
    for (let i = 0; i < paths.length; i += 1000) {
      const raw = await this.redis.hmget(key, ...paths.slice(i, i + 1000));
      for (const r of raw) out.push(r === null ? undefined : (JSON.parse(r) as SentRecord));
    }
    return out;
  }

  async recordSent(name: string, destinationTemplate: string, entries: Array<[string, SentRecord]>): Promise<void> {
    const key = this.ledgerKey(name, destinationTemplate);
    for (let i = 0; i < entries.length; i += 1000) {
      const flat: string[] = [];
      for (const [p, r] of entries.slice(i, i + 1000)) flat.push(p, JSON.stringify(r));
      await this.redis.hset(key, ...flat);
    }
  }

  /** Monotonic counters for /metrics, beside the jobs' (P:counters, fields `exportruns|<state>`, `exportdeadline|<name>`). */
  async count(field: string): Promise<void> {
    await this.redis.hincrby(new RedisKeys(this.prefix).port('counters'), field, 1);
  }

  async publish(event: Record<string, unknown>): Promise<void> {
    await this.redis.publish(new RedisKeys(this.prefix).port('events'), JSON.stringify(event));
  }
}
