/** The user-facing `alg:value` notation (FTS `"checksum": "ADLER32:03da0195"`, REST API, CLI). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatChecksumSpec, parseChecksumSpec } from '../../services/checksum/checksum-spec.js';
import { CargoError } from '../../errors/cargo-error.js';

test('FTS-style specs parse to canonical values', () => {
  assert.deepEqual(parseChecksumSpec('ADLER32:03da0195', 'f'), { alg: 'adler32', value: '03da0195' });
  assert.deepEqual(parseChecksumSpec('adler32:3DA0195', 'f'), { alg: 'adler32', value: '03da0195' });
  assert.deepEqual(parseChecksumSpec('Adler32:1', 'f'), { alg: 'adler32', value: '00000001' });
  assert.deepEqual(parseChecksumSpec('CRC32C:E3069283', 'f'), { alg: 'crc32c', value: 'e3069283' });
  assert.deepEqual(parseChecksumSpec('md5:D41D8CD98F00B204E9800998ECF8427E', 'f'), {
    alg: 'md5',
    value: 'd41d8cd98f00b204e9800998ecf8427e',
  });
  const sha = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
  assert.deepEqual(parseChecksumSpec(`SHA256:${sha}`, 'f'), { alg: 'sha256', value: sha });
  assert.deepEqual(parseChecksumSpec(`SHA-256:${sha.toUpperCase()}`, 'f'), { alg: 'sha256', value: sha });
  assert.deepEqual(parseChecksumSpec('  adler32 : 03da0195  ', 'f'), { alg: 'adler32', value: '03da0195' });
});

test('the value is optional: ADLER32, adler32: and sha-256 alone ask for that algorithm', () => {
  assert.deepEqual(parseChecksumSpec('ADLER32', 'f'), { alg: 'adler32' });
  assert.deepEqual(parseChecksumSpec('adler32:', 'f'), { alg: 'adler32' });
  assert.deepEqual(parseChecksumSpec('sha-256', 'f'), { alg: 'sha256' });
  assert.deepEqual(parseChecksumSpec('CRC32C:', 'f'), { alg: 'crc32c' });
});

test('format gives the canonical notation and round-trips', () => {
  for (const input of ['ADLER32:3da0195', 'crc32c', 'MD5:900150983CD24FB0D6963F7D28E17F72']) {
    const parsed = parseChecksumSpec(input, 'f');
    assert.deepEqual(parseChecksumSpec(formatChecksumSpec(parsed), 'f'), parsed);
  }
  assert.equal(formatChecksumSpec({ alg: 'adler32', value: '03da0195' }), 'adler32:03da0195');
  assert.equal(formatChecksumSpec({ alg: 'md5' }), 'md5');
});

test('bad input is a 400 CARGO_ERR_BAD_CHECKSUM naming the caller-given field', () => {
  const bad = [
    '', // nothing
    '   ',
    ':03da0195', // no algorithm
    'sha1:a9993e364706816aba3e25717850c26c9cd0d89d', // unsupported
    'sha-512:00', // unsupported
    'adler:03da0195', // RFC 9530 key is not a user-facing name
    'adler32:03da01956', // 9 digits
    'adler32:0x3da0195', // prefix
    'adler32:03da019g', // not hex
    'adler32:03da:0195', // extra colon
    'crc32c:-1',
    'md5:900150983cd24fb0d6963f7d28e17f7', // 31 digits
    'md5:kAFQmDzST7DWlj99KOF/cg==', // base64 is a header encoding, not the user notation
    'sha256:ba7816bf', // short
    'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad00', // long
  ];
  for (const input of bad) {
    assert.throws(
      () => parseChecksumSpec(input, 'files[3].checksum'),
      (e: unknown) => {
        assert.ok(e instanceof CargoError, `${JSON.stringify(input)} threw a CargoError`);
        assert.equal(e.code, 'CARGO_ERR_BAD_CHECKSUM', JSON.stringify(input));
        assert.equal(e.httpStatus, 400);
        assert.equal(e.field, 'files[3].checksum');
        assert.equal(e.retryable, false);
        return true;
      },
      `${JSON.stringify(input)} must be rejected`,
    );
  }
});

test('non-string input (e.g. a JSON number that slipped past the schema) is rejected, not crashed on', () => {
  assert.throws(() => parseChecksumSpec(12345 as unknown as string, 'checksum'), { code: 'CARGO_ERR_BAD_CHECKSUM', field: 'checksum' });
});
