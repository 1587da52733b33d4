/**
 * After a push (single PUT or ranged parts), prove the destination holds what was sent. With destination
 * verification asked (`destination` | `both`) and a checksum computed, the destination's Digest must equal
 * ours (from the PUT response, else a HEAD with Want-Digest). Otherwise the size it reports must equal the
 * bytes sent: a 2xx does not prove the bytes were stored (XRootD 5.5 stores an empty file when it cannot
 * parse a lower-case `content-length` over HTTP/1.1).
 */
import type { Dispatcher } from 'undici';
import { requestHeaders, type Attempt } from '../attempt.js';
import type { ClientPool } from '../connect/client-pool.js';
import { header, headRequest, type HttpEndpoint } from '../http/http-requests.js';
import { checksumMismatch, digestFromHeaders, wantDigestValue } from '../transfer-checksum.js';
import { TransferError, TransferErrorCode, redactUrl } from '../transfer-errors.js';

export async function checkPushedDestination(
  pool: ClientPool, a: Attempt, dst: HttpEndpoint, putHeaders: Dispatcher.ResponseData['headers'],
  value: string | undefined, sent: number,
): Promise<void> {
  const { req } = a;
  if (value !== undefined && (req.verify === 'destination' || req.verify === 'both')) {
    let remote = digestFromHeaders(putHeaders, a.alg);
    if (remote === undefined) {
      const head = await headRequest(pool, dst, 'destination',
        { ...await requestHeaders(a, 'destination', dst.url, 'HEAD'), 'want-digest': wantDigestValue(a.alg) }, a.signal);
      if (head.status >= 200 && head.status < 300) remote = digestFromHeaders(head.headers, a.alg);
    }
    if (remote === undefined) {
      throw new TransferError(TransferErrorCode.checksumUnavailable,
        `destination did not report a ${a.alg} checksum (Want-Digest)`, { httpStatus: 502, field: 'destination', retryable: false });
    }
    if (remote !== value) throw checksumMismatch(a.alg, value, remote, 'destination');
    return;
  }
  const head = await headRequest(pool, dst, 'destination', await requestHeaders(a, 'destination', dst.url, 'HEAD'), a.signal);
  if (head.status < 200 || head.status >= 300) return; // a write-only endpoint: nothing to compare with
  const reported = header(head.headers, 'content-length');
  if (reported === undefined || !/^\d+$/.test(reported)) return;
  if (Number(reported) !== sent) {
    throw new TransferError(TransferErrorCode.sizeMismatch,
      `destination accepted the upload but reports ${reported} bytes where ${sent} were sent: ${redactUrl(dst.url)}`,
      { httpStatus: 502, field: 'destination', retryable: true });
  }
}
