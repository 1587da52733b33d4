/**
 * A real token issuer for tests: an HTTPS server (the test certificate) serving OIDC discovery
 * (`/.well-known/openid-configuration`) and a JWKS with real RSA (RS256) and EC (ES256) keys, plus `mint` to sign
 * tokens with any claims and header (forgeries included). Counts JWKS fetches so tests can see caching.
 */
import { createServer as createSecureServer } from 'node:https';
import { generateKeyPairSync, createHmac, randomUUID, verify as verifySig, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { signJws } from '../../services/auth/dev-issuer.js';
import { testTls } from './tls.js';

export interface TestIssuer {
  issuer: string;
  jwksFetches: number;
  rsa: { kid: string; privateKey: KeyObject; publicKey: KeyObject };
  ec: { kid: string; privateKey: KeyObject; publicKey: KeyObject };
  /** Publishes one more key (rotation); returns its kid. */
  addKey(): { kid: string; privateKey: KeyObject };
  /** Standard WLCG claims (1 h, aud `aud`) merged with `claims`; `null` removes a claim. */
  mint(claims: Record<string, unknown>, opts?: { key?: 'rsa' | 'ec' | KeyObject; kid?: string; header?: Record<string, unknown>; alg?: string }): string;
  /** A token "signed" with HMAC using the RSA public key (PEM) as the secret: the classic key-confusion forgery. */
  hmacWithPublicKey(claims: Record<string, unknown>): string;
  /** An unsigned token (alg none). */
  unsigned(claims: Record<string, unknown>): string;
  /**
   * Client-credentials grant at `/token` (client_secret_post or _basic) for these clients (id → secret): a token of
   * the issuer's RSA key with the asked `scope`, aud `audience`, valid `tokenLifetimeSec` (settable while running).
   */
  clients: Record<string, string>;
  tokenLifetimeSec: number;
  /** Grants answered, in order (scope asked, or undefined; `grant`: client_credentials when absent). */
  grants: Array<{ clientId: string; scope: string | undefined; grant?: 'token-exchange' | 'refresh_token' }>;
  /**
   * RFC 8693 token exchanges answered: the subject token must be one of this issuer's (signature, not expired);
   * the answer is an access token for the subject's `sub` with the asked scope (offline_access dropped) and, when
   * offline_access was asked, a refresh token. A refresh_token grant may narrow the scope to a subset (else
   * invalid_scope). `subject`: the subject token's sub.
   */
  exchanges: Array<{ clientId: string; subject: string; scope: string | undefined; audience: string | undefined }>;
  close(): Promise<void>;
}

export async function startTestIssuer(audience: string): Promise<TestIssuer> {
  const tls = testTls();
  const rsaKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ecKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keys: Array<{ kid: string; publicKey: KeyObject; alg: string }> = [
    { kid: 'rsa-1', publicKey: rsaKeys.publicKey, alg: 'RS256' },
    { kid: 'ec-1', publicKey: ecKeys.publicKey, alg: 'ES256' },
  ];
  let base = '';
  const state = { jwksFetches: 0 };
  const server = createSecureServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks`, token_endpoint: `${base}/token`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] }));
    } else if (req.url === '/jwks') {
      state.jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: keys.map((k) => ({ ...(k.publicKey.export({ format: 'jwk' }) as object), kid: k.kid, use: 'sig', alg: k.alg })) }));
    } else if (req.url === '/token' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        let id = form.get('client_id') ?? '';
        let secret = form.get('client_secret') ?? '';
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
        if (basic) [id, secret] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').map(decodeURIComponent) as [string, string];
        res.setHeader('content-type', 'application/json');
        const grantType = form.get('grant_type');
        if (grantType !== 'client_credentials' && grantType !== 'urn:ietf:params:oauth:grant-type:token-exchange' && grantType !== 'refresh_token') {
          return res.writeHead(400).end(JSON.stringify({ error: 'unsupported_grant_type' }));
        }
        if (!id || issuer.clients[id] === undefined || issuer.clients[id] !== secret) return res.writeHead(401).end(JSON.stringify({ error: 'invalid_client' }));
        if (grantType !== 'client_credentials') return answerDelegated(grantType, id, form, res);
        const scope = form.get('scope') ?? undefined;
        issuer.grants.push({ clientId: id, scope });
        const now = Math.floor(Date.now() / 1000);
        const token = issuer.mint({ sub: id, iat: now, nbf: now, exp: now + issuer.tokenLifetimeSec, ...(scope !== undefined ? { scope } : { scope: null }) });
        res.writeHead(200).end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: issuer.tokenLifetimeSec, ...(scope !== undefined ? { scope } : {}) }));
      });
    } else {
      res.writeHead(404).end();
    }
  });
  const refreshTokens = new Map<string, { clientId: string; sub: string; scopes: string[]; audience: string | undefined }>();
  const verifyOwn = (token: string): Record<string, unknown> | undefined => {
    const [h, p, sig] = token.split('.');
    if (!h || !p || !sig) return undefined;
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
    const input = Buffer.from(`${h}.${p}`);
    const ok = header.alg === 'RS256'
      ? verifySig('sha256', input, rsaKeys.publicKey, Buffer.from(sig, 'base64url'))
      : header.alg === 'ES256' && verifySig('sha256', input, { key: ecKeys.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
    if (!ok) return undefined;
    const c = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    return typeof c['exp'] === 'number' && c['exp'] * 1000 > Date.now() ? c : undefined;
  };
  const answerDelegated = (grantType: string, clientId: string, form: URLSearchParams, res: import('node:http').ServerResponse) => {
    const now = Math.floor(Date.now() / 1000);
    const asked = (form.get('scope') ?? '').split(' ').filter(Boolean);
    let sub: string;
    let scopes: string[];
    let audience: string | undefined;
    let refresh: string | undefined;
    if (grantType === 'refresh_token') {
      const rt = refreshTokens.get(form.get('refresh_token') ?? '');
      if (!rt || rt.clientId !== clientId) return res.writeHead(400).end(JSON.stringify({ error: 'invalid_grant' }));
      if (asked.some((x) => !rt.scopes.includes(x))) return res.writeHead(400).end(JSON.stringify({ error: 'invalid_scope' }));
      sub = rt.sub;
      scopes = asked.length ? asked : rt.scopes;
      audience = rt.audience;
    } else {
      if (form.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:access_token') return res.writeHead(400).end(JSON.stringify({ error: 'invalid_request' }));
      const claims = verifyOwn(form.get('subject_token') ?? '');
      if (!claims) return res.writeHead(400).end(JSON.stringify({ error: 'invalid_grant', error_description: 'subject token not valid' }));
      sub = String(claims['sub']);
      scopes = asked.filter((x) => x !== 'offline_access');
      audience = form.get('audience') ?? undefined;
      issuer.exchanges.push({ clientId, subject: sub, scope: scopes.join(' ') || undefined, audience });
      if (asked.includes('offline_access')) {
        refresh = randomUUID();
        refreshTokens.set(refresh, { clientId, sub, scopes, audience });
      }
    }
    const scope = scopes.join(' ');
    issuer.grants.push({ clientId, scope: scope || undefined, grant: grantType === 'refresh_token' ? 'refresh_token' : 'token-exchange' });
    const token = issuer.mint({ sub, iat: now, nbf: now, exp: now + issuer.tokenLifetimeSec, scope: scope || null, ...(audience ? { aud: audience } : {}) });
    res.writeHead(200).end(JSON.stringify({
      access_token: token, token_type: 'Bearer', expires_in: issuer.tokenLifetimeSec, scope,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', ...(refresh ? { refresh_token: refresh } : {}),
    }));
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://localhost:${(server.address() as AddressInfo).port}`;
  const claimsOf = (c: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    const out: Record<string, unknown> = { iss: base, sub: 'alice', aud: audience, iat: now, nbf: now - 60, exp: now + 3600, jti: randomUUID(), 'wlcg.ver': '1.0', ...c };
    for (const [k, v] of Object.entries(out)) if (v === null) delete out[k];
    return out;
  };
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const extra: Array<{ kid: string; privateKey: KeyObject }> = [];
  const issuer: TestIssuer = {
    issuer: base,
    get jwksFetches() {
      return state.jwksFetches;
    },
    rsa: { kid: 'rsa-1', ...rsaKeys },
    ec: { kid: 'ec-1', ...ecKeys },
    addKey() {
      const k = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const kid = `ec-${keys.length + 1}`;
      keys.push({ kid, publicKey: k.publicKey, alg: 'ES256' });
      extra.push({ kid, privateKey: k.privateKey });
      return { kid, privateKey: k.privateKey };
    },
    mint(c, o = {}) {
      const which = o.key ?? 'rsa';
      const key = which === 'rsa' ? rsaKeys.privateKey : which === 'ec' ? ecKeys.privateKey : which;
      const alg = o.alg ?? (which === 'ec' || (typeof which === 'object' && which.asymmetricKeyType === 'ec') ? 'ES256' : 'RS256');
      const kid = o.kid ?? (which === 'rsa' ? 'rsa-1' : which === 'ec' ? 'ec-1' : extra.find((e) => e.privateKey === which)?.kid);
      return signJws(claimsOf(c), key, { alg, typ: 'JWT', ...(kid ? { kid } : {}), ...o.header });
    },
    hmacWithPublicKey(c) {
      const input = `${enc({ alg: 'HS256', typ: 'JWT', kid: 'rsa-1' })}.${enc(claimsOf(c))}`;
      const secret = rsaKeys.publicKey.export({ format: 'pem', type: 'spki' });
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    },
    clients: {},
    tokenLifetimeSec: 3600,
    grants: [],
    exchanges: [],
    unsigned(c) {
      return `${enc({ alg: 'none', typ: 'JWT', kid: 'rsa-1' })}.${enc(claimsOf(c))}.`;
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
  return issuer;
}
