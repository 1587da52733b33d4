/**
 * The one schema for every cargoport setting. Defaults live in config/default.yaml (which must set every key
 * declared here — a unit test checks it); a `--config FILE` overrides them, and `CARGOPORT_*` environment
 * variables override both. The type of the loaded configuration is derived from this schema, so a setting
 * cannot exist in code without being declared, described and validated here.
 */
import { CargoError } from '../errors/cargo-error.js';

/** A raw value not of the leaf's form; config/load.ts names the key, the variable and the value around it. */
const notOfForm = (form: string): CargoError => new CargoError('CARGO_ERR_CONFIG', form);

interface LeafBase<T> {
  readonly kind: 'leaf';
  readonly doc: string;
  /** Parses and checks a raw value (from YAML or from an environment string); throws a message on error. */
  readonly parse: (raw: unknown, fromEnv: boolean) => T;
  /** Human description of the expected form, for error messages and the README reference. */
  readonly form: string;
  /** The value may hold credentials (tokens, client secrets): errors never quote it. */
  readonly secret?: boolean;
}
export type Leaf<T> = LeafBase<T>;
export interface Group {
  readonly [key: string]: Leaf<unknown> | Group;
}

export type ConfigOf<G> = {
  readonly [K in keyof G]: G[K] extends Leaf<infer T> ? T : ConfigOf<G[K]>;
};

