/**
 * Grid-style client certificates for mutual-TLS tests, made with the openssl command: a trusted CA (in a hashed CA
 * directory like /etc/grid-security/certificates), a second CA nobody trusts, end-entity certificates with DC=…
 * subjects (one valid, one expired, one unmapped, one from the untrusted CA) and an RFC 3820 proxy of the valid one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GridCert {
  /** Subject DN, /K=V form. */
  dn: string;
  cert: string;
  key: string;
  /** The certificate followed by the rest of the chain the client sends (a proxy: proxy + end-entity). */
  chain: string;
}

export interface GridCerts {
  /** Hashed CA directory holding the trusted CA only. */
  caDir: string;
  caFile: string;
  alice: GridCert;
  bob: GridCert;
  expired: GridCert;
  rogue: GridCert;
  /** /O=Robots/CN=transfer-01: matched by a dnPattern rule in the tests. */
  robot: GridCert;
  aliceProxy: GridCert;
  /** Valid dates, but revoked in the CA's CRL (`<hash>.r0` in caDir). */
  revoked: GridCert;
}

const BASE = '/DC=org/DC=cargoport-test';

export function makeGridCerts(dir: string): GridCerts {
  mkdirSync(dir, { recursive: true });
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const p = (n: string) => join(dir, n);
  writeFileSync(p('eec.ext'), '[eec]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  writeFileSync(p('proxy.ext'), '[proxy]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nproxyCertInfo=critical,language:id-ppl-inheritAll\n');
  const ca = (name: string, cn: string) => ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.pem`), '-days', '30',
    '-subj', `${BASE}/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  ca('ca', 'Cargoport Test Grid CA');
  ca('rogue-ca', 'Rogue CA');
  const csr = (name: string, dn: string) => ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', dn]);
  const sign = (name: string, issuer: string, ext: string, extra: string[] = ['-days', '10']) =>
    ossl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${issuer}.pem`), '-CAkey', p(`${issuer}.key`), '-set_serial', String(Math.floor(Math.random() * 1e9) + 1),
      '-extfile', p(`${ext}.ext`), '-extensions', ext, '-out', p(`${name}.pem`), ...extra]);
  const eec = (name: string, cn: string, issuer: string, org = 'People'): GridCert => {
    const dn = `${BASE}/O=${org}/CN=${cn}`;
    csr(name, dn);
    sign(name, issuer, 'eec');
    return { dn, cert: p(`${name}.pem`), key: p(`${name}.key`), chain: p(`${name}.pem`) };
  };
  const alice = eec('alice', 'Alice Example', 'ca');
  const bob = eec('bob', 'Bob Unmapped', 'ca');
  const rogue = eec('mallory', 'Alice Example', 'rogue-ca');
  const robot = eec('robot', 'transfer-01', 'ca', 'Robots');
  // Expired: `openssl ca` is the only 3.0 command that sets both dates.
  mkdirSync(p('newcerts'), { recursive: true });
  writeFileSync(p('index.txt'), '');
  writeFileSync(p('serial'), '1000\n');
  writeFileSync(p('ca.cnf'), [
    '[ca]', 'default_ca = d', '[d]', `database = ${p('index.txt')}`, `new_certs_dir = ${p('newcerts')}`, `serial = ${p('serial')}`,
    'default_md = sha256', 'policy = any', 'unique_subject = no', 'email_in_dn = no', 'default_crl_days = 7', '[any]', 'commonName = supplied', '',
  ].join('\n'));
  const expiredDn = `${BASE}/O=People/CN=Old Timer`;
  csr('expired', expiredDn);
  ossl(['ca', '-batch', '-config', p('ca.cnf'), '-cert', p('ca.pem'), '-keyfile', p('ca.key'), '-in', p('expired.csr'), '-out', p('expired.pem'),
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-notext', '-preserveDN', '-extfile', p('eec.ext'), '-extensions', 'eec']);
  const expired = { dn: expiredDn, cert: p('expired.pem'), key: p('expired.key'), chain: p('expired.pem') };
  // RFC 3820 proxy of alice: subject = alice's + CN=<serial>, signed by alice's key, proxyCertInfo extension.
  const serial = String(Math.floor(Math.random() * 1e9) + 1);
  csr('alice-proxy', `${alice.dn}/CN=${serial}`);
  ossl(['x509', '-req', '-in', p('alice-proxy.csr'), '-CA', alice.cert, '-CAkey', alice.key, '-set_serial', serial, '-days', '1',
    '-extfile', p('proxy.ext'), '-extensions', 'proxy', '-out', p('alice-proxy.pem')]);
  writeFileSync(p('alice-proxy-chain.pem'), readFileSync(p('alice-proxy.pem'), 'utf8') + readFileSync(alice.cert, 'utf8'));
  // The usual X509_USER_PROXY file: proxy certificate, its key, then the end-entity certificate.
  writeFileSync(p('x509up'), readFileSync(p('alice-proxy.pem'), 'utf8') + readFileSync(p('alice-proxy.key'), 'utf8') + readFileSync(alice.cert, 'utf8'), { mode: 0o600 });
  const aliceProxy = { dn: `${alice.dn}/CN=${serial}`, cert: p('alice-proxy.pem'), key: p('alice-proxy.key'), chain: p('alice-proxy-chain.pem') };
  const revokedDn = `${BASE}/O=People/CN=Revoked Rita`;
  csr('revoked', revokedDn);
  const now = new Date();
  const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  ossl(['ca', '-batch', '-config', p('ca.cnf'), '-cert', p('ca.pem'), '-keyfile', p('ca.key'), '-in', p('revoked.csr'), '-out', p('revoked.pem'),
    '-startdate', stamp(new Date(now.getTime() - 86400_000)), '-enddate', stamp(new Date(now.getTime() + 10 * 86400_000)), '-notext', '-preserveDN', '-extfile', p('eec.ext'), '-extensions', 'eec']);
  ossl(['ca', '-batch', '-config', p('ca.cnf'), '-cert', p('ca.pem'), '-keyfile', p('ca.key'), '-revoke', p('revoked.pem')]);
  ossl(['ca', '-batch', '-config', p('ca.cnf'), '-cert', p('ca.pem'), '-keyfile', p('ca.key'), '-gencrl', '-out', p('ca-crl.pem')]);
  const revoked = { dn: revokedDn, cert: p('revoked.pem'), key: p('revoked.key'), chain: p('revoked.pem') };
  const caDir = p('certificates');
  mkdirSync(caDir, { recursive: true });
  copyFileSync(p('ca.pem'), join(caDir, 'cargoport-test-ca.pem'));
  execFileSync('openssl', ['rehash', caDir], { stdio: 'ignore' });
  // The CRL as fetch-crl installs it: <subject hash>.r0 beside <subject hash>.0.
  const hash = execFileSync('openssl', ['x509', '-noout', '-subject_hash', '-in', p('ca.pem')]).toString().trim();
  copyFileSync(p('ca-crl.pem'), join(caDir, `${hash}.r0`));
  return { caDir, caFile: p('ca.pem'), alice, bob, expired, rogue, robot, aliceProxy, revoked };
}
