/**
 * bench/probe — `cargoport probe` (issue 17) against a second local port, next to what a real transfer through the
 * port gets in the same run:
 * - throughput: `cargoport probe PEER --direction download` (memory → memory, the engine's GET path) against
 *   the loopback pull of bench/port-loopback.ts — one large file tmpfs → tmpfs pulled **through the port**
 *   (POST /api/v1/jobs → worker → engine → atomic publish), from nginx (h2 + TLS, as port-loopback) and from the
 *   peer port's own storage endpoint (the same peer the probe measures), same N connections × M streams;
 *   alternating order, medians and the median of per-round ratios. The target: the probe within 10 % of the
 *   port's pull rate.
 * - handshakes: the probe's TLS-done times (fresh connections: TCP connect + full TLS 1.3 handshake) next to
 *   `curl -w '%{time_connect} %{time_appconnect}'` for the same peer, one curl process per connection, batches
 *   alternating.
 * For the throughput, everything of the ports (two gateways, the local worker, the probe command itself) runs in
 * this one process, as in port-loopback, so the pull and the probe share one event loop with the peer alike; nginx
 * is a process of its own. For the handshakes, the probe command runs in a child process, as each curl does.
 *
 * Run: npm run build && node dist/bench/probe.js [size_mib=1024] [runs=3] [connections=1] [streams=4] [handshakes=20]
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { main as cli } from '../bin/cli.js';
import { startHarness, type Harness } from '../test/support/port-harness.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';

const SIZE_MIB = Number(process.argv[2] ?? 1024);
const RUNS = Number(process.argv[3] ?? 3);
const CONNECTIONS = Number(process.argv[4] ?? 1);
const STREAMS = Number(process.argv[5] ?? 4);
const HANDSHAKES = Number(process.argv[6] ?? 20);
const PORT = 21000 + (process.pid % 1000);
const BYTES = SIZE_MIB * 1024 * 1024;
const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MB = 1e6;
const cliPath = new URL('../../bin/cargoport.js', import.meta.url).pathname;

async function probeJson(configFile: string, args: string[]): Promise<Record<string, any>> {
  let out = '';
  const code = await cli(['--config', configFile, 'probe', ...args, '--json'], { write: (s: string) => { out += s; return true; } } as never);
  if (code !== 0) throw new Error(`cargoport probe exited ${code}`);
  return JSON.parse(out);
}

/** The port's pull of `url` into tmpfs: rate from submission to the worker's end of the file (as port-loopback). */
async function portPull(h: Harness, url: string, dst: string): Promise<number> {
  const t0 = Date.now();
  const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
    files: [{ source: url, destination: `file://${dst}`, size: BYTES }],
    params: { connections: CONNECTIONS, streams: STREAMS },
  });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  const job = await h.waitJob(r.body.jobId, 600_000);
  if (job['state'] !== 'FINISHED') throw new Error(`job ended ${job['state']}`);
  const file = (await h.api<{ attempts: Array<{ end: number; outcome: string }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
  const ok = file.attempts.find((a) => a.outcome === 'ok')!;
  if (statSync(dst).size !== BYTES) throw new Error('short file');
  rmSync(dst);
  return BYTES / MB / ((ok.end - t0) / 1000);
}

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-probebench-${process.pid}`;
  mkdirSync(`${base}/src`, { recursive: true });
  mkdirSync(`${base}/dst`, { recursive: true });
  mkdirSync(`${base}/cli`, { recursive: true });
  await run('sh', ['-c', `head -c ${BYTES} /dev/urandom > ${base}/src/file.bin`]);
  const tls = testTls();
  const nginx = await startNginx({ dir: base, root: `${base}/src`, port: PORT, sendfile: false, workerConnections: 1024 });
  // The peer: its storage root is the tmpfs source directory; probes allowed up to the whole file per request.
  const peer = await startHarness({ logLevel: 'error', storage: { root: `${base}/src` }, probe: { maxBytes: BYTES } }, { workers: 0 });
  const local = await startHarness({ logLevel: 'error', workers: { concurrency: 8 }, transfer: { connections: CONNECTIONS, streams: STREAMS } }, { workers: 1 });
  const configFile = `${base}/cli/cargoport.yaml`;
  writeFileSync(configFile, `dataDir: ${base}/cli\ntransfer:\n  caFile: ${tls.certPath}\n  connections: ${CONNECTIONS}\n  streams: ${STREAMS}\n`);
  const peerFile = `${peer.gateway.url}/data/file.bin`;
  const nginxFile = `https://127.0.0.1:${PORT}/file.bin`;
  try {
    // Touch the destination's pages once (see port-loopback: the first writer into fresh tmpfs pages pays for them).
    await run('sh', ['-c', `head -c ${BYTES} /dev/zero > ${base}/warm.bin && rm ${base}/warm.bin`]);
    const rates = { nginx: [] as number[], peer: [] as number[], probe: [] as number[] };
    const steps: Array<[keyof typeof rates, () => Promise<number>]> = [
      ['nginx', () => portPull(local, nginxFile, `${base}/dst/nginx.bin`)],
      ['peer', () => portPull(local, peerFile, `${base}/dst/peer.bin`)],
      ['probe', async () => {
        const rep = await probeJson(configFile, [peer.gateway.url, '--direction', 'download', '--bytes', String(BYTES), '--request-bytes', String(BYTES),
          '--handshakes', '0', '--requests', '0', '--connections', String(CONNECTIONS), '--streams', String(STREAMS)]);
        if (rep['throughput'][0].retries) console.log(`  (probe: ${rep['throughput'][0].retries} request(s) asked again after a reset)`);
        return rep['throughput'][0].bytesPerSec / MB;
      }],
    ];
    for (let i = 0; i < RUNS; i++) {
      // Rotate who goes first.
      const order = [...steps.slice(i % steps.length), ...steps.slice(0, i % steps.length)];
      const line: string[] = [];
      for (const [name, fn] of order) {
        const r = await fn();
        rates[name].push(r);
        line.push(`${name} ${r.toFixed(0)} MB/s`);
      }
      console.log(`run ${i + 1}: ${line.join(' | ')}`);
    }
    const m = { nginx: median(rates.nginx), peer: median(rates.peer), probe: median(rates.probe) };
    const paired = (k: 'nginx' | 'peer') => median(rates.probe.map((p, i) => p / rates[k][i]!));
    console.log(`${SIZE_MIB} MiB, ${CONNECTIONS} connection(s) × ${STREAMS} stream(s)`);
    console.log(`port pull from nginx (bench/port-loopback's measurement): median ${m.nginx.toFixed(0)} MB/s`);
    console.log(`port pull from the peer port's storage endpoint: median ${m.peer.toFixed(0)} MB/s`);
    console.log(`cargoport probe --direction download against the peer: median ${m.probe.toFixed(0)} MB/s`);
    console.log(`RATIO probe/port-pull(nginx) ${(m.probe / m.nginx).toFixed(2)} (paired ${paired('nginx').toFixed(2)}); probe/port-pull(peer) ${(m.probe / m.peer).toFixed(2)} (paired ${paired('peer').toFixed(2)}) [target 0.90-1.10]`);

    // Handshakes: the probe's fresh connections next to curl's, two alternating batches each.
    const curlConnect: number[] = [];
    const curlApp: number[] = [];
    const probeTcp: number[] = [];
    const probeTls: number[] = [];
    let probeInfo = '';
    for (let batch = 0; batch < 2; batch++) {
      const half = Math.ceil(HANDSHAKES / 2);
      const doProbe = async () => {
        // The CLI in a process of its own, as curl is (in this process it would share the event loop with the peer).
        const { stdout } = await run(process.execPath, [cliPath, '--config', configFile, 'probe', peer.gateway.url, '--json', '--bytes', '0', '--requests', '0', '--handshakes', String(half)]);
        const rep = JSON.parse(stdout);
        probeTcp.push(rep['handshakes'].tcpConnectMs.median);
        probeTls.push(rep['handshakes'].tlsDoneMs.median);
        probeInfo = `${rep['handshakes'].tlsVersion} ${rep['handshakes'].cipher} ${rep['handshakes'].protocol}`;
      };
      const doCurl = async () => {
        for (let i = 0; i < half; i++) {
          const { stdout } = await run('curl', ['-s', '--http2', '-o', '/dev/null', '--cacert', tls.certPath, '-w', '%{time_connect} %{time_appconnect}', `${peer.gateway.url}/probe/bytes?size=0`]);
          const [c, a] = stdout.trim().split(' ').map((x) => Number(x) * 1000);
          curlConnect.push(c!);
          curlApp.push(a!);
        }
      };
      if (batch % 2 === 0) { await doProbe(); await doCurl(); } else { await doCurl(); await doProbe(); }
    }
    console.log(`handshakes (${HANDSHAKES} fresh connections each, ${probeInfo}):`);
    console.log(`  cargoport probe: TCP connect median ${median(probeTcp).toFixed(2)} ms, TLS done median ${median(probeTls).toFixed(2)} ms (medians of 2 batches)`);
    console.log(`  curl -w:         time_connect median ${median(curlConnect).toFixed(2)} ms, time_appconnect median ${median(curlApp).toFixed(2)} ms (min ${Math.min(...curlApp).toFixed(2)}, max ${Math.max(...curlApp).toFixed(2)})`);
    console.log(`RATIO probe TLS done / curl time_appconnect ${(median(probeTls) / median(curlApp)).toFixed(2)}`);
  } finally {
    await local.close();
    await peer.close();
    await nginx.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
