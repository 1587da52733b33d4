/**
 * The HTTP/1.x download path's client: Node's http client (services/transfer/http/http1-get.ts, what the port uses
 * since undici 7's HTTP/1 client kills the process on a server's close under back-pressure) against undici's
 * HTTP/1 client (what it used before) and curl, in one invocation, alternating, from the same nginx over loopback:
 * plain HTTP/1.1 and HTTP/1.1 over TLS. One file per run, body counted and dropped (no disk), one connection.
 * Prints median rate and CPU seconds per GiB of this process (the clients run in it) or of curl, and the ratios.
 *
 *   node dist/bench/http1-get-clients.js [size_mib=1024] [runs=5]
 */
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from 'undici';
import { http1Get } from '../services/transfer/http/http1-get.js';
import { createHttp1Agent } from '../services/transfer/http/http1-upload.js';
import { defaultClientOptions } from '../services/transfer/connect/client-options.js';
import { defaultConnectionPacing } from '../services/throttle/connection-pacer.js';
import { Connector } from '../services/transfer/connect/connector.js';
import { testTls } from '../test/support/tls.js';
import { freePort } from '../test/support/free-port.js';
import { startNginx } from './lib/nginx.js';
import { timedChild } from './lib/timed-child.js';

const MiB = 1024 * 1024;
const sizeMib = Number(process.argv[2] ?? 1024);
const runs = Number(process.argv[3] ?? 5);
const bytes = sizeMib * MiB;
const tls = testTls();

const dir = mkdtempSync('/dev/shm/cargoport-h1get-');
chmodSync(dir, 0o755);
const chunk = randomBytes(MiB);
const parts: Buffer[] = [];
for (let i = 0; i < sizeMib; i++) parts.push(chunk);
writeFileSync(join(dir, 'file.bin'), Buffer.concat(parts));
chmodSync(join(dir, 'file.bin'), 0o644);
const [tlsPort, plainPort] = [await freePort(), await freePort()];
const nginx = await startNginx({ dir, root: dir, port: tlsPort, plainPort, http2: false, sendfile: false });
await new Promise((r) => setTimeout(r, 300));

interface Sample { secs: number; cpu: number }
const cpuNow = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

async function drain(body: NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    body.on('data', (c: Buffer) => { n += c.length; });
    body.on('end', resolve);
    body.on('error', reject);
  });
  return n;
}

async function inProcess(run: () => Promise<number>): Promise<Sample> {
  const c0 = cpuNow();
  const t0 = process.hrtime.bigint();
  const n = await run();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (n !== bytes) throw new Error(`got ${n} bytes, expected ${bytes}`);
  return { secs, cpu: cpuNow() - c0 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  for (const secure of [false, true]) {
    const origin = secure ? `https://127.0.0.1:${tlsPort}` : `http://127.0.0.1:${plainPort}`;
    const undiciClient = new Client(origin, { connect: { ca: tls.cert }, bodyTimeout: 60_000 });
    const connector = new Connector({ pacing: defaultConnectionPacing });
    const agent = createHttp1Agent(origin, defaultClientOptions, () => connector.open({
      origin, alpn: ['http/1.1'], ca: tls.cert, connectTimeoutMs: defaultClientOptions.connectTimeoutMs, flow: {},
    }));
    const results: Record<string, Sample[]> = { undici: [], 'node:http': [], curl: [] };
    for (let i = 0; i < runs; i++) {
      results['undici']!.push(await inProcess(async () => drain((await undiciClient.request({ path: '/file.bin', method: 'GET' })).body)));
      results['node:http']!.push(await inProcess(async () => drain((await http1Get(agent, origin, '/file.bin', `${origin}/file.bin`, {
        headers: {}, signal: new AbortController().signal, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000,
      })).body)));
      const c = await timedChild('curl', ['-s', '--http1.1', '--cacert', tls.certPath, '-o', '/dev/null', `${origin}/file.bin`]);
      results['curl']!.push({ secs: c.secs, cpu: c.cpu });
    }
    await undiciClient.close();
    agent.destroy();
    console.log(`${secure ? 'HTTP/1.1 over TLS' : 'plain HTTP/1.1'}: ${sizeMib} MiB from nginx on loopback, ${runs} alternating runs, medians`);
    const line = (name: string): { rate: number; cpuPerGiB: number } => {
      const s = results[name]!;
      const rate = bytes / median(s.map((x) => x.secs)) / 1e6;
      const cpuPerGiB = median(s.map((x) => x.cpu)) / (bytes / 2 ** 30);
      console.log(`  ${name.padEnd(10)} ${rate.toFixed(0).padStart(6)} MB/s  ${cpuPerGiB.toFixed(3)} cpu-s/GiB`);
      return { rate, cpuPerGiB };
    };
    const u = line('undici');
    const n = line('node:http');
    const c = line('curl');
    console.log(`  node:http / undici: rate ${(n.rate / u.rate).toFixed(2)}x, CPU ${(n.cpuPerGiB / u.cpuPerGiB).toFixed(2)}x; node:http / curl: rate ${(n.rate / c.rate).toFixed(2)}x, CPU ${(n.cpuPerGiB / c.cpuPerGiB).toFixed(2)}x`);
  }
} finally {
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}
