/**
 * Cost of token verification on the storage endpoint (issue 13: small GETs with verification on must run at
 * ≥ 95 % of the requests per second without it). Two storage endpoints in this process, identical but for
 * authorisation: "open" (no token, allow-all) and "token" (the gateway's auth hook: every request carries an ES256
 * WLCG token from the dev issuer, verified and authorised by scope). h2load (nghttp2, C) GETs one 1 KiB file,
 * alternating between the two, `--runs` times each; the ratio of medians is the result.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/auth-overhead.js [--requests 20000] [--runs 5] [--clients 4] [--streams 16]
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { loadConfig } from '../config/load.js';
import { buildGatewayAuth, DEV_AUDIENCE, installAuthHook } from '../gateway/auth.js';
import { allowAll } from '../gateway/storage/access-decision.js';
import { storagePlugin } from '../gateway/storage/storage-plugin.js';
import { createPortStorage } from '../services/storage/port-storage.js';
import { mintDevToken } from '../services/auth/dev-issuer.js';
import { testTls } from '../test/support/tls.js';
import { timedChild } from './lib/timed-child.js';
import type { FastifyInstance } from 'fastify';

const arg = (n: string, d: number) => (process.argv.includes(`--${n}`) ? Number(process.argv[process.argv.indexOf(`--${n}`) + 1]) : d);
const N = arg('requests', 20000);
const RUNS = arg('runs', 5);
const C = arg('clients', 4);
const M = arg('streams', 16);

async function endpoint(dir: string, withAuth: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const tls = testTls();
  const storage = await createPortStorage({ permanentDir: join(dir, 'permanent'), bufferDir: join(dir, 'buffer'), bufferQuotaBytes: 1 << 30 });
  const app = Fastify({ http2: true, https: { allowHTTP1: true, key: tls.key, cert: tls.cert, maxSessionMemory: 256 }, logger: false }) as unknown as FastifyInstance;
  let authorize = allowAll;
  if (withAuth) {
    const cfg = loadConfig({ env: {}, overrides: { dataDir: dir, logLevel: 'silent', gateway: { host: '127.0.0.1', port: 0 } } });
    const auth = buildGatewayAuth(cfg);
    installAuthHook(app, auth);
    authorize = auth.storageAuthorize;
  }
  await app.register(storagePlugin, { prefix: '/data', storage, authorize });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { url: `https://127.0.0.1:${port}/data/small/f.bin`, close: () => app.close() };
}

function reqPerSec(out: string): number {
  const m = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const ok = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(out);
  if (!m || Number(ok?.[1]) !== N) throw new Error(`h2load: ${out.slice(-600)}`);
  return Number(m[1]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dirs = [mkdtempSync(join(tmpdir(), 'cp-bench-auth-open-')), mkdtempSync(join(tmpdir(), 'cp-bench-auth-tok-'))];
try {
  for (const d of dirs) {
    mkdirSync(join(d, 'permanent', 'small'), { recursive: true });
    writeFileSync(join(d, 'permanent', 'small', 'f.bin'), Buffer.alloc(1024, 7));
  }
  const open = await endpoint(dirs[0]!, false);
  const tok = await endpoint(dirs[1]!, true);
  const token = mintDevToken(dirs[1]!, { scope: 'storage.read:/small', subject: 'bench', audience: DEV_AUDIENCE, lifetimeSec: 3600 });
  const h2 = (url: string, extra: string[]) => timedChild('h2load', ['-n', String(N), '-c', String(C), '-m', String(M), ...extra, url]);
  // Warm-up, and a check that the token is accepted (h2load counts 403 as a success otherwise).
  const w = await h2(tok.url, ['-H', `authorization: Bearer ${token}`]);
  if (!/status codes: (\d+) 2xx/.test(w.stdout) || Number(/status codes: (\d+) 2xx/.exec(w.stdout)![1]) !== N) throw new Error(`token run not all 2xx: ${w.stdout.slice(-400)}`);
  await h2(open.url, []);
  const a: number[] = [];
  const b: number[] = [];
  // Server CPU per request (this process serves both): on a loaded shared machine the rate swings with the
  // neighbours, the CPU a request costs much less; the CPU ratio is the rate ratio a CPU-bound server would see.
  const ca: number[] = [];
  const cb: number[] = [];
  const cpuRun = async (url: string, extra: string[], rates: number[], cpus: number[]) => {
    const c0 = process.cpuUsage();
    rates.push(reqPerSec((await h2(url, extra)).stdout));
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / N);
  };
  for (let i = 0; i < RUNS; i++) {
    await cpuRun(open.url, [], a, ca);
    await cpuRun(tok.url, ['-H', `authorization: Bearer ${token}`], b, cb);
  }
  console.log(`small GETs (1 KiB), h2load -n ${N} -c ${C} -m ${M}, ${RUNS} alternating runs`);
  console.log(`  open (no token):          ${a.map((x) => x.toFixed(0)).join(' ')} req/s, median ${median(a).toFixed(0)}`);
  console.log(`  token (ES256, verified):  ${b.map((x) => x.toFixed(0)).join(' ')} req/s, median ${median(b).toFixed(0)}`);
  console.log(`  ratio token/open: ${(median(b) / median(a)).toFixed(3)}`);
  console.log(`  server CPU per request: open ${ca.map((x) => x.toFixed(0)).join(' ')} µs (median ${median(ca).toFixed(0)}), token ${cb.map((x) => x.toFixed(0)).join(' ')} µs (median ${median(cb).toFixed(0)})`);
  console.log(`  CPU-bound rate ratio token/open (open CPU / token CPU): ${(median(ca) / median(cb)).toFixed(3)}`);
  await open.close();
  await tok.close();
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
