/** Pure parts of services/auth: scope parsing and matching, and the outbound address classification. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AddressPolicy, classifyAddress } from '../../services/auth/address-policy.js';
import { grantsAllow, parseScopes } from '../../services/auth/scopes.js';
import { decodeJws } from '../../services/auth/jws.js';

test('scopes: relative to the issuer base path, whole components, modify ⊇ create, stage ≠ read, stat by all four', () => {
  const { grants, hasCapability } = parseScopes('openid storage.read:/ storage.create:/stageout', '/vo');
  assert.equal(hasCapability, true);
  // The profile's worked example (§2.2.3).
  assert.equal(grantsAllow(grants, 'read', '/vo/sample_file1'), true);
  assert.equal(grantsAllow(grants, 'read', '/vo/stageout/x'), true);
  assert.equal(grantsAllow(grants, 'create', '/vo/stageout/y'), true);
  assert.equal(grantsAllow(grants, 'read', '/sample_file'), false);
  assert.equal(grantsAllow(grants, 'create', '/vo/sample_file1'), false);
  assert.equal(grantsAllow(grants, 'modify', '/vo/stageout/y'), false, 'create never overwrites');
  assert.equal(grantsAllow(grants, 'delete', '/vo/stageout/y'), false, 'create never deletes');
  const m = parseScopes('storage.modify:/a', '/').grants;
  assert.equal(grantsAllow(m, 'create', '/a/b'), true, 'modify ⊇ create');
  assert.equal(grantsAllow(m, 'read', '/a/b'), false);
  assert.equal(grantsAllow(m, 'stat', '/a/b'), true);
  assert.equal(grantsAllow(m, 'create', '/ab'), false, 'whole components');
  const s = parseScopes('storage.stage:/t', '/').grants;
  assert.equal(grantsAllow(s, 'read', '/t/f'), false, 'stage does not imply read');
  assert.equal(grantsAllow(s, 'stat', '/t/f'), true);
  assert.equal(grantsAllow(s, 'poll', '/t/f'), true);
  const p = parseScopes('storage.poll:/', '/').grants;
  assert.equal(grantsAllow(p, 'poll', '/x'), true);
  assert.equal(grantsAllow(p, 'stat', '/x'), false);
  const d = parseScopes('storage.create:/foo/bar/', '/').grants;
  assert.equal(grantsAllow(d, 'create', '/foo/bar'), false, 'trailing slash: not a file');
  assert.equal(grantsAllow(d, 'create', '/foo/bar', true), true, 'trailing slash: the directory');
  assert.equal(grantsAllow(d, 'create', '/foo', true), true, 'missing parents');
  assert.equal(grantsAllow(d, 'create', '/foo'), false);
  assert.deepEqual(parseScopes('storage.read:/a%20b//./c', '/x').grants[0], { capability: 'read', path: '/x/a b/c', directoryOnly: false });
  assert.equal(parseScopes('compute.read', '/').hasCapability, true);
  assert.equal(parseScopes('openid offline_access', '/').hasCapability, false);
});

test('scopes: a path-less storage scope or a .. component invalidates the token', () => {
  for (const s of ['storage.read', 'storage.create:', 'storage.read:/ storage.modify', 'storage.read:/a/../b', 'storage.read:relative', 'storage.read:/%2e%2e/x', 'storage.read:/%zz']) {
    assert.throws(() => parseScopes(s, '/'), (e: { code?: string }) => e.code === 'CARGO_ERR_INVALID_TOKEN', s);
  }
});

test('address policy: loopback, private, link-local, unspecified in every IPv4-embedding IPv6 spelling', () => {
  const own: Uint8Array[] = [];
  const cases: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'], ['127.8.9.10', 'loopback'], ['::1', 'loopback'], ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'], ['0:0:0:0:0:ffff:7f00:1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['::127.0.0.1', 'loopback'],
    ['64:ff9b::7f00:1', 'loopback'], ['2002:7f00:1::', 'loopback'],
    ['::ffff:0:0', 'unspecified'], ['0.0.0.0', 'unspecified'], ['::', 'unspecified'],
    ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['192.168.1.1', 'private'], ['100.64.0.1', 'private'],
    ['fd00::1', 'private'], ['::ffff:10.0.0.1', 'private'],
    ['169.254.169.254', 'link-local'], ['fe80::1', 'link-local'], ['::ffff:a9fe:a9fe', 'link-local'],
    ['224.0.0.1', 'multicast'], ['ff02::1', 'multicast'],
    ['8.8.8.8', 'public'], ['172.32.0.1', 'public'], ['2001:4860:4860::8888', 'public'], ['::ffff:8.8.8.8', 'public'],
  ];
  for (const [a, cls] of cases) assert.equal(classifyAddress(a, own), cls, a);
  assert.equal(classifyAddress('example.org', own), undefined);
  const strict = new AddressPolicy([]);
  assert.match(strict.refusal('::ffff:127.0.0.1')!, /loopback/);
  assert.equal(strict.refusal('8.8.8.8'), undefined);
  const lo = new AddressPolicy(['loopback']);
  assert.equal(lo.refusal('127.0.0.1'), undefined);
  assert.equal(lo.refusal('::ffff:127.0.0.1'), undefined);
  assert.match(lo.refusal('10.0.0.1')!, /private/);
  const cidr = new AddressPolicy(['10.1.0.0/16', '::1/128']);
  assert.equal(cidr.refusal('10.1.200.3'), undefined);
  assert.equal(cidr.refusal('::ffff:10.1.200.3'), undefined, 'mapped form of an allowed IPv4 address');
  assert.match(cidr.refusal('10.2.0.1')!, /private/);
  assert.equal(cidr.refusal('::1'), undefined);
  assert.match(cidr.refusal('127.0.0.1')!, /loopback/);
  assert.throws(() => new AddressPolicy(['not-an-address']), /CIDR/);
});

test('JWS header rules: asymmetric algorithms only, a kid, no key-pointing headers', () => {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const tok = (h: object) => `${enc(h)}.${enc({ iss: 'x' })}.c2ln`;
  assert.equal(decodeJws(tok({ alg: 'ES256', kid: 'k' })).header.kid, 'k');
  for (const h of [{ alg: 'none', kid: 'k' }, { alg: 'HS256', kid: 'k' }, { alg: 'RS256' }, { alg: 'RS256', kid: 'k', jku: 'https://e' }, { alg: 'RS256', kid: 'k', x5u: 'https://e' }, { alg: 'RS256', kid: 'k', jwk: {} }, { alg: 'RS256', kid: 'k', crit: ['b64'] }]) {
    assert.throws(() => decodeJws(tok(h)), (e: { code?: string }) => e.code === 'CARGO_ERR_INVALID_TOKEN', JSON.stringify(h));
  }
  assert.throws(() => decodeJws('a.b'), /compact JWS/);
  assert.throws(() => decodeJws('x'.repeat(20000)), /longer/);
});
