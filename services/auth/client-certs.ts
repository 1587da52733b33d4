/**
 * Mutual-TLS client identities (issue 13): sites still have grid certificates. The gateway's TLS listeners ask for
 * an optional client certificate (`requestCert`, never refused at the TLS level: a client without one goes on as
 * anonymous or with its bearer token), trusting the CAs of `auth.clientCaFile` and/or `auth.clientCaDir` (a grid CA
 * directory such as /etc/grid-security/certificates: `*.pem` and hashed `*.N` certificates, `*.rN` CRLs).
 *
 * A verified certificate's subject DN (OpenSSL's `/K=V/K=V` form, in certificate order) is matched against
 * `auth.clientCerts` — exact `dn` or anchored `dnPattern` — and becomes a CertificatePrincipal with that entry's
 * groups, whose rights come from `auth.clientCertGroups` (like a token's `wlcg.groups` with the issuers' group
 * rules), and owner `x509:<name>` (or `x509:<DN>`). A certificate that fails verification (unknown CA, expired,
 * revoked, not yet valid) is a 401 naming the reason; a trusted certificate whose DN no rule maps is anonymous.
 *
 * RFC 3820 proxy certificates (and legacy `CN=proxy` ones): Node's TLS stack refuses proxy chains
 * (PROXY_CERTIFICATES_NOT_ALLOWED), so a leaf whose subject is its issuer's subject plus one `CN` is checked here:
 * each proxy signed by the next certificate of the chain the client sent and within its validity, down to an
 * end-entity (non-CA) certificate signed by a trusted CA and valid now; the identity is that end-entity's DN.
 * CRLs are not consulted on this path, and the proxyCertInfo extension is not inspected (Node cannot read it).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { CargoError } from '../../errors/cargo-error.js';
import { parseGroupRules, type GroupRule } from './issuer-settings.js';
import type { CertificatePrincipal } from './principal.js';
import type { PathGrant } from './scopes.js';

export interface CertIdentityRule {
  dn?: string;
  pattern?: RegExp;
  name?: string;
  groups: string[];
  admin: boolean;
}

export interface ClientCertSettings {
  /** PEM certificates of the trusted CAs (for the TLS context). */
  ca: string[];
  /** PEM CRLs found in the CA directory. */
  crl: string[];
  /** The same CAs, parsed (for proxy chains, checked here). */
  anchors: X509Certificate[];
  rules: CertIdentityRule[];
  groupRules: GroupRule[];
}

export type CertOutcome =
  | { kind: 'none' }
  | { kind: 'refused'; reason: string }
  | { kind: 'unmapped'; dn: string }
  | { kind: 'identified'; principal: CertificatePrincipal };

const bad = (field: string, msg: string) => new CargoError('CARGO_ERR_CONFIG', `${field}: ${msg}`, { httpStatus: 500, field });

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PEM_CRL = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g;

function readPem(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw bad(field, `cannot be read: ${(e as Error).message}`);
  }
}

/** `/DC=org/DC=example/CN=Alice` from Node's multi-line subject (one `K=V` per line, certificate order). */
export function slashDn(subject: string): string {
  return '/' + subject.split('\n').filter(Boolean).join('/');
}

