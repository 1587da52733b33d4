/**
 * Error classification for transfers: HTTP statuses, socket/undici/TLS codes, local I/O, URL redaction.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CargoError } from '../../errors/cargo-error.js';
import { parseEndpoint } from '../../services/transfer/endpoint.js';
import { classifyError, errorForHttpStatus, redactUrl, unreachableSide } from '../../services/transfer/transfer-errors.js';

describe('errorForHttpStatus', () => {
  const cases: Array<[number, 'source' | 'destination', string, boolean]> = [
    [401, 'source', 'CARGO_ERR_AUTH', false], [403, 'destination', 'CARGO_ERR_AUTH', false],
    [404, 'source', 'CARGO_ERR_SOURCE_NOT_FOUND', false], [404, 'destination', 'CARGO_ERR_HTTP_4XX', false],
    [400, 'source', 'CARGO_ERR_HTTP_4XX', false], [409, 'destination', 'CARGO_ERR_HTTP_4XX', false],
    [408, 'source', 'CARGO_ERR_HTTP_4XX', true], [429, 'source', 'CARGO_ERR_HTTP_4XX', true],
    [500, 'source', 'CARGO_ERR_HTTP_5XX', true], [503, 'destination', 'CARGO_ERR_HTTP_5XX', true],
  ];
  for (const [status, side, code, retryable] of cases) {
    it(`${status} from the ${side} → ${code}${retryable ? ' (retryable)' : ''}`, () => {
      const e = errorForHttpStatus(status, side, 'https://h/x');
      assert.equal(e.code, code);
      assert.equal(e.retryable, retryable);
      assert.equal(e.field, side);
    });
  }
});

describe('classifyError', () => {
  it('keeps CargoErrors as they are', () => {
    const e = new CargoError('CARGO_ERR_STAGE_FAILED', 'x');
    assert.equal(classifyError(e, 'source', 'u'), e);
  });
  it('maps resets to retryable network errors and timeouts to CARGO_ERR_TIMEOUT', () => {
    assert.equal(classifyError(Object.assign(new Error('r'), { code: 'ECONNRESET' }), 'source', 'u').code, 'CARGO_ERR_NETWORK');
    const t = classifyError(Object.assign(new Error('t'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), 'source', 'u');
    assert.equal(t.code, 'CARGO_ERR_TIMEOUT');
    assert.equal(t.retryable, true);
  });
  it('makes certificate failures fatal', () => {
    const e = classifyError(Object.assign(new Error('c'), { code: 'CERT_HAS_EXPIRED' }), 'destination', 'u');
    assert.equal(e.code, 'CARGO_ERR_TLS');
    assert.equal(e.retryable, false);
  });
  it('local I/O: a full disk may clear up, a permission error will not', () => {
    assert.equal(classifyError(Object.assign(new Error('f'), { code: 'ENOSPC' }), 'local', '/x').retryable, true);
    assert.equal(classifyError(Object.assign(new Error('p'), { code: 'EACCES' }), 'local', '/x').retryable, false);
  });
});

describe('unreachableSide (the circuit breaker counts these)', () => {
  const sock = (code: string) => Object.assign(new Error(code), { code });
  it('names the side that refused, could not be routed to, or did not answer the connect', () => {
    assert.equal(unreachableSide(classifyError(sock('ECONNREFUSED'), 'source', 'u')), 'source');
    assert.equal(unreachableSide(classifyError(sock('EAI_AGAIN'), 'destination', 'u')), 'destination');
    assert.equal(unreachableSide(classifyError(sock('UND_ERR_CONNECT_TIMEOUT'), 'source', 'u')), 'source');
    // undici wraps the socket error; happy eyeballs aggregates one per address
    assert.equal(unreachableSide(classifyError(Object.assign(new Error('fetch failed'), { cause: sock('EHOSTUNREACH') }), 'source', 'u')), 'source');
    assert.equal(unreachableSide(classifyError(new AggregateError([sock('ECONNREFUSED'), sock('ECONNREFUSED')]), 'source', 'u')), 'source');
  });
  it('says nothing for an endpoint that answered: resets, body timeouts, HTTP errors, local I/O', () => {
    assert.equal(unreachableSide(classifyError(sock('ECONNRESET'), 'source', 'u')), undefined);
    assert.equal(unreachableSide(classifyError(sock('ENOTFOUND'), 'source', 'u')), undefined, 'no such name: the file\'s failure');
    assert.equal(unreachableSide(classifyError(sock('UND_ERR_BODY_TIMEOUT'), 'source', 'u')), undefined);
    assert.equal(unreachableSide(errorForHttpStatus(503, 'source', 'u')), undefined);
    assert.equal(unreachableSide(classifyError(sock('ENOENT'), 'local', '/x')), undefined);
    assert.equal(unreachableSide(sock('ECONNREFUSED')), undefined, 'unclassified: no side known');
  });
});

describe('URLs', () => {
  it('redacts credentials and query tokens in messages', () => {
    assert.equal(redactUrl('https://user:secret@h/p?authz=tok'), 'https://***@h/p?…');
  });
  it('parses file, https, davs and rejects other schemes', () => {
    assert.deepEqual(parseEndpoint('file:///tmp/a%20b', 'source'), { kind: 'file', path: '/tmp/a b', url: 'file:///tmp/a%20b' });
    assert.equal((parseEndpoint('davs://[::1]:8443/x?y=1', 'source') as { origin: string }).origin, 'https://[::1]:8443');
    assert.throws(() => parseEndpoint('s3://b/k', 'destination'), (e: unknown) => e instanceof CargoError && e.code === 'CARGO_ERR_UNSUPPORTED_SCHEME');
  });
});
