/** Job submission: a job's scitags experiment / activity names become each file's flow id; unknown names are refused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseSubmission } from '../../services/jobs/submission.js';

const defaults = { priority: 3, retries: 0, retryDelaySec: 0, maxFilesPerJob: 10 };
const file = (n: number, extra: Record<string, unknown> = {}) => ({ source: `https://a.example/f${n}`, destination: `https://b.example/f${n}`, ...extra });

test('params.experiment with each file\'s activity becomes its scitag; an explicit scitag wins', () => {
  const job = normaliseSubmission({
    files: [file(1, { activity: 'Production Output' }), file(2), file(3, { scitag: 206, activity: 'Staging' })],
    params: { experiment: 'ATLAS' },
  }, 'alice', defaults);
  assert.deepEqual(job.files.map((f) => f.scitag), [144, 129, 206]);
});

test('names the registry lacks are refused with CARGO_ERR_BAD_SCITAG naming the field', () => {
  assert.throws(() => normaliseSubmission({ files: [file(1)], params: { experiment: 'nosuch' } }, 'a', defaults),
    { code: 'CARGO_ERR_BAD_SCITAG', field: 'params.experiment' });
  assert.throws(() => normaliseSubmission({ files: [file(1), file(2, { activity: 'Cache' })], params: { experiment: 'atlas' } }, 'a', defaults),
    { code: 'CARGO_ERR_BAD_SCITAG', field: 'files[1].activity' });
});