function parseRules(raw: unknown[]): CertIdentityRule[] {
  return raw.map((entry, i) => {
    const f = `auth.clientCerts[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw bad(f, 'must be a mapping {dn | dnPattern, name, groups, admin}');
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!['dn', 'dnPattern', 'name', 'groups', 'admin'].includes(k)) throw bad(`${f}.${k}`, 'unknown key');
    const dn = e['dn'];
    const dnPattern = e['dnPattern'];
    if ((dn === undefined) === (dnPattern === undefined)) throw bad(f, 'needs exactly one of dn (exact subject, /K=V/... form) or dnPattern (regular expression matched against the whole subject)');
    if (dn !== undefined && (typeof dn !== 'string' || !dn.startsWith('/'))) throw bad(`${f}.dn`, 'must be a subject DN in /K=V/K=V form');
    let pattern: RegExp | undefined;
    if (dnPattern !== undefined) {
      if (typeof dnPattern !== 'string' || dnPattern === '') throw bad(`${f}.dnPattern`, 'must be a regular expression');
      try {
        pattern = new RegExp(`^(?:${dnPattern})$`);
      } catch (err) {
        throw bad(`${f}.dnPattern`, (err as Error).message);
      }
    }
    const name = e['name'];
    if (name !== undefined && (typeof name !== 'string' || !/^[A-Za-z0-9_.@-]{1,128}$/.test(name))) throw bad(`${f}.name`, 'must be 1-128 letters, digits, _ . @ -');
    const groups = e['groups'] ?? [];
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string' || !g.startsWith('/'))) throw bad(`${f}.groups`, 'must be a list of groups such as /vo/prod');
    const admin = e['admin'] ?? false;
    if (typeof admin !== 'boolean') throw bad(`${f}.admin`, 'must be true or false');
    return { ...(dn !== undefined ? { dn: dn as string } : {}), ...(pattern ? { pattern } : {}), ...(name !== undefined ? { name: name as string } : {}), groups: groups as string[], admin };
  });
}

/** Certificates and CRLs of a grid-style CA directory (`*.pem`, `*.crt`, hashed `*.N`; CRLs `*.rN`, `*.crl`). */
function readCaDir(dir: string): { ca: string[]; crl: string[] } {
  const field = 'auth.clientCaDir';
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    throw bad(field, `cannot be read: ${(e as Error).message}`);
  }
  const ca: string[] = [];
  const crl: string[] = [];
  for (const n of names) {
    const isCert = /\.(pem|crt|\d+)$/.test(n);
    const isCrl = /\.(r\d+|crl)$/.test(n);
    if (!isCert && !isCrl) continue;
    const p = join(dir, n);
    if (!statSync(p).isFile()) continue;
    const text = readPem(p, field);
    if (isCert) ca.push(...(text.match(PEM_CERT) ?? []));
    else crl.push(...(text.match(PEM_CRL) ?? []));
  }
  return { ca, crl };
}

/** `auth.clientCa*`, `auth.clientCerts`, `auth.clientCertGroups`; undefined when no client CA is configured (mTLS off). */
export function clientCertSettings(auth: { clientCaFile: string; clientCaDir: string; clientCerts: unknown[]; clientCertGroups: unknown[] }): ClientCertSettings | undefined {
  if (!auth.clientCaFile && !auth.clientCaDir) {
    if (auth.clientCerts.length > 0) throw bad('auth.clientCerts', 'set auth.clientCaFile or auth.clientCaDir (the CAs trusted for client certificates)');
    return undefined;
  }
  const ca: string[] = [];
  const crl: string[] = [];
  if (auth.clientCaFile) {
    const text = readPem(auth.clientCaFile, 'auth.clientCaFile');
    ca.push(...(text.match(PEM_CERT) ?? []));
    crl.push(...(text.match(PEM_CRL) ?? []));
  }
  if (auth.clientCaDir) {
    if (!existsSync(auth.clientCaDir)) throw bad('auth.clientCaDir', `${auth.clientCaDir} does not exist`);
    const d = readCaDir(auth.clientCaDir);
    ca.push(...d.ca);
    crl.push(...d.crl);
  }
  const unique = [...new Set(ca)];
  if (unique.length === 0) throw bad(auth.clientCaFile ? 'auth.clientCaFile' : 'auth.clientCaDir', 'holds no PEM certificate');
  const anchors = unique.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (e) {
      throw bad(auth.clientCaFile ? 'auth.clientCaFile' : 'auth.clientCaDir', `certificate ${i + 1} cannot be parsed: ${(e as Error).message}`);
    }
  });
  return { ca: unique, crl: [...new Set(crl)], anchors, rules: parseRules(auth.clientCerts), groupRules: parseGroupRules(auth.clientCertGroups, '/', 'auth.clientCertGroups') };
}

/** TLS server options for the listeners: ask for a certificate, never refuse the handshake for it. */
export function clientCertTlsOptions(s: ClientCertSettings | undefined): { requestCert?: boolean; rejectUnauthorized?: boolean; ca?: string[]; crl?: string[] } {
  if (!s) return {};
  return { requestCert: true, rejectUnauthorized: false, ca: s.ca, ...(s.crl.length > 0 ? { crl: s.crl } : {}) };
}

function validNow(c: X509Certificate, now: number): string | undefined {
  if (now < Date.parse(c.validFrom)) return `certificate ${slashDn(c.subject)} is not valid yet`;
  if (now > Date.parse(c.validTo)) return `certificate ${slashDn(c.subject)} has expired`;
  return undefined;
}

/** Whether `c` is a proxy of `issuerSubject`: same subject plus one trailing CN. */
function looksLikeProxy(c: X509Certificate): boolean {
  const s = c.subject.split('\n').filter(Boolean);
  const i = c.issuer.split('\n').filter(Boolean);
  return s.length === i.length + 1 && s[s.length - 1]!.startsWith('CN=') && i.every((v, k) => v === s[k]);
}

/** Client certificate → identity, cached per TLS connection (one X.509 parse per connection, not per request). */
export class ClientCertMapper {
  private readonly byConnection = new WeakMap<object, CertOutcome>();

  constructor(private readonly s: ClientCertSettings) {}

  /** `conn`: the cache key (one per connection: the HTTP/2 session or the HTTP/1.1 socket). */
  outcome(conn: object | undefined, socket: TLSSocket | undefined): CertOutcome {
    // A request whose stream or socket is already gone (client reset) has no certificate to look at.
    if (!conn || !socket) return { kind: 'none' };
    let o = this.byConnection.get(conn);
    if (!o) {
      o = this.evaluate(socket);
      this.byConnection.set(conn, o);
    }
    return o;
  }

  private evaluate(socket: TLSSocket): CertOutcome {
    if (typeof socket.getPeerCertificate !== 'function') return { kind: 'none' };
    const peer = socket.getPeerCertificate(true) as DetailedPeerCertificate;
    if (!peer || !peer.raw) return { kind: 'none' };
    const chain: X509Certificate[] = [];
    for (let c: DetailedPeerCertificate | undefined = peer; c?.raw && chain.length < 10; c = c.issuerCertificate === c ? undefined : c.issuerCertificate) {
      chain.push(new X509Certificate(c.raw));
    }
    const leaf = chain[0]!;
    let eec = leaf;
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? 'not verified');
      if (!looksLikeProxy(leaf)) return { kind: 'refused', reason: why };
      const checked = this.checkProxyChain(chain);
      if (typeof checked === 'string') return { kind: 'refused', reason: checked };
      eec = checked;
    }
    const dn = slashDn(eec.subject);
    const rule = this.s.rules.find((r) => (r.dn !== undefined ? r.dn === dn : r.pattern!.test(dn)));
    if (!rule) return { kind: 'unmapped', dn };
    const grants: PathGrant[] = [];
    for (const g of this.s.groupRules) {
      if (!rule.groups.includes(g.group)) continue;
      for (const r of g.rights) grants.push({ capability: r, path: g.path, directoryOnly: false });
    }
    return { kind: 'identified', principal: { kind: 'certificate', dn, owner: `x509:${rule.name ?? dn}`, grants, groups: rule.groups, admin: rule.admin } };
  }

  /** Proxy chain check (see the module comment); the end-entity certificate, or why the chain is refused. */
  private checkProxyChain(chain: X509Certificate[]): X509Certificate | string {
    const now = Date.now();
    let i = 0;
    while (i < chain.length && looksLikeProxy(chain[i]!)) {
      const c = chain[i]!;
      const next = chain[i + 1];
      const v = validNow(c, now);
      if (v) return v;
      if (!next || !c.checkIssued(next) || !c.verify(next.publicKey)) return `proxy certificate ${slashDn(c.subject)} is not signed by a certificate the client sent`;
      i++;
    }
    const eec = chain[i];
    if (!eec || eec.ca) return 'proxy chain without an end-entity certificate';
    const v = validNow(eec, now);
    if (v) return v;
    const anchor = this.s.anchors.find((a) => eec.checkIssued(a) && eec.verify(a.publicKey));
    if (!anchor) return `certificate ${slashDn(eec.subject)} is not issued by a trusted CA`;
    const av = validNow(anchor, now);
    if (av) return av;
    return eec;
  }
}
