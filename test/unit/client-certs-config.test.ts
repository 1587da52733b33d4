/** auth.clientCa*, auth.clientCerts, auth.clientCertGroups: mutual TLS off by default; errors name the key. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { clientCertSettings, clientCertTlsOptions, slashDn } from '../../services/auth/client-certs.js';
import { testTls } from '../support/tls.js';

const none = { clientCaFile: '', clientCaDir: '', clientCerts: [], clientCertGroups: [] };

test('off without a client CA; TLS options ask for a certificate without refusing the handshake', () => {
  assert.equal(clientCertSettings(none), undefined);
  assert.deepEqual(clientCertTlsOptions(undefined), {});
  const s = clientCertSettings({ ...none, clientCaFile: testTls().certPath, clientCerts: [{ dn: '/CN=a', groups: ['/g'] }], clientCertGroups: [{ group: '/g', path: '/p', rights: ['read'] }] })!;
  const o = clientCertTlsOptions(s);
  assert.equal(o.requestCert, true);
  assert.equal(o.rejectUnauthorized, false);
  assert.equal(o.ca!.length, 1);
  assert.deepEqual(s.groupRules, [{ group: '/g', path: '/p', rights: ['read'] }]);
});

test('configuration errors name the key', () => {
  const ca = testTls().certPath;
  assert.throws(() => clientCertSettings({ ...none, clientCerts: [{ dn: '/CN=a' }] }), /auth\.clientCerts: set auth\.clientCaFile or auth\.clientCaDir/);
  assert.throws(() => clientCertSettings({ ...none, clientCaFile: ca, clientCerts: [{ dn: '/CN=a', dnPattern: 'x' }] }), /auth\.clientCerts\[0\]: needs exactly one of dn/);
  assert.throws(() => clientCertSettings({ ...none, clientCaFile: ca, clientCerts: [{ dnPattern: '(' }] }), /auth\.clientCerts\[0\]\.dnPattern/);
  assert.throws(() => clientCertSettings({ ...none, clientCaFile: ca, clientCerts: [{ dn: 'CN=a' }] }), /auth\.clientCerts\[0\]\.dn: must be a subject DN/);
  assert.throws(() => clientCertSettings({ ...none, clientCaFile: ca, clientCerts: [{ dn: '/CN=a', role: 'x' }] }), /auth\.clientCerts\[0\]\.role: unknown key/);
  assert.throws(() => clientCertSettings({ ...none, clientCaFile: ca, clientCertGroups: [{ group: '/g', rights: ['write'] }] }), /auth\.clientCertGroups\[0\]\.rights: unknown right "write"/);
  assert.throws(() => clientCertSettings({ ...none, clientCaFile: '/nonexistent/ca.pem' }), /auth\.clientCaFile: cannot be read/);
  const dir = mkdtempSync(join(tmpdir(), 'cp-ca-'));
  try {
    writeFileSync(join(dir, 'x.pem'), 'not a certificate');
    assert.throws(() => clientCertSettings({ ...none, clientCaDir: dir }), /auth\.clientCaDir: holds no PEM certificate/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('subject DNs in the grid /K=V form, certificate order', () => {
  assert.equal(slashDn('DC=org\nDC=example\nO=People\nCN=Alice Example'), '/DC=org/DC=example/O=People/CN=Alice Example');
});
