/**
 * How one file is stored in Redis: its immutable spec (an array in `job:<id>:spec`) and its mutable state (a small
 * JSON object in `job:<id>:fs`, written by the Lua scripts; field names in lua/includes/common.lua), and the
 * run-queue member naming one queueing of it.
 */
import { CargoError } from '../../errors/cargo-error.js';
import { formatChecksumSpec, parseChecksumSpec } from '../checksum/checksum-spec.js';
import { linkOf, type AttemptRecord, type FileSpec, type FileState, type ProcessingParams } from './model.js';
import type { ResumeState } from '../transfer/types.js';

/**
 * Spec array stored per file: [source, destination, size, checksum, scitag, activity, metadata, link, processing?]
 * (the Lua scripts read the link at index 8; a file's own processing, when it has one, is a ninth element).
 */
type SpecArray = [string, string, number | null, string | null, number | null, string | null, Record<string, unknown> | null, string, ProcessingParams?];

export function encodeSpec(f: FileSpec): string {
  const arr: SpecArray = [
    f.source, f.destination, f.size ?? null, f.checksum ? formatChecksumSpec(f.checksum) : null,
    f.scitag ?? null, f.activity ?? null, f.metadata ?? null, linkOf(f.source, f.destination),
  ];
  if (f.processing !== undefined) arr.push(f.processing);
  return JSON.stringify(arr);
}

export function decodeSpec(json: string): FileSpec & { link: string } {
  const a = JSON.parse(json) as SpecArray;
  const f: FileSpec & { link: string } = { source: a[0], destination: a[1], link: a[7] };
  if (a[2] !== null) f.size = a[2];
  if (a[3] !== null) f.checksum = parseChecksumSpec(a[3], 'checksum');
  if (a[4] !== null) f.scitag = a[4];
  if (a[5] !== null) f.activity = a[5];
  if (a[6] !== null) f.metadata = a[6];
  if (a[8] !== undefined && a[8] !== null) f.processing = a[8];
  return f;
}

/** The mutable per-file state as stored by the Lua scripts. */
export interface FileStateRecord {
  s: FileState;
  q: number;
  r: number;
  t: number;
  a: AttemptRecord[];
  e?: { code: string; message: string };
  cv?: string;
  rs?: ResumeState;
  cx?: number;
  bf?: number;
  /** Times held by a full destination. */
  h?: number;
}

export function decodeFileState(json: string | null | undefined): FileStateRecord {
  if (!json) return { s: 'SUBMITTED', q: 0, r: 0, t: 0, a: [] };
  const o = JSON.parse(json) as FileStateRecord;
  if (!Array.isArray(o.a)) o.a = [];
  if (o.rs && !Array.isArray(o.rs.done)) o.rs.done = [];
  return o;
}

/** `<jobId>_<idx>_<q>`: the BullMQ job id of one queueing of one file. */
export function parseMember(member: string): { jobId: string; idx: number; q: number } {
  const m = /^(.+)_(\d+)_(\d+)$/.exec(member);
  if (!m) throw new CargoError('CARGO_ERR_INTERNAL', `bad run-queue member ${JSON.stringify(member.slice(0, 200))}`);
  return { jobId: m[1]!, idx: Number(m[2]), q: Number(m[3]) };
}
