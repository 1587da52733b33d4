/**
 * RFC 3230 Want-Digest / Digest and RFC 9530 Want-Repr-Digest / Repr-Digest codecs, including the
 * encodings WLCG clients depend on (davix/FTS read `Digest: adler32=<8 hex>`; XRootD sends and reads
 * `Repr-Digest: adler=:<b64>:`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  checksumFromResponseHeaders,
  formatDigest,
  formatReprDigest,
  parseDigest,
  parseReprDigest,
  parseWantDigest,
  parseWantReprDigest,
  pickWantDigest,
  pickWantReprDigest,
  reprDigestKey,
  wantDigestToken,
} from '../../services/checksum/digest-header.js';
import { parseSfDictionary, SfParseError } from '../../services/checksum/structured-field.js';
import { createChecksummer } from '../../services/checksum/checksummer.js';
import type { ChecksumAlg } from '../../services/transfer/types.js';

const WIKI_ADLER = '03da0195';
const ABC_MD5 = '900150983cd24fb0d6963f7d28e17f72';
const ABC_MD5_B64 = 'kAFQmDzST7DWlj99KOF/cg==';
const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const ABC_SHA256_B64 = 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=';

test('Want-Digest: q-values order the choice, names are case-insensitive, unknown algorithms ignored', () => {
  assert.deepEqual(parseWantDigest('adler32;q=0.5, MD5'), [
    { alg: 'md5', weight: 1 },
    { alg: 'adler32', weight: 0.5 },
  ]);
  assert.deepEqual(parseWantDigest('ADLER32'), [{ alg: 'adler32', weight: 1 }]);
  assert.deepEqual(parseWantDigest('UNIXcksum, SHA-512;q=1, crc32c;q=0.3, SHA-256 ; q = 0.9'), [
    { alg: 'sha256', weight: 0.9 },
    { alg: 'crc32c', weight: 0.3 },
  ]);
  // Several header lines as node delivers them.
  assert.deepEqual(parseWantDigest(['md5;q=0.1', 'adler32;q=0.2']), [
    { alg: 'adler32', weight: 0.2 },
    { alg: 'md5', weight: 0.1 },
  ]);
  assert.deepEqual(parseWantDigest(undefined), []);
  assert.deepEqual(parseWantDigest(''), []);
});

test('Want-Digest: q=0 means not acceptable; malformed q-values drop the entry', () => {
  assert.deepEqual(parseWantDigest('adler32;q=0, md5;q=0.000'), []);
  assert.deepEqual(parseWantDigest('adler32;q=1.5, md5;q=abc, crc32c;q=0.1234, sha-256;q='), []);
  assert.deepEqual(parseWantDigest('adler32;q=1.000, md5;q=0.'), [{ alg: 'adler32', weight: 1 }]);
});

test('pickWantDigest: best q among what we can produce; ties go to the server preference order', () => {
  assert.equal(pickWantDigest('adler32;q=0.5, md5'), 'md5');
  assert.equal(pickWantDigest('adler32;q=0.5, md5', ['adler32', 'crc32c']), 'adler32');
  assert.equal(pickWantDigest('md5, adler32', ['adler32', 'md5']), 'adler32');
  assert.equal(pickWantDigest('md5, adler32', ['md5', 'adler32']), 'md5');
  assert.equal(pickWantDigest('sha-512, unixsum'), undefined);
  assert.equal(pickWantDigest(undefined), undefined);
  assert.equal(pickWantDigest('adler32;q=0'), undefined);
});

test('Digest is formatted the way davix/FTS/StoRM expect', () => {
  assert.equal(formatDigest({ adler32: WIKI_ADLER }), 'adler32=03da0195');
  assert.equal(formatDigest({ crc32c: 'e3069283' }), 'crc32c=e3069283');
  assert.equal(formatDigest({ md5: ABC_MD5 }), `md5=${ABC_MD5_B64}`);
  assert.equal(formatDigest({ sha256: ABC_SHA256 }), `sha-256=${ABC_SHA256_B64}`);
  assert.equal(formatDigest({ sha256: ABC_SHA256, adler32: '00000001' }), `adler32=00000001, sha-256=${ABC_SHA256_B64}`);
  assert.equal(formatDigest({}), '');
  // Only canonical values may be emitted (a padded, lowercase value is the caller's job).
  assert.throws(() => formatDigest({ adler32: '3da0195' }), { code: 'CARGO_ERR_CHECKSUM_STATE' });
  assert.throws(() => formatDigest({ adler32: '03DA0195' }), { code: 'CARGO_ERR_CHECKSUM_STATE' });
});

test('StoRM-compatible: the adler32 value is exactly 8 alphanumerics', () => {
  const storm = /^\s*adler32\s*=\s*([0-9a-zA-Z]{8})\s*$/;
  for (const value of ['00000001', WIKI_ADLER, 'ffffffff']) assert.match(formatDigest({ adler32: value }), storm);
});

test('Digest is parsed leniently into canonical hex', () => {
  assert.deepEqual(parseDigest('adler32=03da0195'), { adler32: WIKI_ADLER });
  assert.deepEqual(parseDigest('ADLER32=3DA0195'), { adler32: WIKI_ADLER });
  assert.deepEqual(parseDigest('Adler32=1'), { adler32: '00000001' });
  assert.deepEqual(parseDigest(`MD5=${ABC_MD5_B64},SHA-256=${ABC_SHA256_B64}`), { md5: ABC_MD5, sha256: ABC_SHA256 });
  // base64 without padding, and hex (seen from some servers) for md5/sha-256
  assert.deepEqual(parseDigest('md5=kAFQmDzST7DWlj99KOF/cg'), { md5: ABC_MD5 });
  assert.deepEqual(parseDigest(`md5=${ABC_MD5.toUpperCase()}`), { md5: ABC_MD5 });
  assert.deepEqual(parseDigest(`sha256=${ABC_SHA256}`), { sha256: ABC_SHA256 });
  // unknown algorithms (and their odd values) are skipped
  assert.deepEqual(parseDigest('UNIXsum=12345, sha-512=abc, adler32=03da0195, SHA=qZk+NkcGgWq6PiVxeFDCbJzQ2J0='), {
    adler32: WIKI_ADLER,
  });
  assert.deepEqual(parseDigest(['adler32=03da0195', 'crc32c=E3069283']), { adler32: WIKI_ADLER, crc32c: 'e3069283' });
  assert.deepEqual(parseDigest('  adler32 = 03da0195 , '), { adler32: WIKI_ADLER });
  assert.deepEqual(parseDigest(undefined), {});
});

test('Digest: a known algorithm with an unusable value is a 400 naming the header', () => {
  const bad = [
    'adler32=03da01951', // 9 digits
    'adler32=xyz',
    'adler32=',
    'adler32',
    'crc32c=0x1234',
    'md5=kAFQmDzST7DWlj99KOF/c', // 15.x bytes
    'md5=kAFQmDzST7DWlj99KOF/cg==extra',
    'md5=!!!!mDzST7DWlj99KOF/cg==',
    `sha-256=${ABC_MD5_B64}`, // 16 bytes for a 32-byte digest
    'adler32=03da0195, adler32=11e60398', // conflicting
  ];
  for (const header of bad) {
    assert.throws(() => parseDigest(header, 'Digest'), { code: 'CARGO_ERR_BAD_CHECKSUM', httpStatus: 400, field: 'Digest' }, header);
  }
  assert.deepEqual(parseDigest('adler32=03da0195, ADLER32=3DA0195'), { adler32: WIKI_ADLER }, 'same value twice is fine');
});

test('Digest round-trips for every algorithm on real digests', () => {
  const data = randomBytes(4096);
  const values: Partial<Record<ChecksumAlg, string>> = {};
  for (const alg of ['adler32', 'crc32c', 'md5', 'sha256'] as ChecksumAlg[]) {
    const c = createChecksummer(alg);
    c.update(data);
    values[alg] = c.digestHex();
  }
  assert.deepEqual(parseDigest(formatDigest(values)), values);
  assert.deepEqual(parseReprDigest(formatReprDigest(values)), values);
  assert.equal(values.md5, createHash('md5').update(data).digest('hex'));
});

test('Repr-Digest uses the key `adler` and SF byte sequences of the big-endian value', () => {
  assert.equal(formatReprDigest({ adler32: WIKI_ADLER }), 'adler=:A9oBlQ==:');
  assert.equal(formatReprDigest({ crc32c: 'e3069283' }), 'crc32c=:4waSgw==:');
  assert.equal(formatReprDigest({ md5: ABC_MD5 }), `md5=:${ABC_MD5_B64}:`);
  assert.equal(formatReprDigest({ sha256: ABC_SHA256 }), `sha-256=:${ABC_SHA256_B64}:`);
  assert.equal(formatReprDigest({ adler32: WIKI_ADLER, sha256: ABC_SHA256 }), `adler=:A9oBlQ==:, sha-256=:${ABC_SHA256_B64}:`);
  // It is a valid SF dictionary.
  const dict = parseSfDictionary(formatReprDigest({ adler32: WIKI_ADLER, md5: ABC_MD5 }));
  assert.deepEqual([...dict.keys()], ['adler', 'md5']);
});

test('Repr-Digest parse: unknown keys ignored, parameters tolerated, strict about values', () => {
  assert.deepEqual(parseReprDigest('adler=:A9oBlQ==:'), { adler32: WIKI_ADLER });
  assert.deepEqual(parseReprDigest(`sha-512=:AAAA:, sha-256=:${ABC_SHA256_B64}:;x=1, unixsum=5`), { sha256: ABC_SHA256 });
  assert.deepEqual(parseReprDigest(['adler=:A9oBlQ==:', `md5=:${ABC_MD5_B64}:`]), { adler32: WIKI_ADLER, md5: ABC_MD5 });
  const bad = [
    'adler32=:A9oBlQ==:, adler=A9oBlQ==', // adler as a token, not bytes
    'adler=:A9oB:', // 3 bytes
    'adler=:A9oBlQ==', // unterminated
    'adler=:A9o*lQ==:', // not base64
    'ADLER=:A9oBlQ==:', // SF keys are lowercase: the whole field is invalid
    'adler=:A9oBlQ==:,', // trailing comma
    'adler=:A9oBlQ==: x', // garbage
    `sha-256=:${ABC_MD5_B64}:`, // wrong length
    'md5=("a" "b")', // inner list
  ];
  for (const header of bad) {
    assert.throws(() => parseReprDigest(header), { code: 'CARGO_ERR_BAD_CHECKSUM', httpStatus: 400, field: 'Repr-Digest' }, header);
  }
  assert.deepEqual(parseReprDigest('adler32=:A9oBlQ==:'), {}, '`adler32` is not an RFC 9530 key');
});

test('Want-Repr-Digest: integer preferences 0–10, 0 = not wanted, invalid field ignored', () => {
  assert.deepEqual(parseWantReprDigest('adler=3, sha-256=9'), [
    { alg: 'sha256', weight: 9 },
    { alg: 'adler32', weight: 3 },
  ]);
  assert.deepEqual(parseWantReprDigest('adler=0, md5=10, crc32c=11, sha-256=-1, sha-512=5'), [{ alg: 'md5', weight: 10 }]);
  assert.deepEqual(parseWantReprDigest('adler=1.5, md5, crc32c="3", sha-256=2;q=1'), [{ alg: 'sha256', weight: 2 }]);
  assert.deepEqual(parseWantReprDigest('adler=3, ='), [], 'a syntax error invalidates the whole field');
  assert.deepEqual(parseWantReprDigest(undefined), []);
  assert.equal(pickWantReprDigest('adler=3, sha-256=9'), 'sha256');
  assert.equal(pickWantReprDigest('adler=3, sha-256=9', ['adler32']), 'adler32');
  assert.equal(pickWantReprDigest('adler=5, crc32c=5', ['crc32c', 'adler32']), 'crc32c');
  assert.equal(pickWantReprDigest('adler=0'), undefined);
});

test('structured-field dictionary parser: the RFC 8941 cases we can meet', () => {
  const d = parseSfDictionary('a=1, b=?0, c, d="x\\"y";p=:AQID:, e=(1 2);q=tok, f=-3.25, g=*tok/en:x');
  assert.deepEqual(d.get('a'), { kind: 'item', value: { type: 'integer', value: 1 }, params: new Map() });
  assert.deepEqual((d.get('b') as { value: unknown }).value, { type: 'boolean', value: false });
  assert.deepEqual((d.get('c') as { value: unknown }).value, { type: 'boolean', value: true });
  const dd = d.get('d') as { value: unknown; params: Map<string, unknown> };
  assert.deepEqual(dd.value, { type: 'string', value: 'x"y' });
  assert.deepEqual(dd.params.get('p'), { type: 'bytes', value: Buffer.from([1, 2, 3]) });
  assert.equal(d.get('e')?.kind, 'inner-list');
  assert.deepEqual((d.get('f') as { value: unknown }).value, { type: 'decimal', value: -3.25 });
  assert.deepEqual((d.get('g') as { value: unknown }).value, { type: 'token', value: '*tok/en:x' });
  assert.deepEqual((parseSfDictionary('a=1, a=2').get('a') as { value: unknown }).value, { type: 'integer', value: 2 }, 'last wins');
  for (const bad of ['a=', 'A=1', 'a=1,', 'a=1;', 'a=1234567890123456', 'a=1.2345', 'a="x', 'a=(1 2', 'a=?2', 'a=:AQ', 'a=1 b=2']) {
    assert.throws(() => parseSfDictionary(bad), SfParseError, bad);
  }
});

test('client-side helpers: tokens to ask with, and reading a remote response', () => {
  assert.equal(wantDigestToken('adler32'), 'adler32');
  assert.equal(wantDigestToken('sha256'), 'sha-256');
  assert.equal(reprDigestKey('adler32'), 'adler');
  assert.equal(checksumFromResponseHeaders('adler32', 'ADLER32=3DA0195', undefined), WIKI_ADLER);
  assert.equal(checksumFromResponseHeaders('adler32', undefined, 'adler=:A9oBlQ==:'), WIKI_ADLER);
  assert.equal(checksumFromResponseHeaders('md5', 'adler32=03da0195', `md5=:${ABC_MD5_B64}:`), ABC_MD5);
  assert.equal(checksumFromResponseHeaders('sha256', 'adler32=03da0195', undefined), undefined);
  // A remote's malformed header verifies nothing, so it is treated as absent rather than thrown.
  assert.equal(checksumFromResponseHeaders('adler32', 'adler32=zz', 'adler=:A9oBlQ==:'), WIKI_ADLER);
  assert.equal(checksumFromResponseHeaders('adler32', 'adler32=zz', 'adler=bad'), undefined);
});
