/**
 * bench/live-caps — issue 11 item 4 measured as a user meets it: `cargoport serve` (embedded Redis, its own TLS
 * gateway, a real worker) pulls a large file from nginx (HTTP/2 + TLS, `limit_rate 4m`: a steady ~4.2 MB/s, the pace
 * the issue saw under caps that did not apply); once the file is moving a cap is set on one scope — link, owner,
 * job, port — with `PUT /api/v1/admin/limits`, and the rate that follows is measured. The peer, in the same run, is
 * curl's own limiter (`curl --limit-rate`) downloading the same file from the same nginx.
 *
 * Rate = least-squares slope of the bytes on disk in the destination directory (sampled every 100 ms; the same
 * measure for the port and for curl) over WINDOW seconds, starting 1 s after the cap was set (the port) or after
 * the first byte (curl); "from the PUT" is (bytes at PUT + WINDOW − bytes at the PUT) / WINDOW, which includes the
 * change-over and the burst a bucket grants. Error = rate / cap − 1.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/live-caps.js [window_sec=20] [runs=2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'undici';
import { bytesOnDisk, makeRandomFiles } from '../test/support/fixtures.js';
import { rateSlope, type RateSample } from '../test/support/rate-slope.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';

const WINDOW_SEC = Number(process.argv[2] ?? 20);
const RUNS = Number(process.argv[3] ?? 2);
const NGINX_PORT = 20000 + (process.pid % 1000);
const FILE_BYTES = 160 * 1024 * 1024;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cli = new URL('../../bin/cargoport.js', import.meta.url).pathname;

type Sample = RateSample;


/** Bytes on disk under `dir` every 100 ms for `ms`. */
async function sampleDisk(dir: string, ms: number): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const t0 = performance.now(); performance.now() - t0 <= ms; await sleep(100)) out.push([performance.now(), bytesOnDisk(dir)]);
  return out;
}

async function waitBytes(dir: string, timeoutMs = 20_000): Promise<void> {
  for (const t0 = Date.now(); bytesOnDisk(dir) === 0; await sleep(20)) if (Date.now() - t0 > timeoutMs) throw new Error(`nothing arrived in ${dir}`);
}

