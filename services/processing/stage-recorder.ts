/**
 * What observing stages report about one file (checksums of the raw and of the processed bytes, members
 * unpacked), for the worker to store with the file's attempt. One recorder per file; a record is keyed by the
 * stage's label, so a retried attempt replaces the previous attempt's record instead of adding to it.
 */
import type { ChecksumAlg } from '../checksum/checksum-types.js';
import type { StageSide } from './stream-stage.js';

export interface ChecksumRecord {
  readonly kind: 'checksum';
  readonly stage: string;
  readonly side: StageSide;
  /** The user's name for what was summed (`raw`, `compressed`…), default the stage label. */
  readonly label: string;
  readonly bytes: number;
  readonly checksums: Partial<Record<ChecksumAlg, string>>;
}

export interface UnpackRecord {
  readonly kind: 'unpack';
  readonly stage: string;
  readonly side: StageSide;
  readonly members: number;
  readonly published: number;
  readonly failed: number;
  readonly bytes: number;
}

export type StageRecord = ChecksumRecord | UnpackRecord;

export class StageRecorder {
  private readonly byStage = new Map<string, StageRecord>();

  record(r: StageRecord): void {
    this.byStage.set(r.stage, r);
  }

  /** Every record, in the order the stages first reported. */
  records(): StageRecord[] {
    return [...this.byStage.values()];
  }
}
