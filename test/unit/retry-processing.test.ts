/** `cargoport retry` resubmits a job's processing (job-level and per file), and drops the `[]` of older jobs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retrySubmission } from '../../bin/commands/files.js';
import type { FileView, JobSummary } from '../../services/jobs/model.js';

const file = (processing?: FileView['processing']): FileView => ({
  fileId: 0, jobId: 'j', state: 'FAILED', bytes: 0, attempts: [], source: 'https://s/a', destination: 'file:///d/a',
  ...(processing ? { processing } : {}),
});
const job = (processing: unknown): JobSummary => ({ params: { priority: 3, retries: 1, retryDelaySec: 0, verifyChecksum: 'none', overwrite: false, processing } } as unknown as JobSummary);

test('retry keeps params.processing and a file\'s own processing; a legacy [] is dropped', () => {
  const p = { emission: [{ stage: 'zstd', level: 1 }] };
  const r = retrySubmission(job(p), [file({ reception: [{ stage: 'checksum' }] })]);
  assert.deepEqual(r.params['processing'], p);
  assert.deepEqual(r.files[0]!['processing'], { reception: [{ stage: 'checksum' }] });
  const legacy = retrySubmission(job([]), [file()]);
  assert.equal('processing' in legacy.params, false);
  assert.equal('processing' in legacy.files[0]!, false);
});