async function startServe(base: string): Promise<{ proc: ChildProcess; url: string }> {
  const tls = testTls();
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_'))),
    CARGOPORT_DATA_DIR: `${base}/serve`, CARGOPORT_GATEWAY_PORT: '0', CARGOPORT_LOG_LEVEL: 'warn',
    CARGOPORT_GATEWAY_TLS_CERT: tls.certPath, CARGOPORT_GATEWAY_TLS_KEY: tls.keyPath, CARGOPORT_TRANSFER_CA_FILE: tls.certPath,
    // A lab port on loopback: no tokens (the caps are what is measured, not authorisation) and nginx on 127.0.0.1.
    CARGOPORT_AUTH_INSECURE_OPEN: 'true', CARGOPORT_AUTH_ALLOW_ADDRESSES: 'loopback',
  };
  const proc = spawn(process.execPath, [cli, 'serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /cargoport serve listening on (https:\/\/\S+)/.exec(out);
      if (m) res(m[1]!);
    });
    proc.once('exit', (code) => rej(new Error(`serve exited (${code})`)));
  });
  return { proc, url };
}

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-livecaps-${process.pid}`;
  mkdirSync(`${base}/src`, { recursive: true });
  const [file] = makeRandomFiles(`${base}/src`, 1, FILE_BYTES, FILE_BYTES, 'big');
  const nginx = await startNginx({ dir: base, root: `${base}/src`, port: NGINX_PORT, sendfile: false, limitRate: '4m' });
  const serve = await startServe(base);
  const tls = testTls();
  const agent = new Agent({ allowH2: true, connect: { ca: tls.cert } });
  const api = async <T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
    const r = await request(`${serve.url}${path}`, {
      method: method as 'GET', dispatcher: agent,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.body.text();
    if (r.statusCode >= 300) throw new Error(`${method} ${path}: ${r.statusCode} ${text}`);
    return JSON.parse(text) as T;
  };
  const source = `https://127.0.0.1:${NGINX_PORT}/${file!.name}`;
  const rows: string[] = [];
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  try {
    // `before`: the cap is set before the job is submitted (the case that worked before, with the old 1 MiB burst);
    // its "from the PUT" column then counts from the file's first byte.
    const cases: Array<{ scope: 'link' | 'owner' | 'job' | 'port'; cap: number; before?: boolean }> = [
      { scope: 'link', cap: 800_000 }, { scope: 'owner', cap: 800_000 }, { scope: 'job', cap: 300_000 }, { scope: 'port', cap: 800_000 },
      { scope: 'port', cap: 800_000, before: true },
    ];
    for (let run = 0; run < RUNS; run++) {
      for (const { scope, cap, before } of cases) {
        // The port: the file moves at nginx's pace, then the cap is set on one of its scopes.
        const dst = `${base}/dst-${scope}${before ? '-before' : ''}-${run}`;
        if (before) await api('PUT', '/api/v1/admin/limits', { scope, bytesPerSec: cap });
        mkdirSync(dst);
        const { jobId } = await api<{ jobId: string }>('POST', '/api/v1/jobs', {
          files: [{ source, destination: `file://${dst}/${file!.name}` }], params: { connections: 1, streams: 1 },
        });
        // The caller's identity (anonymous on this open lab port).
        const { owner } = await api<{ owner: string }>('GET', `/api/v1/jobs/${jobId}`);
        const target = { port: undefined, link: `127.0.0.1:${NGINX_PORT}>local`, owner, job: jobId }[scope];
        await waitBytes(dst, before ? 60_000 : 20_000);
        const free = before ? NaN : rateSlope(await sampleDisk(dst, 2000));
        const atPut = bytesOnDisk(dst);
        if (!before) await api('PUT', '/api/v1/admin/limits', { scope, ...(target ? { target } : {}), bytesPerSec: cap });
        const t0 = performance.now();
        const transition = await sampleDisk(dst, 1000);
        const window = await sampleDisk(dst, WINDOW_SEC * 1000);
        const all = [...transition, ...window];
        const atEnd = all.findLast(([t]) => t - t0 <= WINDOW_SEC * 1000)!;
        const fromPut = (atEnd[1] - atPut) / ((atEnd[0] - t0) / 1000);
        const steady = rateSlope(window);
        await api('PUT', '/api/v1/admin/limits', { scope, ...(target ? { target } : {}), bytesPerSec: null });
        await api('DELETE', `/api/v1/jobs/${jobId}`);
        // The peer: curl's limiter on the same file from the same nginx, measured the same way.
        const cdst = `${base}/curl-${scope}-${run}`;
        mkdirSync(cdst);
        const curl = spawn('curl', ['-sS', '--http2', '--cacert', tls.certPath, '--limit-rate', String(cap), '-o', `${cdst}/${file!.name}`, source], { stdio: 'ignore' });
        await waitBytes(cdst);
        await sleep(1000);
        const curlRate = rateSlope(await sampleDisk(cdst, WINDOW_SEC * 1000));
        curl.kill();
        await sleep(300);
        rmSync(dst, { recursive: true, force: true });
        rmSync(cdst, { recursive: true, force: true });
        const row = `| ${scope}${before ? ' (set before the job)' : ''} | ${cap.toLocaleString('en')} | ${before ? '—' : `${(free / 1e6).toFixed(2)} MB/s`} | ${steady.toFixed(0)} (${pct(steady / cap - 1)}) | ${fromPut.toFixed(0)} (${pct(fromPut / cap - 1)}) | ${curlRate.toFixed(0)} (${pct(curlRate / cap - 1)}) |`;
        console.log(row);
        rows.push(row);
      }
    }
    console.log(`\nlive caps, cargoport serve vs curl --limit-rate, ${WINDOW_SEC} s windows, ${RUNS} run(s)`);
    console.log('| scope | cap B/s | before the cap | port: B/s from 1 s after the PUT | port: B/s from the PUT | curl --limit-rate: B/s |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    serve.proc.kill('SIGTERM');
    await new Promise((r) => serve.proc.once('exit', r));
    await nginx.stop();
    await agent.close();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