function int(doc: string, min: number, max: number): Leaf<number> {
  return {
    kind: 'leaf', doc, form: `an integer from ${min} to ${max}`,
    parse(raw, fromEnv) {
      const v = fromEnv && typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw notOfForm(this.form);
      return v;
    },
  };
}
function num(doc: string, min: number, max: number): Leaf<number> {
  return {
    kind: 'leaf', doc, form: `a number from ${min} to ${max}`,
    parse(raw, fromEnv) {
      const v = fromEnv && typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw notOfForm(this.form);
      return v;
    },
  };
}
function str(doc: string, pattern?: RegExp, form = 'a string'): Leaf<string> {
  return {
    kind: 'leaf', doc, form,
    parse(raw) {
      if (typeof raw !== 'string' || (pattern && !pattern.test(raw))) throw notOfForm(this.form);
      return raw;
    },
  };
}
function bool(doc: string): Leaf<boolean> {
  return {
    kind: 'leaf', doc, form: 'true or false',
    parse(raw, fromEnv) {
      if (typeof raw === 'boolean') return raw;
      if (fromEnv && typeof raw === 'string') {
        const s = raw.trim().toLowerCase();
        if (s === 'true' || s === '1' || s === 'yes') return true;
        if (s === 'false' || s === '0' || s === 'no') return false;
      }
      throw notOfForm(this.form);
    },
  };
}
function oneOf<T extends string>(doc: string, values: readonly T[]): Leaf<T> {
  return {
    kind: 'leaf', doc, form: `one of ${values.join(', ')}`,
    parse(raw) {
      if (typeof raw !== 'string' || !(values as readonly string[]).includes(raw)) throw notOfForm(this.form);
      return raw as T;
    },
  };
}
function strList(doc: string): Leaf<string[]> {
  return {
    kind: 'leaf', doc, form: 'a list of strings (comma-separated in an environment variable)',
    parse(raw, fromEnv) {
      if (fromEnv && typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
      if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string')) throw notOfForm(this.form);
      return raw as string[];
    },
  };
}

/**
 * A structured value (a mapping or a list of mappings) whose inner shape is checked by the service that owns it
 * (e.g. services/processing/processing-settings.ts), with errors naming the inner key; here only its outer
 * form. In an environment variable it is JSON.
 */
function structured<T extends 'mapping' | 'list'>(doc: string, shape: T, secret = false): Leaf<T extends 'mapping' ? Record<string, unknown> : unknown[]> {
  const form = shape === 'mapping' ? 'a mapping (JSON in an environment variable)' : 'a list (JSON in an environment variable)';
  return {
    kind: 'leaf', doc, form, ...(secret ? { secret } : {}),
    parse(raw, fromEnv) {
      let v = raw;
      if (fromEnv && typeof raw === 'string') {
        try {
          v = JSON.parse(raw);
        } catch {
          throw notOfForm(form);
        }
      }
      const ok = shape === 'mapping' ? v !== null && typeof v === 'object' && !Array.isArray(v) : Array.isArray(v);
      if (!ok) throw notOfForm(form);
      return v as T extends 'mapping' ? Record<string, unknown> : unknown[];
    },
  };
}

const redisUrl = /^$|^(redis|rediss|unix):\/\/.+/;

export const schema = {
  dataDir: str('Data directory: embedded Redis (socket, AOF), generated TLS certificate, default storage roots. Relative paths are resolved against the working directory.', /.+/, 'a non-empty path'),
  logLevel: oneOf('Log level of every role.', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  gateway: {
    host: str('Address the HTTPS gateway listens on (`localhost` = 127.0.0.1 and ::1; `::` = every interface).', /.+/, 'a host name or address'),
    port: int('TCP port of the HTTPS gateway (HTTP/2 and HTTP/1.1 over TLS, chosen by ALPN). 0 picks a free port.', 0, 65535),
    http1Port: int('TCP port of an extra TLS listener that offers only HTTP/1.1, with the same routes. For peers whose HTTP/2 uploads are broken (XRootD 5.5 TPC push) and HTTP/1.1-only clients. -1: no such listener.', -1, 65535),
    tlsCert: str('PEM certificate file. Empty: a self-signed certificate for localhost is generated in dataDir on first start.'),
    tlsKey: str('PEM private key file matching tlsCert. Empty: generated with the certificate.'),
    bodyLimitBytes: int('Largest JSON request body accepted (a 100,000-file submission is about 25 MB).', 1024, 1024 ** 3),
    publicUrl: str('Base URL clients use to reach the gateway (for links in responses). Empty: derived from the request.'),
    tlsHandshakeTimeoutMs: int('A connection whose TLS handshake has not finished after this long is closed (both listeners): half-open handshakes cannot pile up.', 100, 600000),
    idleTimeoutSec: int('A connection (HTTP/2 session or HTTP/1.1 socket, both listeners) on which nothing moved for this long is closed, requests in it included. Keep it above 15 s: the events stream sends a keep-alive every 15 s.', 1, 86400),
    maxConnectionsPerClient: int('Connections one client address may hold open at once, both listeners together; more are closed as they arrive (before TLS). 0: no cap. A peer port pushing with many connections, or a load balancer in front, is one address.', 0, 10000000),
    maxRequestsPerClient: int('Requests (HTTP/2 streams, HTTP/1.1 requests) one client address may have in flight at once; more are answered 429 CARGO_ERR_CLIENT_BUSY with Retry-After. 0: no cap.', 0, 10000000),
    maxHeaderBytes: int('Largest request header: the HTTP/1.1 header section, or the HTTP/2 header list (advertised as SETTINGS_MAX_HEADER_LIST_SIZE); larger is answered 431 CARGO_ERR_HEADERS_TOO_LARGE.', 1024, 1048576),
  },
  redis: {
    url: str('Redis URL (redis://, rediss:// or unix:///path). Empty: `cargoport serve` launches a private redis-server (unix socket in dataDir, AOF on).', redisUrl, 'empty, or a redis://, rediss:// or unix:// URL'),
    prefix: str('Key prefix of every cargoport key and BullMQ queue. Keep the {hash tag} so Redis Cluster keeps them in one slot.', /^\{[A-Za-z0-9_-]+\}$/, 'a {hash tag} of letters, digits, _ or -'),
    serverBinary: str('redis-server executable used for the embedded Redis.', /.+/, 'a command name or path'),
  },
  workers: {
    pool: str('Name of the worker pool this process serves (admin scope `pool`).', /^[A-Za-z0-9_.-]{1,64}$/, 'a name of 1-64 letters, digits, _ . -'),
    concurrency: int('Transfers one worker process runs at once.', 1, 4096),
    heartbeatMs: int('How often a worker process reports itself alive in Redis.', 100, 60000),
    lockDurationMs: int('How long a running transfer stays claimed by a worker that stopped answering: a killed worker\'s transfers are taken up by the others within this time (the BullMQ lock is half of it, renewed every quarter, checked for expiry every eighth), resuming from their last checkpoint. A worker whose event loop stalls for half of it loses its transfers to others.', 1000, 600000),
    processes: int('Worker child processes `cargoport serve` runs its transfer pool in (forked, supervised: one that dies is restarted with back-off, its files requeued at once). 0 runs the pool inside the serve process itself, where a crash of the byte-moving code also takes the gateway down.', 0, 64),
    spareProcess: bool('With workers.processes > 0: keep one more worker child forked and loaded, idle, so a crashed one is replaced in well under a second rather than after Node loads the transfer engine again (seconds on a loaded machine). Costs that idle process\'s memory.'),
    crashLimit: int('Crashes of a worker process a file may be running in before it is failed with CARGO_ERR_WORKER_CRASHED instead of being requeued again (a file that kills its worker every time must not crash-loop the port).', 1, 1000),
  },
  scheduler: {
    linkMaxActive: int('Most transfers active at once on one link (source host → destination host).', 1, 100000),
    endpointMaxActive: int('Most transfers active at once touching one endpoint (host), as source or destination.', 1, 100000),
    feedBatch: int('Files the scheduler moves from the fair queues into the run queue per round.', 1, 10000),
    bundleMaxBytes: int('Files whose declared size is at most this many bytes are run in bundles (one run-queue entry in one worker slot, claimed by one START, their transfers at once and their ENDs group-committed), like FTS session reuse. 0 disables bundling.', 0, 1024 ** 3),
    bundleFiles: int('Most small files in one bundle.', 1, 1000),
    feedAheadFactor: num('Run-queue depth kept ahead of the workers, as a multiple of the total worker concurrency.', 1, 100),
    endpointBreakerFailures: int('Circuit breaker: attempts in a row that cannot reach an endpoint at all (refused, unroutable, connect timeout) before no new transfer touching it starts for a cool-down; its files wait in their lanes without spending retries.', 1, 10000),
    endpointBreakerCooldownSec: int('First cool-down of a tripped endpoint; then one transfer at a time probes it, and each failed probe doubles the cool-down.', 1, 86400),
    endpointBreakerMaxCooldownSec: int('Longest cool-down of a tripped endpoint.', 1, 86400),
    endpointBreakerGiveUpSec: int('How long, from its first trip, an endpoint\'s breaker holds files back; after that they run again and fail by their retries (an endpoint gone for good must not keep jobs waiting).', 1, 30 * 86400),
  },
  jobs: {
    maxFilesPerJob: int('Largest number of files in one submission.', 1, 10000000),
    defaultRetries: int('Retries per file when a submission gives none.', 0, 100),
    defaultRetryDelaySec: int('Base delay before a retry when a submission gives none (exponential backoff with jitter).', 0, 86400),
    defaultPriority: int('Priority of a job when the submission gives none (1 lowest … 5 highest).', 1, 5),
    retentionSec: int('How long a finished job (its summary: state, counts, bytes) is kept in Redis after it ended.', 60, 365 * 86400),
    fileRetentionSec: int('How long the file records of a finished job (specs, states, attempts) are kept in Redis after it ended; then only its summary remains (until jobs.retentionSec). Bounds the Redis cost of giant jobs.', 60, 365 * 86400),
    maxQueuedFilesPerOwner: int('Files one owner may have not yet finished (submitted, queued, active, waiting to retry) over all its jobs; a submission that would exceed it is answered 429 CARGO_ERR_OWNER_QUEUE_FULL. 0: no cap.', 0, 1000000000),
  },
  transfer: {
    connections: int('Default TCP connections per file for large files.', 1, 64),
    streams: int('Default HTTP/2 streams per connection.', 1, 256),
    stallTimeoutSec: int('An attempt with no progress for this long is aborted and retried.', 1, 86400),
    checkpointIntervalMs: int('How often a download into a local file makes the bytes written so far durable (fdatasync) and records them as its checkpoint: a retry, or the worker that takes over from a dead one, resumes there, so at most about this long of a transfer is sent again. 0: checkpoints only when an attempt fails.', 0, 3600000),
    insecureTls: bool('Skip TLS certificate verification of remote endpoints (tests and labs only).'),
    caFile: str('Extra CA bundle (PEM) trusted for remote endpoints. Empty: the system store only.'),
    endpointsFile: str('YAML/JSON file of per-endpoint transfer settings, keyed by origin (connections, streams, http1Only, rangedUpload, bulkReceive, windows, timeouts, copyMode); see services/transfer/connect/endpoint-settings.ts. Empty: none.'),
  },
  storage: {
    root: str('Root of the storage namespace served under /data (permanent storage, POSIX backend). Empty: <dataDir>/storage.'),
    bufferRoot: str('Root of the buffer (the port\'s own fast area). Empty: <dataDir>/buffer.'),
    publicPrefixes: strList('Namespace prefixes readable anonymously (read-only public export areas).'),
    urlPrefix: str('URL path the storage namespace is served under (WebDAV subset, HTTP-TPC). The Tape REST API is at /tape/v1.', /^\/[A-Za-z0-9_.-]+$/, 'a single path segment starting with /'),
    backend: oneOf('Permanent storage backend: posix (disk) or nearline (tape-like: files need a recall before they are readable).', ['posix', 'nearline'] as const),
    nearlineRecallMs: int('Emulated recall latency of the nearline backend.', 0, 86400000),
    uploadIdleTimeoutSec: int('A PUT (or one part of a multi-stream upload) that sends no byte of its body for this long fails with 408 CARGO_ERR_UPLOAD_STALLED; its temp file and buffer quota are given back and its stream closed. 0: no limit.', 0, 86400),
    bufferQuotaBytes: int('Size of the buffer (staged copies and uploads in progress: an upload holds quota for the bytes it has sent, not for the size it announces); released and expired staged copies are evicted beyond it.', 1024 * 1024, Number.MAX_SAFE_INTEGER),
    sitename: str('Site name in the Tape REST discovery document (key of targetedMetadata).', /^[A-Za-z0-9_.-]{1,64}$/, 'a name of 1-64 letters, digits, _ . -'),
  },
  auth: {
    insecureOpen: bool('Every caller, anonymous included, may do everything: no token needed, any file:// path, admin operations (tests and labs only; never on a reachable address). The outbound address policy still applies.'),
    issuers: structured('Trusted token issuers: [{issuer: https URL (the exact iss), name: short name (job owners are name:sub; default the host), basePath: namespace path it controls (default /), audiences: [...] (default auth.audiences), groups: [{group: /vo/grp, path: /p, rights: [read, create, modify, stage, poll]}] (used when a token has no capability scope), adminGroups: [...], adminScopes: [...], adminSubjects: [...]}]. Keys come from OIDC discovery + JWKS over verified TLS.', 'list'),
    audiences: strList('Audiences accepted in tokens (exact compare): the port\'s public URL(s), plus https://wlcg.cern.ch/jwt/v1/any if the site accepts tokens for any relying party. Empty: gateway.publicUrl, else https://localhost:<gateway.port>.'),
    clockSkewSec: int('Clock skew allowed when checking exp, nbf and iat.', 0, 600),
    maxTokenLifetimeSec: int('Tokens valid for longer than this (exp - iat) are refused (WLCG profile: 6 h). 0: no limit.', 0, 365 * 86400),
    keyRefreshSec: int('How often an issuer\'s keys are fetched again (WLCG profile: 1-6 h).', 60, 7 * 86400),
    keyMaxAgeSec: int('Keys that could not be refreshed are used for at most this long (WLCG profile cache expiry: 1-4 days).', 60, 30 * 86400),
    unknownKidRefetchSec: int('Least time between two fetches of an issuer\'s keys caused by tokens naming an unknown key id.', 1, 86400),
    issuerCaFile: str('Extra CA bundle (PEM) trusted for issuers\' discovery and JWKS, on top of the system store (TLS to issuers is always verified). Empty: the system store only.'),
    clientCaFile: str('Mutual TLS: PEM bundle of the CAs trusted for client certificates. Setting this or auth.clientCaDir makes the TLS listeners ask for an optional client certificate (a client without one is not refused at the TLS level).'),
    clientCaDir: str('Mutual TLS: a CA directory such as /etc/grid-security/certificates (*.pem, *.crt and hashed *.0 certificates; *.r0 CRLs are checked).'),
    clientCerts: structured('Mutual TLS: client certificate subject DNs (OpenSSL /K=V/K=V form, certificate order; for a proxy, the end-entity certificate\'s DN) mapped to identities: [{dn: exact DN | dnPattern: regex matched against the whole DN, name: job owner x509:<name> (default x509:<DN>), groups: [/vo/grp], admin: true|false}]. A bearer token, when sent, wins over the certificate.', 'list'),
    clientCertGroups: structured('Mutual TLS: rights of the groups of auth.clientCerts, as the issuers\' group rules: [{group: /vo/grp, path: /namespace/path, rights: [read, create, modify, stage, poll]}].', 'list'),
    localAreas: structured('Host directories jobs may read or write with file:// URLs, each mapped to a namespace path so the same scopes govern it: [{dir: /abs/host/dir, path: /namespace/path}]. Nothing else on the host is reachable with file://.', 'list'),
    allowAddresses: strList('Outbound address allow-list: job sources/destinations and HTTP-TPC remotes on loopback, private, link-local or this host\'s own addresses are refused unless listed here, as CIDRs (10.1.0.0/16, ::1/128), addresses, or the classes loopback, private, link-local, own.'),
    outbound: structured('Tokens the port sends to remote endpoints (job sources and destinations), the longest matching prefix wins: [{prefix: https://host:port[/path], name, source: static (token: …) | file (file: /abs/path, re-read when it changes) | client-credentials | token-exchange (RFC 8693 of the submitting user\'s token at submission, kept sealed with auth.tokenSealKeyFile and refreshed per request by the workers) (issuer: https URL, clientId, clientSecret or clientSecretFile, audience, scopes: narrow (default: storage.read:/path for a source, storage.create|modify:/path for a destination, below basePath) or a fixed list), basePath: URL path that is / in scopes (default the prefix\'s path), refreshBeforeSec: refresh this long before exp (at most half the lifetime; default 60)}]. Issuer TLS: auth.issuerCaFile.', 'list', true),
    metrics: oneOf('Who may read /metrics: public, authenticated (any valid token) or admin.', ['public', 'authenticated', 'admin'] as const),
    tokenSealKeyFile: str('Key (32 bytes, raw or base64) sealing the grants token exchange (auth.outbound source token-exchange) keeps in Redis between the gateway and the workers; every process of the port must read the same file. Empty: <dataDir>/token-seal/key, made on first use.'),
    shareMaxValiditySec: int('Longest validity of a share link (POST <path> with Content-Type application/macaroon-request; `cargoport share`), signed by the port\'s own key in <dataDir>/share-issuer. 0: share links off.', 0, 365 * 86400),
    devIssuer: oneOf('Built-in development issuer (`cargoport token`), its key in <dataDir>/dev-issuer: auto = on when gateway.host is loopback, on (refused unless gateway.host is loopback), off.', ['auto', 'on', 'off'] as const),
  },
  processing: {
    hooks: structured('Site hooks by name, which jobs reference as {stage: hook, hook: NAME}: {command: [/abs/program, args…], io: stream or files, timeoutSec, graceSec, params: {NAME: regex}, env: {…}} or {module: /abs/stage.mjs, options: {…}}; see services/processing/README.md.', 'mapping'),
    rules: structured('Stages the operator adds per endpoint or path prefix, to every job and to uploads into the storage endpoint: [{endpoint: https://host:port, local or storage, pathPrefix: /path, emission: [stages], reception: [stages]}]; the most specific rule of each side applies (services/processing/README.md).', 'list'),
    workDir: str('Directory of temporary files of processing stages (hooks working on files). Empty: <dataDir>/processing.'),
    threads: int('Worker threads that run zstd off the event loop. 0: one per CPU less one, at least one.', 0, 64),
    zstdMaxLevel: int('Highest zstd compression level a job may ask for.', 1, 22),
    zstdMaxWorkers: int('Most zstd compression threads (zstd nbWorkers) one stage may ask for.', 0, 64),
    zstdMaxWindowLog: int('Largest zstd window (log2 bytes) compressed with or accepted when decompressing: bounds the memory a peer can make us spend.', 10, 31),
    tarMaxMemberBytes: int('Largest tar member accepted when unpacking.', 0, Number.MAX_SAFE_INTEGER),
    tarMaxNameBytes: int('Longest member or link name accepted when unpacking (PAX and GNU long names included).', 100, 65536),
    tarMaxMembers: int('Most members in one archive, packing or unpacking.', 1, 100_000_000),
    hookTimeoutSec: int('Time limit of a site hook run when its entry gives none (then SIGTERM, and SIGKILL after its grace).', 1, 7 * 86400),
    hookStderrBytes: int('Tail of a hook\'s stderr kept for the failure reason.', 256, 1024 * 1024),
  },
  marking: {
    enabled: bool('Scitags marking of tagged transfers (services/marking): flow ids resolved per transfer, SciTag headers, fireflies, IPv6 flow labels, flowd pipe lines. Untagged transfers are never marked.'),
    application: str('`application` of fireflies (its first word is the syslog APP-NAME).', /^\S.{0,99}$/, 'a non-empty string of at most 100 characters'),
    registryUrl: str('URL of the scitags registry (https://scitags.org/api.json or a site mirror) fetched at start; empty or unreachable: the bundled copy (2025-09-04).'),
    pathDefaults: strList('Experiment/activity of transfers that carry no tag, by namespace path prefix: `/PREFIX=EXPERIMENT:ACTIVITY` with registry names or ids (`/atlas/prod/=atlas:Production Output`); longest prefix wins; checked against the storage endpoint request path and a job file\'s destination then source path.'),
    fireflies: bool('Send fireflies (UDP, RFC 5424 + JSON) at the start, while (ongoingIntervalMs) and at the end of each tagged connection.'),
    firefliesToPeer: bool('Also send every firefly to the connection\'s remote host on firefliesPeerPort (as XRootD does).'),
    firefliesPeerPort: int('UDP port of fireflies sent to the remote host.', 1, 65535),
    collectors: strList('Firefly collectors, `host[:port]` or `[v6addr]:port` (port 10514 by default), e.g. collector.scitags.org.'),
    ongoingIntervalMs: int('Period of `ongoing` fireflies (with TCP_INFO under netlink); 0: start and end only.', 0, 3600000),
    netlink: bool('Add the socket\'s TCP_INFO (rtt, rttvar, cwnd, retransmits, delivery rate, bytes acked / received) to ongoing fireflies (needs native/flowlabel).'),
    flowLabel: bool('Open outbound IPv6 connections of tagged transfers with the scitags flow label (IPV6_FLOWLABEL_MGR + IPV6_FLOWINFO_SEND, needs native/flowlabel).'),
    flowdPipe: str('Named pipe of a flowd / flowd-go daemon to write `start tcp …` / `end tcp …` lines to (e.g. /var/run/flowd); it must exist. Empty: off.'),
    ebpfDevices: strList('Network devices (e.g. eth0, lo) on which the eBPF tc egress marker labels the packets of ACCEPTED tagged IPv6 connections (storage endpoint downloads, TPC passive side, uploads into it); needs root or CAP_BPF + CAP_NET_ADMIN, bpftool, tc and the object native/build.mjs builds with clang. Empty: off.'),
  },
  probe: {
    access: oneOf('Who may use the link-diagnostics endpoint /probe (generated bytes served and sunk in memory, for `cargoport probe` run at another site): admin (an administrator of this port: auth.issuers[].adminGroups / adminScopes / adminSubjects) or authenticated (any valid token). Anonymous callers are always refused (401).', ['admin', 'authenticated'] as const),
    maxBytes: int('Largest body one /probe request may ask for (GET /probe/bytes?size=N) or send (PUT /probe/sink); more is answered 413 CARGO_ERR_PROBE_TOO_LARGE. Probe requests count in gateway.maxRequestsPerClient and maxConnectionsPerClient like any other. 0: no /probe endpoint (404).', 0, 64 * 1024 ** 3),
  },
  exports: {
    runTicks: bool('Whether this gateway process runs the ticks of recurring exports (BullMQ job schedulers on the `exports` queue). With several gateway replicas any number may; two runs of one export never overlap.'),
    historyRuns: int('Run reports kept per export (newest first; each also expires after 90 days).', 1, 100000),
    pollMs: int('How often a running export checks whether its jobs have ended.', 50, 60000),
  },
  shutdown: {
    drainTimeoutSec: int('On SIGTERM: let in-flight transfers finish for at most this long, then abort and requeue them.', 0, 86400),
  },
} as const satisfies Group;

export type Config = ConfigOf<typeof schema>;
