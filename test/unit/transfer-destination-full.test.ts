/** Which failures say the destination can take no more bytes (a condition of the destination, not of the file). */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { destinationFullCause, largerThanVolumeError, localVolumeBytes } from '../../services/transfer/destination-full.js';
import { classifyError, errorForHttpStatus } from '../../services/transfer/transfer-errors.js';

const fsError = (code: string) => Object.assign(new Error(`${code}: write failed`), { code });

test('ENOSPC, EDQUOT and EROFS of a local file, and a destination\'s HTTP 507, are a full destination', () => {
  for (const code of ['ENOSPC', 'EDQUOT', 'EROFS']) assert.equal(destinationFullCause(classifyError(fsError(code), 'local', '/data/x')), code);
  assert.equal(destinationFullCause(errorForHttpStatus(507, 'destination', 'https://se.example/x')), 'HTTP 507');
  assert.equal(classifyError(fsError('EDQUOT'), 'local', '/data/x').retryable, true, 'a quota may be raised');
});

test('other failures are not: a source\'s 507, other local errors, other statuses, network errors', () => {
  assert.equal(destinationFullCause(errorForHttpStatus(507, 'source', 'https://se.example/x')), undefined);
  assert.equal(destinationFullCause(errorForHttpStatus(503, 'destination', 'https://se.example/x')), undefined);
  assert.equal(destinationFullCause(classifyError(fsError('EIO'), 'local', '/data/x')), undefined);
  assert.equal(destinationFullCause(classifyError(fsError('ECONNRESET'), 'destination', 'https://se.example/x')), undefined);
  assert.equal(destinationFullCause(new Error('ENOSPC')), undefined, 'only classified errors count');
});

test('the size of the file system holding a path, found from its nearest existing ancestor', async () => {
  const size = await localVolumeBytes(join(tmpdir(), 'cargoport-no-such-dir', 'deeper', 'file'));
  assert.ok(size !== undefined && size > 0);
  assert.equal(await localVolumeBytes(join(tmpdir(), 'x')), size);
  const e = largerThanVolumeError('/data/x', 10, 4, fsError('ENOSPC'));
  assert.equal(e.code, 'CARGO_ERR_LOCAL_IO');
  assert.equal(e.retryable, false);
  assert.match(e.message, /can never fit.*ENOSPC/);
});
